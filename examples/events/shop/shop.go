// Package shop is the events example's two services: orders, which
// places orders and publishes OrderPlaced through a transactional outbox,
// and billing, which consumes it behind an idempotent inbox, with retries
// and dead letters. Both keep their data in SQL (SQLite by default,
// PostgreSQL by configuration). App wires them from a configuration
// (config.Load), so the broker — JetStream, core NATS, memory, or a
// plug-in's such as Kafka and RabbitMQ — is chosen by configuration only.
// The command examples/events runs them on the built-in brokers;
// examples/events/anybroker, a module of its own, links the Kafka and
// RabbitMQ plug-ins in too.
package shop

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/inbox"
	"github.com/ferry-go/ferry/outbox"
	"github.com/nats-io/nuid"
)

// Topics of the example.
const (
	TopicOrderPlaced = "events.orders.placed"
	// DeadLetters is where billing's failed orders end up.
	DeadLetters = broker.DeadLetterPrefix + TopicOrderPlaced
)

// PlaceOrder is the orders service's request.
type PlaceOrder struct {
	Customer string `json:"customer"`
	// Amount in cents.
	Amount int64 `json:"amount"`
	// OrderID, if set, makes placing idempotent: the same ID is stored once.
	OrderID string `json:"order_id,omitempty"`
}

// Placed is the orders service's reply.
type Placed struct {
	OrderID string `json:"order_id"`
}

// OrderPlaced is the event billing consumes.
type OrderPlaced struct {
	OrderID  string    `json:"order_id"`
	Customer string    `json:"customer"`
	Amount   int64     `json:"amount"`
	PlacedAt time.Time `json:"placed_at"`
}

// Orders places orders: each is stored with its OrderPlaced event in one
// transaction (package outbox), and the service's outbox relay publishes
// the event — at once while the broker is up, as soon as it is back
// otherwise. An order is never placed without its event, nor an event
// published for an order that was not placed.
type Orders struct {
	DB *sql.DB
}

// OrdersSchema is the orders table (the outbox's tables come from
// outbox.Migrate).
const OrdersSchema = `CREATE TABLE IF NOT EXISTS orders (
	id        TEXT PRIMARY KEY,
	customer  TEXT NOT NULL,
	amount    BIGINT NOT NULL,
	placed_us BIGINT NOT NULL
)`

// Place validates the order, then stores it and its OrderPlaced event
// together. The order ID is the message ID, and placing is idempotent: an
// ID placed already is not stored, nor published, again.
func (o Orders) Place(ctx context.Context, req *PlaceOrder) (*Placed, error) {
	switch {
	case req.Customer == "":
		return nil, errs.New(errs.InvalidArgument, "customer is required").WithDetails(errs.Detail{Field: "customer", Reason: "must not be empty"})
	case req.Amount <= 0:
		return nil, errs.New(errs.InvalidArgument, "amount must be positive").WithDetails(errs.Detail{Field: "amount", Reason: "must be > 0 (cents)"})
	}
	id := req.OrderID
	if id == "" {
		id = "o-" + nuid.Next()
	}
	now := time.Now().UTC()
	err := outbox.Transact(ctx, o.DB, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO orders (id, customer, amount, placed_us) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
			id, req.Customer, req.Amount, now.UnixMicro())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // placed already: its event is in the outbox
		}
		ev := &OrderPlaced{OrderID: id, Customer: req.Customer, Amount: req.Amount, PlacedAt: now}
		return outbox.Publish(ctx, tx, TopicOrderPlaced, ev, broker.WithID(id), broker.WithKey(req.Customer))
	})
	if err != nil {
		return nil, errs.Newf(errs.Unavailable, "place order %s: %v", id, err)
	}
	return &Placed{OrderID: id}, nil
}

// CreditLimit is the largest amount billing accepts; above it an order is
// refused for good and dead-lettered at once.
const CreditLimit = 100_000

// Billing charges placed orders. Its payment gateway fails now and then
// (FailureRate of the attempts), which the broker retries with back-off.
// It runs behind an inbox (package inbox): each charge is written in the
// delivery's transaction together with the record of the message, so an
// order delivered twice — redelivered after a lost acknowledgement, or
// published twice on a broker that does not de-duplicate by message ID,
// as Kafka and RabbitMQ do not — is charged once.
type Billing struct {
	DB          *sql.DB
	FailureRate float64
	Logger      *slog.Logger
}

// ChargesSchema is billing's table.
const ChargesSchema = `CREATE TABLE IF NOT EXISTS charges (
	order_id TEXT PRIMARY KEY,
	customer TEXT NOT NULL,
	amount   BIGINT NOT NULL
)`

// OnOrderPlaced charges one order.
func (b *Billing) OnOrderPlaced(ctx context.Context, e *broker.Event[OrderPlaced]) error {
	o := e.Data
	if o.Amount > CreditLimit {
		return broker.Permanent(fmt.Errorf("order %s: %d cents is over the credit limit", o.OrderID, o.Amount))
	}
	tx := inbox.Tx(ctx)
	if tx == nil {
		return errs.New(errs.Internal, "billing: no inbox transaction: subscribe behind inbox.Middleware")
	}
	if rand.Float64() < b.FailureRate {
		b.Logger.InfoContext(ctx, "billing: payment gateway timed out; will retry", "order", o.OrderID, "attempt", e.Attempt)
		return errs.Newf(errs.Unavailable, "payment gateway timeout for order %s", o.OrderID)
	}
	// A plain INSERT: were an order ever applied twice, its primary key
	// would refuse the second charge.
	if _, err := tx.ExecContext(ctx, `INSERT INTO charges (order_id, customer, amount) VALUES ($1, $2, $3)`, o.OrderID, o.Customer, o.Amount); err != nil {
		return fmt.Errorf("billing: charge order %s: %w", o.OrderID, err)
	}
	b.Logger.InfoContext(ctx, "billing: charged", "order", o.OrderID, "customer", o.Customer, "amount", o.Amount, "attempt", e.Attempt)
	return nil
}

// Charged returns the amount charged for an order and whether it was.
func (b *Billing) Charged(order string) (int64, bool) {
	var a int64
	if err := b.DB.QueryRow(`SELECT amount FROM charges WHERE order_id = $1`, order).Scan(&a); err != nil {
		return 0, false
	}
	return a, true
}

// DeadLetter is one order billing gave up on.
type DeadLetter struct {
	OrderID    string
	Error      string
	Deliveries string
}

// Monitor watches the dead-letter subject.
type Monitor struct {
	Logger *slog.Logger

	mu   sync.Mutex
	seen []DeadLetter
}

// OnDeadLetter records and logs a dead letter.
func (m *Monitor) OnDeadLetter(ctx context.Context, e *broker.Event[OrderPlaced]) error {
	d := DeadLetter{OrderID: e.Data.OrderID, Error: e.Header.Get(broker.DeadLetterErrorKey), Deliveries: e.Header.Get(broker.DeadLetterDeliveriesKey)}
	m.Logger.WarnContext(ctx, "dead letter", "order", d.OrderID, "deliveries", d.Deliveries, "error", d.Error)
	m.mu.Lock()
	m.seen = append(m.seen, d)
	m.mu.Unlock()
	return nil
}

// DeadLetters returns the dead letters seen so far.
func (m *Monitor) DeadLetters() []DeadLetter {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]DeadLetter(nil), m.seen...)
}
