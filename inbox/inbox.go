// Package inbox makes a subscriber idempotent: a broker delivers at least
// once — again after a lost acknowledgement, a consumer crash, or an
// outbox relay that died between publishing and marking — so a handler
// that applies a change must not apply it twice. The inbox records each
// processed message ID in the handler's own database transaction: the
// record and the handler's changes commit together or not at all, and a
// delivery whose ID is recorded already is acknowledged without running
// the handler.
//
//	ib := inbox.New(db)
//	ferry.Subscribe(svc, "events.orders.placed", billing.OnOrderPlaced,
//		broker.Queue("billing"), broker.WithMiddleware(ib.Middleware()))
//	svc := ferry.New(srv, ferry.WithComponent(ib), …) // creates the table, deletes old records
//
// and in the handler, every change goes through the delivery's transaction:
//
//	func (b *Billing) OnOrderPlaced(ctx context.Context, e *broker.Event[OrderPlaced]) error {
//		tx := inbox.Tx(ctx)
//		_, err := tx.ExecContext(ctx, `INSERT INTO charges …`, …)
//		return err // an error rolls back both: the message is redelivered and applied then
//	}
//
// A handler may also store events in the same transaction with
// outbox.Publish: consume, apply and publish exactly once together.
//
// Records are per consumer — the subscription's queue group, or its topic
// for a fan-out subscription (WithConsumer names it otherwise) — and per
// topic, so two services consuming one message each apply it once, and
// two events that share an ID on different topics (an order's placed and
// cancelled events, both with the order's ID) are two messages. They are deleted
// after the retention (default 7 days), which must exceed the longest a
// message can be redelivered after it was first processed. A delivery
// without a message ID, or a call that is not a delivery, runs the handler
// without a record (and Tx returns nil).
//
// The dialects are the outbox's (PostgreSQL and SQLite); the table is
// ferry_inbox, made by Migrate or by Start (Schema prints it).
package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/internal/sqlmigrate"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/outbox"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Defaults.
const (
	DefaultRetention    = 7 * 24 * time.Hour
	DefaultCleanupEvery = 10 * time.Minute
)

// MetricDuplicates counts deliveries acknowledged without running the
// handler because their message was processed already, by consumer
// (ferry.consumer).
const MetricDuplicates = "ferry.inbox.duplicates"

// ConsumerKey labels MetricDuplicates.
const ConsumerKey = attribute.Key("ferry.consumer")

var schemas = map[string][]string{
	outbox.Postgres.Name(): {
		`CREATE TABLE IF NOT EXISTS ferry_inbox (
	consumer     TEXT NOT NULL,
	topic        TEXT NOT NULL,
	message_id   TEXT NOT NULL,
	processed_us BIGINT NOT NULL,
	PRIMARY KEY (consumer, topic, message_id)
)`,
		`CREATE INDEX IF NOT EXISTS ferry_inbox_processed ON ferry_inbox (processed_us)`,
	},
	outbox.SQLite.Name(): {
		`CREATE TABLE IF NOT EXISTS ferry_inbox (
	consumer     TEXT NOT NULL,
	topic        TEXT NOT NULL,
	message_id   TEXT NOT NULL,
	processed_us INTEGER NOT NULL,
	PRIMARY KEY (consumer, topic, message_id)
) WITHOUT ROWID`,
		`CREATE INDEX IF NOT EXISTS ferry_inbox_processed ON ferry_inbox (processed_us)`,
	},
}

const (
	record  = `INSERT INTO ferry_inbox (consumer, topic, message_id, processed_us) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`
	cleanup = `DELETE FROM ferry_inbox WHERE processed_us < $1`
)

// Schema returns the migration that creates the inbox table in dialect d,
// for a user who runs migrations with a tool of their own.
func Schema(d outbox.Dialect) string {
	return strings.Join(schemas[d.Name()], ";\n\n") + ";\n"
}

// Migrate creates the inbox table in db if it is not there; idempotent.
func Migrate(ctx context.Context, db *sql.DB, d outbox.Dialect) error {
	s, ok := schemas[d.Name()]
	if !ok {
		return fmt.Errorf("inbox: migrate: unknown dialect %q", d.Name())
	}
	return sqlmigrate.Run(ctx, db, d.Name() == outbox.Postgres.Name(), s, "inbox")
}

// Option configures an Inbox.
type Option func(*Inbox)

// WithDialect sets the SQL dialect (default: told from db's driver, see
// outbox.DialectOf).
func WithDialect(d outbox.Dialect) Option { return func(i *Inbox) { i.dialect = &d } }

// WithConsumer names the consumer the records are kept for (default: the
// delivery's subscription — its queue group, or its topic).
func WithConsumer(name string) Option { return func(i *Inbox) { i.consumer = name } }

// WithRetention sets how long records are kept (default 7 days).
func WithRetention(d time.Duration) Option { return func(i *Inbox) { i.retention = d } }

// WithCleanupEvery sets how often Start's loop deletes old records
// (default every 10 minutes).
func WithCleanupEvery(d time.Duration) Option { return func(i *Inbox) { i.cleanupEvery = d } }

// WithTxOptions sets the options of the handlers' transactions (default:
// the database's default isolation).
func WithTxOptions(o *sql.TxOptions) Option { return func(i *Inbox) { i.txOpts = o } }

// WithLogger sets the logger of cleanup failures (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(i *Inbox) { i.logger = l } }

// WithoutMigrate stops Start from creating the table.
func WithoutMigrate() Option { return func(i *Inbox) { i.noMigrate = true } }

