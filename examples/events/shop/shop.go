// Package shop is the events example's two services: orders, which
// places orders and publishes OrderPlaced, and billing, which consumes it
// with retries and dead letters. App wires them from a configuration
// (config.Load), so the broker — JetStream, core NATS, memory, or a
// plug-in's such as Kafka and RabbitMQ — is chosen by configuration only.
// The command examples/events runs them on the built-in brokers;
// examples/events/anybroker, a module of its own, links the Kafka and
// RabbitMQ plug-ins in too.
package shop

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
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

// Orders places orders and publishes OrderPlaced.
type Orders struct {
	// Broker returns the broker to publish on (the service's, once started).
	Broker func() broker.Broker
}

// Place validates the order and publishes OrderPlaced; the order ID is the
// message ID, so a client retrying the same order is billed once.
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
	ev := &OrderPlaced{OrderID: id, Customer: req.Customer, Amount: req.Amount, PlacedAt: time.Now().UTC()}
	if err := broker.Publish(ctx, o.Broker(), TopicOrderPlaced, ev, broker.WithID(id)); err != nil {
		return nil, err
	}
	return &Placed{OrderID: id}, nil
}

// CreditLimit is the largest amount billing accepts; above it an order is
// refused for good and dead-lettered at once.
const CreditLimit = 100_000

// Billing charges placed orders. Its payment gateway fails now and then
// (FailureRate of the attempts), which the broker retries with back-off.
type Billing struct {
	FailureRate float64
	Logger      *slog.Logger

	mu      sync.Mutex
	charged map[string]int64 // order → amount
}

// OnOrderPlaced charges one order, once: delivery is at least once (a
// redelivery, or an order published twice on a broker that does not
// de-duplicate by message ID, as Kafka and RabbitMQ do not), so an order
// charged already is acknowledged without calling the payment gateway.
func (b *Billing) OnOrderPlaced(ctx context.Context, e *broker.Event[OrderPlaced]) error {
	o := e.Data
	if o.Amount > CreditLimit {
		return broker.Permanent(fmt.Errorf("order %s: %d cents is over the credit limit", o.OrderID, o.Amount))
	}
	if _, done := b.Charged(o.OrderID); done {
		return nil
	}
	if rand.Float64() < b.FailureRate {
		b.Logger.InfoContext(ctx, "billing: payment gateway timed out; will retry", "order", o.OrderID, "attempt", e.Attempt)
		return errs.Newf(errs.Unavailable, "payment gateway timeout for order %s", o.OrderID)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.charged == nil {
		b.charged = map[string]int64{}
	}
	if _, done := b.charged[o.OrderID]; done {
		return nil // a copy delivered at the same time was charged meanwhile
	}
	b.charged[o.OrderID] = o.Amount
	b.Logger.InfoContext(ctx, "billing: charged", "order", o.OrderID, "customer", o.Customer, "amount", o.Amount, "attempt", e.Attempt)
	return nil
}

// Charged returns the amount charged for an order and whether it was.
func (b *Billing) Charged(order string) (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.charged[order]
	return a, ok
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
