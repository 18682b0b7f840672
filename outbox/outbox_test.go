package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/broker/memory"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/internal/dbtest"
	"github.com/ferry-go/ferry/outbox"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener lives as long as its *sql.DB.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}

type Order struct {
	ID  string `json:"id"`
	Seq int    `json:"seq"`
}

// faulty is a real memory broker with a fault switch and a count of the
// publishes it took per message ID (before its own de-duplication).
type faulty struct {
	*memory.Broker
	down      atomic.Bool
	refused   atomic.Int64
	mu        sync.Mutex
	published map[string]int
	permanent map[string]bool // topics refused for good
}

func newFaulty(t *testing.T) *faulty {
	t.Helper()
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return &faulty{Broker: b, published: map[string]int{}, permanent: map[string]bool{}}
}

func (f *faulty) Publish(ctx context.Context, m *broker.Message) error {
	f.mu.Lock()
	perm := f.permanent[m.Topic]
	f.mu.Unlock()
	if perm {
		return broker.Permanent(errs.Newf(errs.InvalidArgument, "topic %s refused", m.Topic))
	}
	if f.down.Load() {
		f.refused.Add(1)
		return errs.New(errs.Unavailable, "broker down")
	}
	if err := f.Broker.Publish(ctx, m); err != nil {
		return err
	}
	f.mu.Lock()
	f.published[m.ID]++
	f.mu.Unlock()
	return nil
}

func (f *faulty) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.published[id]
}

func (f *faulty) ids() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.published))
	for k, v := range f.published {
		out[k] = v
	}
	return out
}

// collector subscribes to topic on b and keeps what arrives.
type collector struct {
	mu  sync.Mutex
	got []*broker.Delivery
}

func collect(t *testing.T, b broker.Broker, topic string) *collector {
	t.Helper()
	c := &collector{}
	cfg, err := broker.NewSubscribeConfig(topic, broker.Concurrency(1), broker.Ordered())
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(context.Background(), topic, func(_ context.Context, d *broker.Delivery) error {
		c.mu.Lock()
		c.got = append(c.got, d)
		c.mu.Unlock()
		return nil
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Drain(context.Background()) })
	return c
}

func (c *collector) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *collector) all() []*broker.Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*broker.Delivery(nil), c.got...)
}

func open(t *testing.T, dsn string) *sql.DB { return dbtest.Open(t, dbtest.Driver(dsn), dsn) }

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func startRelay(t *testing.T, db *sql.DB, opts ...outbox.Option) *outbox.Relay {
	t.Helper()
	r := outbox.NewRelay(db, append([]outbox.Option{outbox.WithLogger(quiet())}, opts...)...)
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("relay start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("relay stop: %v", err)
		}
	})
	return r
}

// place commits one event on orders.placed through Transact.
func place(t *testing.T, db *sql.DB, o *Order, opts ...broker.PublishOption) {
	t.Helper()
	ctx := context.Background()
	if err := outbox.Transact(ctx, db, func(tx *sql.Tx) error {
		return outbox.Publish(ctx, tx, "orders.placed", o, opts...)
	}); err != nil {
		t.Fatal(err)
	}
}