// WithMeterProvider sets the meter provider of MetricDuplicates (default
// otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(i *Inbox) { i.mp = mp } }

// Inbox records processed messages in a database; see the package doc.
type Inbox struct {
	db           *sql.DB
	dialect      *outbox.Dialect
	consumer     string
	retention    time.Duration
	cleanupEvery time.Duration
	txOpts       *sql.TxOptions
	logger       *slog.Logger
	noMigrate    bool
	mp           metric.MeterProvider

	dups metric.Int64Counter

	mu   sync.Mutex
	stop chan struct{}
	done chan struct{}
}

// New returns the inbox of db.
func New(db *sql.DB, opts ...Option) *Inbox {
	i := &Inbox{db: db, retention: DefaultRetention, cleanupEvery: DefaultCleanupEvery}
	for _, o := range opts {
		if o != nil {
			o(i)
		}
	}
	if i.logger == nil {
		i.logger = slog.Default()
	}
	if i.mp == nil {
		i.mp = otel.GetMeterProvider()
	}
	i.dups, _ = i.mp.Meter("github.com/ferry-go/ferry/inbox").Int64Counter(MetricDuplicates, metric.WithUnit("{message}"),
		metric.WithDescription("Deliveries acknowledged without running the handler: their message was processed already."))
	return i
}

type txKey struct{}

// Tx returns the transaction of the delivery being handled behind an
// inbox's middleware: the handler's changes go through it to commit with
// the record of the message. Nil outside such a handler.
func Tx(ctx context.Context) *sql.Tx {
	tx, _ := ctx.Value(txKey{}).(*sql.Tx)
	return tx
}

// Middleware returns the subscriber middleware: for each delivery it
// begins a transaction, records the message ID for the consumer, and runs
// the handler with the transaction (Tx), committing both if the handler
// succeeds and rolling both back if it fails or panics; a message recorded
// already is acknowledged at once, without the handler. A failure of the
// database is returned as Unavailable, so the broker redelivers.
func (i *Inbox) Middleware() middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (resp any, err error) {
			d, ok := broker.DeliveryFromContext(ctx)
			if !ok || d.ID == "" {
				return next(ctx, req)
			}
			consumer := i.consumer
			if consumer == "" {
				consumer = d.Subscription
			}
			tx, err := i.db.BeginTx(ctx, i.txOpts)
			if err != nil {
				return nil, errs.Newf(errs.Unavailable, "inbox: message %s: begin: %v", d.ID, err)
			}
			done := false
			defer func() {
				if !done {
					_ = tx.Rollback()
				}
			}()
			res, err := tx.ExecContext(ctx, record, consumer, d.Topic, d.ID, time.Now().UnixMicro())
			if err != nil {
				return nil, errs.Newf(errs.Unavailable, "inbox: message %s: record: %v", d.ID, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return nil, errs.Newf(errs.Unavailable, "inbox: message %s: record: %v", d.ID, err)
			} else if n == 0 {
				i.dups.Add(ctx, 1, metric.WithAttributes(ConsumerKey.String(consumer)))
				return nil, nil // processed already: acknowledge
			}
			resp, err = next(context.WithValue(ctx, txKey{}, tx), req)
			if err != nil {
				return resp, err
			}
			done = true
			if err := tx.Commit(); err != nil {
				return nil, errs.Newf(errs.Unavailable, "inbox: message %s: commit: %v", d.ID, err)
			}
			return resp, nil
		}
	}
}

// Processed reports whether the consumer has processed the message of ID
// messageID on topic.
func (i *Inbox) Processed(ctx context.Context, consumer, topic, messageID string) (bool, error) {
	var one int
	err := i.db.QueryRowContext(ctx, `SELECT 1 FROM ferry_inbox WHERE consumer = $1 AND topic = $2 AND message_id = $3`, consumer, topic, messageID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Start creates the table (unless WithoutMigrate) and starts deleting
// records older than the retention: a ferry.Component.
func (i *Inbox) Start(ctx context.Context) error {
	d := i.dialect
	if d == nil {
		dd, err := outbox.DialectOf(i.db)
		if err != nil {
			return fmt.Errorf("inbox: %w", err)
		}
		d = &dd
	}
	if !i.noMigrate {
		if err := Migrate(ctx, i.db, *d); err != nil {
			return err
		}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stop != nil {
		return errors.New("inbox: started twice")
	}
	i.stop, i.done = make(chan struct{}), make(chan struct{})
	go i.cleanupLoop()
	return nil
}

// Stop ends the cleanup loop.
func (i *Inbox) Stop(ctx context.Context) error {
	i.mu.Lock()
	stop, done := i.stop, i.done
	i.mu.Unlock()
	if stop == nil {
		return nil
	}
	select {
	case <-stop:
	default:
		close(stop)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cleanupLoop deletes old records every cleanupEvery until Stop, which
// cancels a cleanup under way.
func (i *Inbox) cleanupLoop() {
	defer close(i.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-i.stop
		cancel()
	}()
	t := time.NewTicker(i.cleanupEvery)
	defer t.Stop()
	for {
		select {
		case <-i.stop:
			return
		case <-t.C:
			i.Cleanup(ctx)
		}
	}
}

// Cleanup deletes the records older than the retention now.
func (i *Inbox) Cleanup(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := i.db.ExecContext(ctx, cleanup, time.Now().Add(-i.retention).UnixMicro()); err != nil {
		i.logger.Warn("inbox: cleanup", "error", err)
	}
}
