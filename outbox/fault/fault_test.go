// Package fault_test is the outbox's fault test: orders committed with
// their events through a real database, a relay in a process of its own
// that is SIGKILLed once, a JetStream server stopped and restarted under
// it, and a consumer behind the inbox whose acknowledgements get lost;
// every committed order must be applied exactly once, and nothing rolled
// back ever seen.
package fault_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	jsbroker "github.com/ferry-go/ferry/broker/jetstream"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/inbox"
	"github.com/ferry-go/ferry/internal/dbtest"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/outbox"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener lives as long as its *sql.DB.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}

// The run.
const (
	orders             = 5000
	writers            = 8
	customersPerWriter = 4 // each customer (ordering key) belongs to one writer
	rollbackOneIn      = 10
	// stopNATSAt and restartNATSAt are the commits after which the NATS
	// server is stopped and started again (same port, same store).
	stopNATSAt    = 1000
	restartNATSAt = 2500
	// killAfterPublishes: the relay process is SIGKILLed once the server,
	// back, has seen this many of its publishes — while it drains the
	// backlog of the outage, so that it dies between publishing events and
	// marking them sent.
	killAfterPublishes = 300
	// injectOneIn: the consumer loses the acknowledgement of about one
	// first delivery in 25 after the inbox committed it.
	injectOneIn = 25

	topic     = "fault.orders"
	stream    = "FAULT"
	queue     = "billing"
	consumer  = "billing__fault_orders" // the durable of queue on topic
	faultTime = 4 * time.Minute         // the whole run, per dialect
)

// Order is the event of an order.
type Order struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Seq      int    `json:"seq"` // per customer, in commit order
}

var errRollback = errors.New("deliberate rollback")

// TestOutboxFault proves the outbox and the inbox under faults, on each
// dialect: 5,000 orders committed by 8 writers, one transaction each (an
// orders row and its event keyed by customer; about 550 more rolled back
// after publishing), while the NATS server is stopped from the 1,000th
// commit to the 2,500th and the relay process is SIGKILLed once, mid-round,
// and replaced; the consumer, behind the inbox, loses the acknowledgement
// of a few first deliveries after commit. Every committed order must be
// applied exactly once, nothing of a rolled-back one seen anywhere, and
// the stream must hold each committed event once, in order per customer.
func TestOutboxFault(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 orders through a relay process, a NATS restart and a SIGKILL")
	}
	dbtest.Each(t, runFault)
}

// run is one dialect's run and its counts.
type run struct {
	werr     chan error // the writers' failures
	t        *testing.T
	ctx      context.Context
	dsn      string
	db       *sql.DB
	nats     *natsServer
	logs     *ferrytest.Buffer  // warnings of the consumer side
	relay    *ferrytest.Child   // the running relay process
	relays   []*ferrytest.Child // every one started
	wireConn *nats.Conn

	nextOrder   atomic.Int64 // order numbers handed out
	slots       atomic.Int64 // commits begun, up to orders
	committed   atomic.Int64
	downCommits atomic.Int64 // committed while the server was down
	natsDown    atomic.Bool
	steps       []*step

	mu         sync.Mutex
	commitIDs  map[string]Order
	rolledBack map[string]bool
	delivered  map[string]int // message ID → deliveries reaching the consumer
	onWire     map[string]int // message ID → publishes the server routed (a lower bound)
	wire       atomic.Int64
	killAt     atomic.Int64  // the publish seen at which the relay is killed
	killNow    chan struct{} // closed at that publish
	mismatch   []string
	asyncMsgs  []string // the first asynchronous errors of the NATS connections

	deliveries  atomic.Int64 // handler chain entries
	injected    atomic.Int64 // acknowledgements lost on purpose
	chainErrors atomic.Int64 // deliveries the inbox or handler failed
	asyncErrors atomic.Int64 // reported by the parent's NATS connections
	restarts    int
	inDoubt     int // published but not marked sent when the relay died
	backlogKill int // unsent when the relay died
}

// step is a fault injected once committed reaches at: writers that see
// the count reached wait until it is done, so it lands at that count, give
// or take the transactions in flight.
type step struct {
	at      int64
	reached chan struct{} // closed by the writer of commit number at
	done    chan struct{}
}