func migrate(t *testing.T, db *sql.DB) {
	t.Helper()
	d, err := outbox.DialectOf(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Migrate(context.Background(), db, d); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *sql.DB, where string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM ferry_outbox WHERE ` + where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// An event is published if and only if its transaction commits.
func TestCommitPublishesRollbackDoesNot(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := open(t, dsn)
		migrate(t, db)
		ctx := context.Background()
		for i, commit := range []bool{true, false, true, false, true} {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			id := fmt.Sprintf("o-%d", i)
			if err := outbox.Publish(ctx, tx, "orders.placed", &Order{ID: id}, broker.WithID(id)); err != nil {
				t.Fatal(err)
			}
			if commit {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		b := newFaulty(t)
		got := collect(t, b, "orders.placed")
		startRelay(t, db, outbox.WithBroker(b))
		ferrytest.Eventually(t, "3 committed events delivered", func() bool { return got.n() >= 3 })
		ferrytest.Eventually(t, "3 events marked sent", func() bool { return count(t, db, "sent_us IS NOT NULL") == 3 })
		if n := count(t, db, "1=1"); n != 3 {
			t.Fatalf("%d rows in the outbox, want the 3 committed", n)
		}
		var ids []string
		for _, d := range got.all() {
			ids = append(ids, d.ID)
		}
		slices.Sort(ids) // events without a key have no order
		if strings.Join(ids, ",") != "o-0,o-2,o-4" {
			t.Fatalf("delivered %v, want o-0,o-2,o-4", ids)
		}
	})
}

// The events of one key arrive in the order they were stored, however the
// relay batches and spreads keys; events keep their ID, headers and payload.
func TestOrderPerKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := open(t, dsn)
		migrate(t, db)
		ctx := context.Background()
		const keys, per = 4, 40
		for s := range per {
			err := outbox.Transact(ctx, db, func(tx *sql.Tx) error {
				for k := range keys {
					key := fmt.Sprintf("k%d", k)
					o := &Order{ID: key, Seq: s}
					if err := outbox.Publish(ctx, tx, "orders.placed", o, broker.WithKey(key), broker.WithHeader("x-seq", fmt.Sprint(s))); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		b := newFaulty(t)
		got := collect(t, b, "orders.placed")
		startRelay(t, db, outbox.WithBroker(b), outbox.WithBatchSize(7), outbox.WithConcurrency(3))
		ferrytest.Eventually(t, "every event delivered", func() bool { return got.n() >= keys*per })
		next := map[string]int{}
		for _, d := range got.all() {
			var o Order
			if err := jsonUnmarshal(d.Data, &o); err != nil {
				t.Fatal(err)
			}
			if o.Seq != next[o.ID] {
				t.Fatalf("key %s: got seq %d, want %d", o.ID, o.Seq, next[o.ID])
			}
			if h := d.Header.Get("x-seq"); h != fmt.Sprint(o.Seq) {
				t.Fatalf("header x-seq = %q, want %d", h, o.Seq)
			}
			if d.ID == "" {
				t.Fatal("a delivery without its message ID")
			}
			next[o.ID]++
		}
	})
}

// While the broker refuses, nothing is lost: the relay tries again with
// back-off, and once the broker is back every event goes out, once.
func TestBrokerDownThenBack(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := open(t, dsn)
		migrate(t, db)
		ctx := context.Background()
		b := newFaulty(t)
		b.down.Store(true)
		got := collect(t, b, "orders.placed")
		r := startRelay(t, db, outbox.WithBroker(b), outbox.WithMaxBackoff(200*time.Millisecond))
		for i := range 20 {
			place(t, db, &Order{Seq: i}, broker.WithKey("k"))
		}
		ferrytest.Eventually(t, "the relay to try several times", func() bool { return b.refused.Load() >= 3 })
		n, oldest, err := r.Backlog(ctx)
		if err != nil || n != 20 || oldest.IsZero() {
			t.Fatalf("backlog while down = %d, %v, %v; want 20 and a time", n, oldest, err)
		}
		if attempts := count(t, db, "attempts > 0"); attempts == 0 {
			t.Fatal("failed attempts not recorded")
		}
		b.down.Store(false)
		ferrytest.Eventually(t, "every event delivered once the broker is back", func() bool { return got.n() >= 20 })
		for id, c := range b.ids() {
			if c != 1 {
				t.Errorf("message %s published %d times", id, c)
			}
		}
		ferrytest.Eventually(t, "the backlog to empty", func() bool {
			n, _, err := r.Backlog(ctx)
			return err == nil && n == 0
		})
	})
}

// Two relays on one database never publish one event twice, while events
// are committed concurrently and one of the relays stops half-way.
func TestTwoRelaysNoDoubleSend(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db1, db2 := open(t, dsn), open(t, dsn) // two pools: as two processes
		migrate(t, db1)
		ctx := context.Background()
		b := newFaulty(t)
		got := collect(t, b, "orders.placed")
		r1 := outbox.NewRelay(db1, outbox.WithBroker(b), outbox.WithLogger(quiet()), outbox.WithBatchSize(10), outbox.WithName("r1"))
		if err := r1.Start(ctx); err != nil {
			t.Fatal(err)
		}
		startRelay(t, db2, outbox.WithBroker(b), outbox.WithBatchSize(10), outbox.WithName("r2"), outbox.WithPollInterval(50*time.Millisecond))
		const writers, each = 4, 100
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					err := outbox.Transact(ctx, db1, func(tx *sql.Tx) error {
						return outbox.Publish(ctx, tx, "orders.placed", &Order{ID: fmt.Sprintf("w%d", w), Seq: i}, broker.WithKey(fmt.Sprintf("w%d", w%3)))
					})
					if err != nil {
						t.Error(err)
						return
					}
					if w == 0 && i == each/2 {
						sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
						if err := r1.Stop(sctx); err != nil {
							t.Error(err)
						}
						cancel()
					}
				}
			})
		}
		wg.Wait()
		if err := ferrytest.Poll(ctx, func() bool { return got.n() >= writers*each }); err != nil {
			t.Fatalf("%d of %d delivered, %d published, %d unsent rows", got.n(), writers*each, len(b.ids()), count(t, db1, "sent_us IS NULL"))
		}
		ids := b.ids()
		if len(ids) != writers*each {
			t.Fatalf("%d distinct messages published, want %d", len(ids), writers*each)
		}
		for id, c := range ids {
			if c != 1 {
				t.Errorf("message %s published %d times by the relays", id, c)
			}
		}
	})
}

// An event the broker refuses for good is marked dead, with the error,
// and does not hold back the events of its key behind it.
func TestPermanentFailureMarksDead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := open(t, dsn)
		migrate(t, db)
		ctx := context.Background()
		b := newFaulty(t)
		b.permanent["orders.refused"] = true
		got := collect(t, b, "orders.placed")
		err := outbox.Transact(ctx, db, func(tx *sql.Tx) error {
			if err := outbox.Publish(ctx, tx, "orders.refused", &Order{Seq: 0}, broker.WithKey("k")); err != nil {
				return err
			}
			return outbox.Publish(ctx, tx, "orders.placed", &Order{Seq: 1}, broker.WithKey("k"))
		})
		if err != nil {
			t.Fatal(err)
		}
		startRelay(t, db, outbox.WithBroker(b))
		ferrytest.Eventually(t, "the event behind the refused one delivered", func() bool { return got.n() == 1 })
		ferrytest.Eventually(t, "the refused event marked dead", func() bool { return count(t, db, "topic = 'orders.refused' AND dead"+boolTrue(dsn)) == 1 })
		var lastErr string
		if err := db.QueryRow(`SELECT last_error FROM ferry_outbox WHERE topic = 'orders.refused'`).Scan(&lastErr); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(lastErr, "orders.refused refused") {
			t.Fatalf("last_error = %q, want the broker's error", lastErr)
		}
	})
}

func boolTrue(dsn string) string {
	if dbtest.Driver(dsn) == "sqlite" {
		return " = 1"
	}
	return ""
}

// Sent events are deleted after the retention; unsent ones never are.
func TestRetention(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := open(t, dsn)
		migrate(t, db)
		b := newFaulty(t)
		got := collect(t, b, "orders.placed")
		for i := range 5 {
			place(t, db, &Order{Seq: i})
		}
		startRelay(t, db, outbox.WithBroker(b), outbox.WithRetention(0), outbox.WithCleanupEvery(20*time.Millisecond))
		ferrytest.Eventually(t, "5 delivered", func() bool { return got.n() == 5 })
		ferrytest.Eventually(t, "sent rows deleted", func() bool { return count(t, db, "1=1") == 0 })
	})
}

// A relay whose poll interval is an hour still publishes at once what
// Transact committed (SQLite and PostgreSQL), or what another process
// committed, through the PostgreSQL listener (see pgnotify's tests).
func TestTransactWakesTheRelay(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := open(t, dsn)
		migrate(t, db)
		b := newFaulty(t)
		got := collect(t, b, "orders.placed")
		startRelay(t, db, outbox.WithBroker(b), outbox.WithPollInterval(time.Hour))
		// The relay's first round may run before or after this commit:
		// wait for it to be idle (nothing to send) first.
		for i := range 3 {
			place(t, db, &Order{Seq: i})
			ferrytest.Eventually(t, fmt.Sprintf("event %d delivered without a poll", i), func() bool { return got.n() == i+1 })
		}
	})
}

// Transact rolls back when fn fails or panics, and passes the error on.
func TestTransactRollsBack(t *testing.T) {
	db := dbtest.SQLite(t)
	migrate(t, db)
	ctx := context.Background()
	boom := errors.New("boom")
	err := outbox.Transact(ctx, db, func(tx *sql.Tx) error {
		if err := outbox.Publish(ctx, tx, "orders.placed", &Order{}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Transact = %v, want boom", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic was swallowed")
			}
		}()
		_ = outbox.Transact(ctx, db, func(tx *sql.Tx) error {
			if err := outbox.Publish(ctx, tx, "orders.placed", &Order{}); err != nil {
				return err
			}
			panic("handler bug")
		})
	}()
	if n := count(t, db, "1=1"); n != 0 {
		t.Fatalf("%d rows after two rolled-back transactions", n)
	}
}

// Bad input is refused with an error that names it.
func TestPublishRefusesBadInput(t *testing.T) {
	db := dbtest.SQLite(t)
	migrate(t, db)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"bad topic", outbox.Publish(ctx, tx, "orders..placed", &Order{}), "orders..placed"},
		{"nil tx", outbox.Publish[Order](ctx, nil, "orders.placed", &Order{}), "nil transaction"},
		{"unencodable", outbox.Publish(ctx, tx, "orders.placed", &struct{ C chan int }{}), "encode"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, c.err, c.want)
		}
	}
	if err := outbox.Publish(ctx, tx, "orders.placed", &Order{}); err != nil {
		t.Fatalf("the transaction is still usable: %v", err)
	}
}

// Start refuses a relay it cannot run, saying why.
func TestStartRefuses(t *testing.T) {
	db := dbtest.SQLite(t)
	b := newFaulty(t)
	for _, c := range []struct {
		name string
		r    *outbox.Relay
		want string
	}{
		{"no broker", outbox.NewRelay(db), "no broker"},
		{"batch", outbox.NewRelay(db, outbox.WithBroker(b), outbox.WithBatchSize(0)), "batch size 0"},
		{"lease", outbox.NewRelay(db, outbox.WithBroker(b), outbox.WithLeaseTTL(time.Second)), "lease TTL"},
		// A lease of the publish timeout and a second leaves a round no
		// time to publish in: such a relay never published anything.
		{"lease without time to publish", outbox.NewRelay(db, outbox.WithBroker(b), outbox.WithPublishTimeout(time.Second), outbox.WithLeaseTTL(2*time.Second)), "lease TTL"},
		{"nil db", outbox.NewRelay(nil, outbox.WithBroker(b)), "nil database"},
	} {
		err := c.r.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Start = %v, want an error containing %q", c.name, err, c.want)
			if err == nil {
				c.r.Stop(context.Background())
			}
		}
	}
}

// The migration is idempotent, and Schema is what it runs.
func TestMigrateTwiceAndSchema(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := open(t, dsn)
		migrate(t, db)
		migrate(t, db)
		d, _ := outbox.DialectOf(db)
		if s := d.Schema(); !strings.Contains(s, "CREATE TABLE IF NOT EXISTS ferry_outbox") {
			t.Fatalf("Schema() = %q", s)
		}
	})
}

// On PostgreSQL an event committed while an older transaction is still in
// progress is held back until that one ends (it could still store events
// ordered before it); the relay looks again by itself, without a wake-up
// or a poll, once it has.
func TestEventBehindALongTransaction(t *testing.T) {
	dsn := dbtest.PostgresURL(t)
	db, other := open(t, dsn), open(t, dsn)
	migrate(t, db)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE report (n INT)`); err != nil {
		t.Fatal(err)
	}
	long, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Rollback()
	if _, err := long.ExecContext(ctx, `INSERT INTO report VALUES (1)`); err != nil { // now it has a transaction ID
		t.Fatal(err)
	}
	b := newFaulty(t)
	got := collect(t, b, "orders.placed")
	r := startRelay(t, db, outbox.WithBroker(b), outbox.WithPollInterval(time.Hour))
	place(t, db, &Order{ID: "o-1"})
	ferrytest.Eventually(t, "the relay to have looked at the table", func() bool {
		n, _, err := r.Backlog(ctx)
		return err == nil && n == 1
	})
	if got.n() != 0 {
		t.Fatal("an event was published while an older transaction could still store one before it")
	}
	if err := long.Commit(); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, "the event published once the older transaction ended", func() bool { return got.n() == 1 })
}

