package inbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/broker/memory"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/inbox"
	"github.com/ferry-go/ferry/internal/dbtest"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/outbox"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

type Order struct {
	ID string `json:"id"`
}

// fixture is a database with the inbox and an applied table, a memory
// broker that does not de-duplicate (so a message published twice is
// delivered twice), and a meter reader.
type fixture struct {
	db     *sql.DB
	b      *memory.Broker
	ib     *inbox.Inbox
	reader *sdkmetric.ManualReader
}

func setup(t *testing.T, dsn string, opts ...inbox.Option) *fixture {
	t.Helper()
	db := dbtest.Open(t, dbtest.Driver(dsn), dsn)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE applied (order_id TEXT PRIMARY KEY, n INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	b, err := memory.New(memory.WithDedupeWindow(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	ib := inbox.New(db, append([]inbox.Option{inbox.WithMeterProvider(mp), inbox.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err := ib.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ib.Stop(context.Background()) })
	return &fixture{db: db, b: b, ib: ib, reader: reader}
}

// apply is a handler that records the order through the delivery's
// transaction; a second apply of one order shows as n = 2.
func apply(ctx context.Context, e *broker.Event[Order]) error {
	tx := inbox.Tx(ctx)
	if tx == nil {
		return errors.New("no inbox transaction")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO applied (order_id, n) VALUES ($1, 1) ON CONFLICT (order_id) DO UPDATE SET n = applied.n + 1`, e.Data.ID)
	return err
}

func (f *fixture) subscribe(t *testing.T, h func(context.Context, *broker.Event[Order]) error, opts ...broker.SubscribeOption) {
	t.Helper()
	all := append([]broker.SubscribeOption{broker.WithLogger(slog.New(slog.DiscardHandler)), broker.Queue("billing"), broker.Backoff(time.Millisecond), broker.MaxDeliver(10)}, opts...)
	sub, err := broker.Subscribe(context.Background(), f.b, "orders.placed", h, all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Drain(context.Background()) })
}

func (f *fixture) publish(t *testing.T, id string) {
	t.Helper()
	if err := broker.Publish(context.Background(), f.b, "orders.placed", &Order{ID: id}, broker.WithID(id)); err != nil {
		t.Fatal(err)
	}
}

// applied returns order → n.
func (f *fixture) applied(t *testing.T) map[string]int {
	t.Helper()
	rows, err := f.db.Query(`SELECT order_id, n FROM applied`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = n
	}
	return out
}

func (f *fixture) duplicates(t *testing.T) int64 {
	t.Helper()
	return ferrytest.CounterSum(t, f.reader, inbox.MetricDuplicates)
}

// lostAck fails one delivery of each listed order after the inner chain
// (the inbox and the handler) succeeded: an acknowledgement lost after
// the work was done, so the broker redelivers a processed message.
func lostAck(ids map[string]bool) middleware.Middleware {
	var mu sync.Mutex
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			resp, err := next(ctx, req)
			id := req.(*Order).ID
			mu.Lock()
			lose := err == nil && ids[id]
			delete(ids, id)
			mu.Unlock()
			if lose {
				return resp, errors.New("acknowledgement lost")
			}
			return resp, err
		}
	}
}

// Every message is applied once, however often it is delivered: published
// twice, or redelivered after its acknowledgement was lost.
func TestEachMessageAppliedOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := setup(t, dsn)
		lost := map[string]bool{}
		for i := range 10 {
			lost[fmt.Sprintf("o-%d", i*5)] = true
		}
		want := int64(50 + len(lost)) // the second copies, and the redeliveries
		f.subscribe(t, apply, broker.WithMiddleware(lostAck(lost), f.ib.Middleware()), broker.Concurrency(4))
		const orders = 50
		for i := range orders {
			id := fmt.Sprintf("o-%d", i)
			f.publish(t, id)
			f.publish(t, id) // a duplicate the broker does not catch
		}
		ferrytest.Eventually(t, fmt.Sprintf("%d duplicates skipped", want), func() bool { return f.duplicates(t) >= want })
		got := f.applied(t)
		if len(got) != orders {
			t.Fatalf("%d orders applied, want %d", len(got), orders)
		}
		for id, n := range got {
			if n != 1 {
				t.Errorf("order %s applied %d times", id, n)
			}
		}
		if d := f.duplicates(t); d != want {
			t.Errorf("%d duplicates counted, want %d", d, want)
		}
		ok, err := f.ib.Processed(context.Background(), "billing", "orders.placed", "o-7")
		if err != nil || !ok {
			t.Fatalf("Processed(billing, o-7) = %v, %v", ok, err)
		}
	})
}

// A handler that fails, or panics, rolls back its changes, the record of
// the message, and what it stored in the outbox: the redelivery applies
// the message, once.
func TestFailureRollsBackEverything(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := setup(t, dsn)
		d, _ := outbox.DialectOf(f.db)
		if err := outbox.Migrate(context.Background(), f.db, d); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		attempts := map[string]int{}
		f.subscribe(t, func(ctx context.Context, e *broker.Event[Order]) error {
			if err := apply(ctx, e); err != nil {
				return err
			}
			if err := outbox.Publish(ctx, inbox.Tx(ctx), "orders.billed", e.Data); err != nil {
				return err
			}
			mu.Lock()
			attempts[e.Data.ID]++
			n := attempts[e.Data.ID]
			mu.Unlock()
			switch {
			case e.Data.ID == "fails" && n == 1:
				return errors.New("payment gateway timeout")
			case e.Data.ID == "panics" && n == 1:
				panic("handler bug")
			}
			return nil
		}, broker.WithMiddleware(f.ib.Middleware()))
		f.publish(t, "fails")
		f.publish(t, "panics")
		ferrytest.Eventually(t, "both applied", func() bool { return len(f.applied(t)) == 2 })
		for id, n := range f.applied(t) {
			if n != 1 {
				t.Errorf("order %s applied %d times", id, n)
			}
		}
		var stored int
		if err := f.db.QueryRow(`SELECT count(*) FROM ferry_outbox`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != 2 {
			t.Fatalf("%d events in the outbox, want 2: the failed attempts' events must roll back", stored)
		}
		if d := f.duplicates(t); d != 0 {
			t.Fatalf("%d duplicates counted for failed attempts", d)
		}
	})
}

// Each consumer (queue group) applies a message once of its own.
func TestRecordsArePerConsumer(t *testing.T) {
	f := setup(t, dbtest.SQLiteURL(t))
	var mu sync.Mutex
	seen := map[string]int{}
	for _, group := range []string{"billing", "shipping"} {
		f.subscribe(t, func(ctx context.Context, e *broker.Event[Order]) error {
			mu.Lock()
			seen[group]++
			mu.Unlock()
			return nil
		}, broker.Queue(group), broker.WithMiddleware(f.ib.Middleware()))
	}
	f.publish(t, "o-1")
	f.publish(t, "o-1")
	ferrytest.Eventually(t, "both duplicates skipped", func() bool { return f.duplicates(t) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if seen["billing"] != 1 || seen["shipping"] != 1 {
		t.Fatalf("handled %v, want once per consumer", seen)
	}
}

// Two events that share an ID on two topics are two messages: each is
// applied, neither is a duplicate.
func TestSameIDOnTwoTopics(t *testing.T) {
	f := setup(t, dbtest.SQLiteURL(t))
	h := f.ib.Middleware()(func(context.Context, any) (any, error) { return "applied", nil })
	for _, topic := range []string{"orders.placed", "orders.cancelled"} {
		ctx := broker.NewDeliveryContext(context.Background(), &broker.Delivery{Message: broker.Message{Topic: topic, ID: "o-1"}, Subscription: "billing", Attempt: 1})
		if resp, err := h(ctx, nil); err != nil || resp != "applied" {
			t.Fatalf("%s: = %v, %v; want the handler to run", topic, resp, err)
		}
	}
	if d := f.duplicates(t); d != 0 {
		t.Fatalf("%d duplicates, want 0", d)
	}
}

// Outside a delivery, or for a message without an ID, the handler runs
// without a record, and Tx is nil.
func TestNotADelivery(t *testing.T) {
	f := setup(t, dbtest.SQLiteURL(t))
	ran := false
	h := f.ib.Middleware()(func(ctx context.Context, req any) (any, error) {
		ran = true
		if inbox.Tx(ctx) != nil {
			t.Error("a transaction outside a delivery")
		}
		return "ok", nil
	})
	if resp, err := h(context.Background(), nil); err != nil || resp != "ok" || !ran {
		t.Fatalf("= %v, %v (ran %v)", resp, err, ran)
	}
	ctx := broker.NewDeliveryContext(context.Background(), &broker.Delivery{Message: broker.Message{Topic: "orders.placed"}})
	ran = false
	if _, err := h(ctx, nil); err != nil || !ran {
		t.Fatalf("a delivery without an ID: %v (ran %v)", err, ran)
	}
}

// Records older than the retention are deleted by Cleanup.
func TestRetention(t *testing.T) {
	f := setup(t, dbtest.SQLiteURL(t), inbox.WithRetention(0), inbox.WithCleanupEvery(time.Hour))
	f.subscribe(t, apply, broker.WithMiddleware(f.ib.Middleware()))
	f.publish(t, "o-1")
	ctx := context.Background()
	ferrytest.Eventually(t, "o-1 processed", func() bool {
		ok, _ := f.ib.Processed(ctx, "billing", "orders.placed", "o-1")
		return ok
	})
	f.ib.Cleanup(ctx)
	if ok, err := f.ib.Processed(ctx, "billing", "orders.placed", "o-1"); err != nil || ok {
		t.Fatalf("after cleanup Processed = %v, %v; want false", ok, err)
	}
}

// A database that fails makes the delivery fail as Unavailable, so the
// broker redelivers it, and runs no handler.
func TestDatabaseDown(t *testing.T) {
	f := setup(t, dbtest.SQLiteURL(t))
	f.db.Close()
	ran := false
	h := f.ib.Middleware()(func(context.Context, any) (any, error) { ran = true; return nil, nil })
	ctx := broker.NewDeliveryContext(context.Background(), &broker.Delivery{Message: broker.Message{Topic: "orders.placed", ID: "o-1"}, Subscription: "billing"})
	_, err := h(ctx, nil)
	if err == nil || ran {
		t.Fatalf("= %v (ran %v), want an error and no handler", err, ran)
	}
	if broker.IsPermanent(err) {
		t.Fatalf("%v is permanent: the message would be dead-lettered instead of redelivered", err)
	}
}