func runFault(t *testing.T, dsn string) {
	ctx, cancel := context.WithTimeout(ferrytest.Context(t), faultTime)
	defer cancel()
	began := time.Now()
	r := &run{
		t: t, ctx: ctx, dsn: dsn, logs: &ferrytest.Buffer{},
		commitIDs: map[string]Order{}, rolledBack: map[string]bool{},
		delivered: map[string]int{}, onWire: map[string]int{}, killNow: make(chan struct{}),
	}
	r.db = dbtest.Open(t, dbtest.Driver(dsn), dsn)
	r.schema()
	r.nats = startNATS(t, ctx)
	logger := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))

	nc := r.connect("outbox-fault-consumer")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := jsbroker.New(ctx, js, jsbroker.WithLogger(logger), jsbroker.WithStream(jetstream.StreamConfig{
		Name: stream, Subjects: []string{"fault.>"}, Storage: jetstream.FileStorage,
		Duplicates: 5 * time.Minute, // the whole run: every re-publish is de-duplicated
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	r.wireConn = r.connect("outbox-fault-wire")
	r.watchWire()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	ib := inbox.New(r.db, inbox.WithMeterProvider(mp), inbox.WithLogger(logger))
	sub, err := broker.Subscribe(ctx, b, topic, r.apply,
		broker.Queue(queue), broker.Concurrency(8), broker.AckWait(3*time.Second),
		broker.MaxDeliver(1000), broker.Backoff(20*time.Millisecond), broker.WithLogger(logger),
		broker.WithMiddleware(r.loseAcks, ib.Middleware()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sub.Drain(dctx)
	})

	r.relay = r.startRelay()
	stopAt, restartAt := r.newStep(stopNATSAt), r.newStep(restartNATSAt)

	// Writers in goroutines; the faults are injected from the test's own
	// goroutine, which may fail the test.
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	werr := make(chan error, writers)
	r.werr = werr
	for w := range writers {
		wg.Go(func() {
			if err := r.write(wctx, w); err != nil {
				werr <- fmt.Errorf("writer %d: %w", w, err)
				stopWriters()
			}
		})
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()
	defer func() { stopWriters(); <-writersDone }()

	r.await(stopAt.reached, writersDone, "commit %d", stopNATSAt)
	r.milestone("stopping NATS")
	r.nats.stop()
	r.natsDown.Store(true)
	close(stopAt.done)

	r.await(restartAt.reached, writersDone, "commit %d", restartNATSAt)
	r.milestone("NATS down; starting it again")
	r.natsDown.Store(false)
	wireAtRestart := r.wire.Load() // nothing is published while the server is down
	r.killAt.Store(wireAtRestart + killAfterPublishes)
	r.nats.start(t, ctx)
	close(restartAt.done)

	select {
	case <-r.killNow:
	case <-ctx.Done():
		t.Fatalf("the relay did not publish %d events after the server came back: %v (%d seen)", killAfterPublishes, ctx.Err(), r.wire.Load()-wireAtRestart)
	}
	r.killRelay()
	r.milestone("relay killed and started again")

	select {
	case <-writersDone:
	case <-ctx.Done():
		t.Fatalf("writers not done: %v (%d committed)", ctx.Err(), r.committed.Load())
	}
	close(werr)
	for err := range werr {
		t.Fatal(err)
	}
	r.milestone("writers done")
	committed := r.committed.Load()

	// Everything committed is applied, nothing is left to deliver, the
	// outbox is empty.
	cons, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		t.Fatal(err)
	}
	var applied, unsent int64
	var ci *jetstream.ConsumerInfo
	settled := func() bool {
		if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM applied`).Scan(&applied); err != nil || applied < committed {
			return false
		}
		if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM ferry_outbox WHERE sent_us IS NULL`).Scan(&unsent); err != nil || unsent > 0 {
			return false
		}
		ci, err = cons.Info(ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	}
	// Wait as long as the backlog shrinks (a SQLite relay drains most of
	// it once the writers stop), within the run's bound.
	for {
		before := r.deliveries.Load()
		if err = ferrytest.Poll(ctx, settled); err == nil || r.deliveries.Load() == before || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("not settled: %v: %d of %d committed orders applied, %d events unsent, consumer %+v\n%s\nconsumer warnings:\n%s",
			err, applied, committed, unsent, ci, r.relayLogs(), tail(r.logs.String()))
	}
	r.check(js, reader)
	r.mu.Lock()
	defer r.mu.Unlock()
	dups := duplicates(t, reader)
	t.Logf("%s: committed %d, rolled back %d; relay restarts %d (SIGKILL with %d events unsent, %d of them published but not marked); "+
		"NATS down for %d commits; publishes seen by the server ≥ %d for %d events; deliveries %d (acknowledgements lost on purpose %d, failed %d), "+
		"duplicates skipped by the inbox %d, applied %d, lost 0; NATS client errors %d; %v",
		t.Name(), committed, len(r.rolledBack), r.restarts, r.backlogKill, r.inDoubt,
		r.downCommits.Load(), r.wire.Load(), len(r.onWire), r.deliveries.Load(), r.injected.Load(), r.chainErrors.Load(),
		dups, applied, r.asyncErrors.Load(), time.Since(began).Round(100*time.Millisecond))
	for _, m := range r.asyncMsgs {
		t.Log(m) // a slow consumer after the restart: its messages come back after the ack wait
	}
}

// milestone logs how far the run got.
func (r *run) milestone(what string) {
	var unsent int64
	_ = r.db.QueryRowContext(r.ctx, `SELECT count(*) FROM ferry_outbox WHERE sent_us IS NULL`).Scan(&unsent)
	r.t.Logf("%s: %d committed, %d unsent, %d publishes seen, %d deliveries", what, r.committed.Load(), unsent, r.wire.Load(), r.deliveries.Load())
}

// schema makes the outbox, inbox and application tables.
func (r *run) schema() {
	d, err := outbox.DialectOf(r.db)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := outbox.Migrate(r.ctx, r.db, d); err != nil {
		r.t.Fatal(err)
	}
	if err := inbox.Migrate(r.ctx, r.db, d); err != nil {
		r.t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE orders (id TEXT PRIMARY KEY, customer TEXT NOT NULL, seq INTEGER NOT NULL)`,
		`CREATE TABLE applied (order_id TEXT PRIMARY KEY, n INTEGER NOT NULL)`,
	} {
		if _, err := r.db.ExecContext(r.ctx, q); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *run) newStep(at int64) *step {
	s := &step{at: at, reached: make(chan struct{}), done: make(chan struct{})}
	r.steps = append(r.steps, s)
	return s
}

// await waits for c, failing if the writers end or the run's time runs
// out first.
func (r *run) await(c, writersDone <-chan struct{}, format string, args ...any) {
	r.t.Helper()
	select {
	case <-c:
	case <-writersDone:
		select {
		case <-c:
		default:
			var why error
			select {
			case why = <-r.werr:
			default:
			}
			r.t.Fatalf("writers ended before "+format+" (%d committed): %v", append(args, r.committed.Load(), why)...)
		}
	case <-r.ctx.Done():
		r.t.Fatalf("waiting for "+format+": %v (%d committed)", append(args, r.ctx.Err(), r.committed.Load())...)
	}
}

// write commits orders until the orders are all committed: each in a
// transaction of its own that inserts the order and publishes its event
// keyed by the customer; about one in rollbackOneIn more is rolled back
// after publishing.
func (r *run) write(ctx context.Context, w int) error {
	rng := rand.New(rand.NewPCG(uint64(w), 16))
	seq := map[string]int{}
	for {
		if err := r.gate(ctx); err != nil {
			return err
		}
		rollback := rng.IntN(rollbackOneIn) == 0
		// A transaction to commit takes one of the orders' slots first, so
		// that exactly that many commit; rolled-back ones are extra.
		if rollback && r.slots.Load() >= orders || !rollback && r.slots.Add(1) > orders {
			return nil
		}
		cust := fmt.Sprintf("cust-%d-%d", w, rng.IntN(customersPerWriter))
		seq[cust]++
		o := Order{ID: fmt.Sprintf("order-%05d", r.next()), Customer: cust, Seq: seq[cust]}
		err := outbox.Transact(ctx, r.db, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO orders (id, customer, seq) VALUES ($1, $2, $3)`, o.ID, o.Customer, o.Seq); err != nil {
				return err
			}
			if err := outbox.Publish(ctx, tx, topic, &o, broker.WithID(o.ID), broker.WithKey(o.Customer)); err != nil {
				return err
			}
			if rollback {
				return errRollback
			}
			return nil
		})
		switch {
		case rollback && errors.Is(err, errRollback):
			r.mu.Lock()
			r.rolledBack[o.ID] = true
			r.mu.Unlock()
		case err != nil:
			return fmt.Errorf("order %s: %w", o.ID, err)
		default:
			r.mu.Lock()
			r.commitIDs[o.ID] = o
			r.mu.Unlock()
			if r.natsDown.Load() {
				r.downCommits.Add(1)
			}
			n := r.committed.Add(1)
			for _, s := range r.steps {
				if n == s.at {
					close(s.reached)
				}
			}
		}
	}
}