// recorder is a real memory broker that fails one publish in ten (a
// broker having a bad moment) and records, per key, the order in which it
// took each key's events.
type recorder struct {
	*faulty
	mu    sync.Mutex
	order map[string][]int
}

func (f *recorder) Publish(ctx context.Context, m *broker.Message) error {
	if rand.IntN(10) == 0 {
		return errs.New(errs.Unavailable, "broker: a bad moment")
	}
	var o Order
	if err := jsonUnmarshal(m.Data, &o); err != nil {
		return err
	}
	if err := f.faulty.Publish(ctx, m); err != nil {
		return err
	}
	f.mu.Lock()
	f.order[o.ID] = append(f.order[o.ID], o.Seq)
	f.mu.Unlock()
	return nil
}

// Three relays on one database, a broker that fails now and then, and
// writers committing many keys at once: every key's events reach the
// broker in the order they were committed. (A replica whose batch skipped
// a key's row locked by another replica, between two rows of its own,
// once published the later one first.)
func TestOrderPerKeyAcrossReplicas(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := open(t, dsn)
		migrate(t, db)
		ctx := context.Background()
		b := &recorder{faulty: newFaulty(t), order: map[string][]int{}}
		for i := range 3 {
			startRelay(t, open(t, dsn), outbox.WithName(fmt.Sprint("r", i)), outbox.WithBroker(b), outbox.WithBatchSize(20),
				outbox.WithConcurrency(4), outbox.WithMaxBackoff(100*time.Millisecond), outbox.WithPollInterval(20*time.Millisecond))
		}
		const writers, each, keysPerWriter = 8, 120, 4
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for s := range each {
					key := fmt.Sprintf("k%d-%d", w, s%keysPerWriter)
					err := outbox.Transact(ctx, db, func(tx *sql.Tx) error {
						return outbox.Publish(ctx, tx, "orders.placed", &Order{ID: key, Seq: s}, broker.WithKey(key))
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		ferrytest.Eventually(t, "every event sent", func() bool { return count(t, db, "sent_us IS NULL") == 0 })
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.order) != writers*keysPerWriter {
			t.Fatalf("%d keys published, want %d", len(b.order), writers*keysPerWriter)
		}
		for k, seqs := range b.order {
			if !slices.IsSorted(seqs) {
				t.Errorf("key %s published out of order: %v", k, seqs)
			}
		}
	})
}