// next hands out order numbers, from 0.
func (r *run) next() int64 { return r.nextOrder.Add(1) - 1 }

// gate holds a writer while a fault whose count is reached is under way.
func (r *run) gate(ctx context.Context) error {
	n := r.committed.Load()
	for _, s := range r.steps {
		if n >= s.at {
			select {
			case <-s.done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// startRelay starts a relay process.
func (r *run) startRelay() *ferrytest.Child {
	spec, err := json.Marshal(relaySpec{DSN: r.dsn, NATS: r.nats.url})
	if err != nil {
		r.t.Fatal(err)
	}
	c := ferrytest.StartChildTest(r.t, "TestRelayProcess", relayEnv, string(spec))
	r.relays = append(r.relays, c)
	return c
}

// relayLogs is what the relay processes wrote to stderr.
func (r *run) relayLogs() string {
	var sb strings.Builder
	for i, c := range r.relays {
		fmt.Fprintf(&sb, "relay process %d:\n%s\n", i+1, tail(c.Stderr()))
	}
	return sb.String()
}

// killRelay SIGKILLs the relay process, counts what it left in doubt, and
// starts another.
func (r *run) killRelay() {
	t := r.t
	if err := r.relay.Kill(); err != nil {
		t.Fatalf("kill the relay: %v", err)
	}
	// Whatever the dead relay published has reached the wire watcher once
	// a round trip on the watcher's connection is done.
	if err := r.wireConn.FlushTimeout(10 * time.Second); err != nil {
		t.Logf("flush: %v", err)
	}
	rows, err := r.db.QueryContext(r.ctx, `SELECT message_id FROM ferry_outbox WHERE sent_us IS NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	r.mu.Lock()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			r.mu.Unlock()
			t.Fatal(err)
		}
		r.backlogKill++
		if r.onWire[id] > 0 {
			r.inDoubt++
		}
	}
	r.mu.Unlock()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	r.relay = r.startRelay()
	r.restarts++
}

// watchWire counts the publishes the server routes on the stream's
// subjects — every one the relay makes, duplicates included — from a
// plain subscription of its own (a lower bound: none while the server is
// down, and a few may pass before it subscribes again after the restart).
func (r *run) watchWire() {
	t := r.t
	t.Helper()
	_, err := r.wireConn.Subscribe("fault.>", func(m *nats.Msg) {
		id := m.Header.Get(jetstream.MsgIDHeader)
		r.mu.Lock()
		r.onWire[id]++
		r.mu.Unlock()
		if r.wire.Add(1) == r.killAt.Load() {
			close(r.killNow)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.wireConn.Flush(); err != nil {
		t.Fatal(err)
	}
}

// loseAcks is the consumer's outer middleware: it counts deliveries and,
// for about one first delivery in injectOneIn, fails after the inbox and
// the handler committed, as if the acknowledgement had been lost — the
// broker redelivers, and the inbox must skip the redelivery.
func (r *run) loseAcks(next middleware.Handler) middleware.Handler {
	return func(ctx context.Context, req any) (any, error) {
		d, ok := broker.DeliveryFromContext(ctx)
		if !ok {
			return nil, errs.New(errs.Internal, "fault: no delivery in the context")
		}
		r.deliveries.Add(1)
		r.mu.Lock()
		r.delivered[d.ID]++
		r.mu.Unlock()
		resp, err := next(ctx, req)
		if err != nil {
			r.chainErrors.Add(1)
			return resp, err
		}
		if d.Attempt == 1 && hash(d.ID)%injectOneIn == 0 {
			r.injected.Add(1)
			return nil, errs.New(errs.Unavailable, "fault: acknowledgement lost after commit")
		}
		return resp, nil
	}
}

// apply is the consumer's handler: it counts the order applied in the
// inbox's transaction, so that applying it twice would show as n = 2.
func (r *run) apply(ctx context.Context, e *broker.Event[Order]) error {
	if e.ID != e.Data.ID {
		r.mu.Lock()
		r.mismatch = append(r.mismatch, fmt.Sprintf("message ID %s carries order %s", e.ID, e.Data.ID))
		r.mu.Unlock()
	}
	tx := inbox.Tx(ctx)
	if tx == nil {
		return errs.New(errs.Internal, "fault: no inbox transaction")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO applied (order_id, n) VALUES ($1, 1) ON CONFLICT (order_id) DO UPDATE SET n = applied.n + 1`, e.Data.ID)
	return err
}

// check asserts the end state; the counts are settled.
func (r *run) check(js jetstream.JetStream, reader *sdkmetric.ManualReader) {
	t, ctx := r.t, r.ctx
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if int64(len(r.commitIDs)) != r.committed.Load() {
		t.Fatalf("%d committed IDs for %d commits", len(r.commitIDs), r.committed.Load())
	}
	if len(r.commitIDs) != orders {
		t.Errorf("%d orders committed, want %d", len(r.commitIDs), orders)
	}
	for _, m := range r.mismatch {
		t.Error(m)
	}

	// Applied: every committed order exactly once, nothing else.
	applied := map[string]int{}
	queryPairs(t, ctx, r.db, `SELECT order_id, n FROM applied`, func(id string, n int) { applied[id] = n })
	lost, twice := 0, 0
	for id := range r.commitIDs {
		switch n := applied[id]; {
		case n == 0:
			lost++
			if lost <= 5 {
				t.Errorf("order %s committed, never applied (delivered %d times, on the wire %d times)", id, r.delivered[id], r.onWire[id])
			}
		case n > 1:
			twice++
			if twice <= 5 {
				t.Errorf("order %s applied %d times", id, n)
			}
		}
	}
	if lost > 0 || twice > 0 {
		t.Errorf("%d committed orders lost, %d applied more than once", lost, twice)
	}
	if len(applied) != len(r.commitIDs) {
		t.Errorf("%d orders applied, %d committed", len(applied), len(r.commitIDs))
	}

	// Rolled back: nowhere.
	inOutbox := map[string]bool{}
	queryPairs(t, ctx, r.db, `SELECT message_id, CASE WHEN sent_us IS NULL THEN 0 ELSE 1 END + CASE WHEN dead THEN 2 ELSE 0 END FROM ferry_outbox`, func(id string, state int) {
		inOutbox[id] = true
		if state != 1 {
			t.Errorf("outbox event %s: sent+2×dead = %d, want sent and not dead", id, state)
		}
	})
	var orderRows int
	if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM orders`).Scan(&orderRows); err != nil {
		t.Fatal(err)
	}
	if orderRows != len(r.commitIDs) {
		t.Errorf("orders table holds %d rows, %d committed", orderRows, len(r.commitIDs))
	}
	for id := range r.rolledBack {
		if r.delivered[id] > 0 || applied[id] > 0 || inOutbox[id] || r.onWire[id] > 0 {
			t.Errorf("rolled-back order %s: delivered %d, applied %d, in the outbox %v, published %d times", id, r.delivered[id], applied[id], inOutbox[id], r.onWire[id])
		}
	}
	if len(inOutbox) != len(r.commitIDs) {
		t.Errorf("outbox holds %d events, %d committed", len(inOutbox), len(r.commitIDs))
	}

	// The stream: each committed event once (re-publishes de-duplicated),
	// in order per customer; nothing dead-lettered.
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(r.commitIDs)) {
		t.Errorf("stream holds %d messages for %d committed events: JetStream's de-duplication let a re-publish through, or an event is missing", info.State.Msgs, len(r.commitIDs))
	}
	r.checkOrder(js, info)
	if dlq, err := js.Stream(ctx, jsbroker.DefaultDeadLetterStream); err != nil {
		t.Error(err)
	} else if di, err := dlq.Info(ctx); err != nil {
		t.Error(err)
	} else if di.State.Msgs != 0 {
		t.Errorf("%d dead letters", di.State.Msgs)
	}

	// Every delivery was applied once, skipped as a duplicate, or failed
	// (and was delivered again).
	dups := duplicates(t, reader)
	if got := int64(len(applied)) + dups + r.chainErrors.Load(); got != r.deliveries.Load() {
		t.Errorf("deliveries %d ≠ applied %d + duplicates skipped %d + failed %d", r.deliveries.Load(), len(applied), dups, r.chainErrors.Load())
	}
	if dups < r.injected.Load() {
		t.Errorf("inbox skipped %d duplicates, but %d acknowledgements were lost on purpose (each is redelivered)", dups, r.injected.Load())
	}
	if r.injected.Load() == 0 {
		t.Error("no acknowledgement was lost: the inbox was not put to the test")
	}
}

// checkOrder reads the whole stream, message by message by stream
// sequence (direct gets: no consumer whose resets could replay a range),
// and checks that each customer's events are stored in the order its
// orders were committed.
func (r *run) checkOrder(js jetstream.JetStream, info *jetstream.StreamInfo) {
	t, ctx := r.t, r.ctx
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int{}
	lastSeq := map[string]uint64{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("reading the stream at %d: %v", seq, err)
		}
		var o Order
		if err := json.Unmarshal(m.Data, &o); err != nil {
			t.Fatal(err)
		}
		if o.Seq <= last[o.Customer] {
			t.Errorf("stream: %s's order %s (#%d) stored at sequence %d, after #%d at %d", o.Customer, o.ID, o.Seq, seq, last[o.Customer], lastSeq[o.Customer])
		}
		last[o.Customer], lastSeq[o.Customer] = o.Seq, seq
	}
}

// duplicates is the inbox's duplicates counter.
func duplicates(t *testing.T, reader *sdkmetric.ManualReader) int64 {
	t.Helper()
	return ferrytest.CounterSum(t, reader, inbox.MetricDuplicates)
}

func queryPairs(t *testing.T, ctx context.Context, db *sql.DB, q string, f func(string, int)) {
	t.Helper()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		f(s, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func hash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// tail is the end of a long log.
func tail(s string) string {
	const keep = 8 << 10
	if len(s) > keep {
		return "…" + s[len(s)-keep:]
	}
	return s
}

// natsServer is an embedded JetStream server that is stopped and started
// again on the same port and store.
type natsServer struct {
	mu   sync.Mutex
	s    *natsembed.Server
	dir  string
	port int
	url  string
}

func startNATS(t *testing.T, ctx context.Context) *natsServer {
	t.Helper()
	n := &natsServer{dir: t.TempDir()}
	n.start(t, ctx)
	n.port = n.s.Addr().(*net.TCPAddr).Port
	n.url = n.s.ClientURL()
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start(t *testing.T, ctx context.Context) {
	t.Helper()
	s, err := natsembed.Start(ctx, natsembed.Options{JetStream: true, StoreDir: n.dir, Port: n.port})
	if err != nil {
		t.Fatalf("start NATS (port %d): %v", n.port, err)
	}
	n.mu.Lock()
	n.s = s
	n.mu.Unlock()
}

func (n *natsServer) stop() {
	n.mu.Lock()
	s := n.s
	n.mu.Unlock()
	s.Shutdown()
}

// connect connects to the server for the rest of the test, reconnecting
// for ever; asynchronous errors (a slow consumer) are counted and logged
// with the consumer's warnings rather than printed.
func (r *run) connect(name string) *nats.Conn {
	r.t.Helper()
	nc, err := nats.Connect(r.nats.url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			msg := fmt.Sprintf("nats connection %s: %v (subscription %q; at commit %d, server down %v)", name, err, subject, r.committed.Load(), r.natsDown.Load())
			if r.asyncErrors.Add(1) <= 5 {
				r.mu.Lock()
				r.asyncMsgs = append(r.asyncMsgs, msg)
				r.mu.Unlock()
			}
			fmt.Fprintln(r.logs, msg)
		}))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(nc.Close)
	return nc
}
