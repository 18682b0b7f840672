package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/contrib/broker/kafka"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRebalance: while jobs flow, a second member joins the group, works,
// and leaves again: no job is skipped, and none is handled twice.
//
// A record is handled twice only if a member handled it but its commit
// could not cover it when the partition moved: the partition was lost (a
// failed session: nothing committed), the commit at revocation or Drain
// failed, or handlers ran past AckWait and were cancelled. Ferry logs
// each of these; unless one was logged, a duplicate fails the test — the
// records of a partition that start are a prefix of those polled, all
// finish before its commit, and the next owner starts at that commit. A
// job stored twice (two offsets: a producer retry) is reported apart.
func TestRebalance(t *testing.T) {
	const (
		topic = "rebalance.jobs"
		queue = "rebalancers"
		limit = 20000 // the publisher stops here at the latest
	)
	addr := newCluster(t)
	ctx := ferrytest.Context(t)
	var warned warnings
	logger := kafka.WithLogger(slog.New(&warned))
	b := newBroker(t, addr, groupTimeouts(), logger)
	var (
		mu      sync.Mutex
		handled = map[int][]handling{} // by job
		byA     atomic.Int64
		byB     atomic.Int64
	)
	handler := func(member string, n *atomic.Int64) func(context.Context, *broker.Event[Job]) error {
		return func(ctx context.Context, e *broker.Event[Job]) error {
			time.Sleep(time.Millisecond) // work
			r, _ := kafka.RecordFromContext(ctx)
			mu.Lock()
			handled[e.Data.N] = append(handled[e.Data.N], handling{member, r.Partition, r.Offset})
			mu.Unlock()
			n.Add(1)
			return nil
		}
	}
	opts := []broker.SubscribeOption{broker.Queue(queue), broker.Concurrency(4), broker.Backoff(10 * time.Millisecond)}
	subA, err := broker.Subscribe(ctx, b, topic, handler("A", &byA), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer subA.Drain(ctx)

	// Publish until told to stop.
	var published atomic.Int64
	stop := make(chan struct{})
	pubDone := make(chan error, 1)
	go func() {
		for i := range limit {
			select {
			case <-stop:
				pubDone <- nil
				return
			default:
			}
			if err := broker.Publish(ctx, b, topic, &Job{N: i}); err != nil {
				pubDone <- err
				return
			}
			published.Add(1)
		}
		pubDone <- nil
	}()

	ferrytest.Eventually(t, "member A working", func() bool { return byA.Load() >= 100 })
	b2 := newBroker(t, addr, groupTimeouts(), logger)
	subB, err := broker.Subscribe(ctx, b2, topic, handler("B", &byB), opts...)
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, "member B working after joining", func() bool { return byB.Load() >= 100 })
	aBefore := byA.Load()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = subB.Drain(dctx)
	cancel()
	if err != nil {
		t.Fatalf("Drain(B) = %v", err)
	}
	ferrytest.Eventually(t, "member A taking over after B left", func() bool { return byA.Load() >= aBefore+200 })
	close(stop)
	if err := <-pubDone; err != nil {
		t.Fatalf("publishing: %v", err)
	}
	total := int(published.Load())
	ferrytest.Eventually(t, "every published job processed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == total
	})
	mu.Lock()
	defer mu.Unlock()
	var replayed, stored []string // handled twice at one offset; stored at two
	for n, hs := range handled {
		if n >= total {
			t.Errorf("job %d processed, but only %d were published", n, total)
		}
		records := map[[2]int64]int{} // handlings per record
		for _, h := range hs {
			records[[2]int64{int64(h.partition), h.offset}]++
		}
		for _, c := range records {
			for range c - 1 {
				replayed = append(replayed, fmt.Sprintf("job %d: %v", n, hs))
			}
		}
		for range len(records) - 1 {
			stored = append(stored, fmt.Sprintf("job %d: %v", n, hs))
		}
	}
	why := warned.replays()
	t.Logf("rebalance: %d jobs published; member A processed %d, member B %d (joined, then left); 0 skipped, %d handled twice, %d stored twice; warnings explaining replays: %d",
		total, byA.Load(), byB.Load(), len(replayed), len(stored), len(why))
	for _, w := range why {
		t.Logf("warning: %s", w)
	}
	switch {
	case len(replayed) > 0 && len(why) == 0:
		t.Errorf("%d records handled twice, with no lost partition, failed commit or cancelled handler to explain it: %v", len(replayed), replayed)
	case len(replayed) > 0:
		t.Logf("handled twice: %v", replayed)
	}
	if len(stored) > 0 {
		t.Logf("stored twice by the producer (not a consumer replay): %v", stored)
	}
}

// handling is one handling of a job: by which member, and which record.
type handling struct {
	member    string
	partition int32
	offset    int64
}

func (h handling) String() string { return fmt.Sprintf("%s@%d/%d", h.member, h.partition, h.offset) }

// warnings is a slog.Handler keeping the messages of Warn and above.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	return nil
}

func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

// replays returns the warnings that announce records handled again: a
// lost partition, a failed commit at revocation or Drain, handlers
// cancelled past AckWait.
func (w *warnings) replays() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, m := range w.msgs {
		for _, s := range []string{"partitions lost", "committing revoked partitions", "cancelling them", "final commit failed"} {
			if strings.Contains(m, s) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// TestPoisonMessage: a message whose handler always fails is delivered
// exactly MaxDeliver times, then stored exactly once on the dead-letter
// topic, and its offset committed; the messages around it flow on.
func TestPoisonMessage(t *testing.T) {
	const (
		topic      = "poison.orders"
		maxDeliver = 4
	)
	addr := newCluster(t)
	ctx := ferrytest.Context(t)
	b := newBroker(t, addr)
	var (
		attempts atomic.Int64
		good     atomic.Int64
		lastTry  atomic.Int64
	)
	sub, err := broker.Subscribe(ctx, b, topic, func(ctx context.Context, e *broker.Event[Job]) error {
		if e.Data.N == 0 {
			attempts.Add(1)
			lastTry.Store(int64(e.Attempt))
			return errors.New("cannot process job 0")
		}
		good.Add(1)
		return nil
	}, broker.Queue("poisoned"), broker.MaxDeliver(maxDeliver), broker.Backoff(10*time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Drain(ctx)
	for i := range 21 {
		if err := broker.Publish(ctx, b, topic, &Job{N: i}, broker.WithID("job-"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	// Once every offset is committed, nothing is left to deliver.
	ferrytest.Eventually(t, "every offset committed", func() bool {
		sum := int64(0)
		for _, o := range topicOffsets(t, ctx, addr, "poisoned__"+topic) {
			sum += o
		}
		return sum == 21
	})
	if got := attempts.Load(); got != maxDeliver {
		t.Errorf("poison message handled %d times, want exactly MaxDeliver = %d", got, maxDeliver)
	}
	if got := lastTry.Load(); got != maxDeliver {
		t.Errorf("last Delivery.Attempt = %d, want %d", got, maxDeliver)
	}
	if got := good.Load(); got != 20 {
		t.Errorf("%d good messages processed, want 20", got)
	}
	letters := readAll(t, ctx, addr, broker.DeadLetterPrefix+topic)
	if len(letters) != 1 {
		t.Fatalf("%d records on the dead-letter topic, want exactly 1", len(letters))
	}
	h := map[string]string{}
	for _, rh := range letters[0].Headers {
		h[rh.Key] = string(rh.Value)
	}
	for k, want := range map[string]string{
		broker.DeadLetterTopicKey:        topic,
		broker.DeadLetterDeliveriesKey:   "4",
		broker.DeadLetterSubscriptionKey: "poisoned",
		broker.DeadLetterIDKey:           "job-a",
		broker.DeadLetterErrorKey:        "cannot process job 0",
	} {
		if h[k] != want {
			t.Errorf("dead letter header %s = %q, want %q", k, h[k], want)
		}
	}
	t.Logf("poison message: %d attempts (MaxDeliver %d), %d dead letter, %d good messages", attempts.Load(), maxDeliver, len(letters), good.Load())
}

// TestOrderedOnePartition: on a topic of one partition, Ordered processes
// in publish order, a failing message holding back the rest — what
// BrokerConformance's Ordered case asks, which Kafka gives per partition
// only.
func TestOrderedOnePartition(t *testing.T) {
	const topic = "ordered.steps"
	addr := newCluster(t)
	ctx := ferrytest.Context(t)
	b := newBroker(t, addr, kafka.WithPartitions(1, -1))
	var (
		mu    sync.Mutex
		order []int
	)
	var failedOnce atomic.Bool
	sub, err := broker.Subscribe(ctx, b, topic, func(ctx context.Context, e *broker.Event[Job]) error {
		if e.Data.N == 5 && !failedOnce.Swap(true) {
			return errors.New("fail 5 once")
		}
		mu.Lock()
		order = append(order, e.Data.N)
		mu.Unlock()
		return nil
	}, broker.Queue("ordered"), broker.Ordered(), broker.Backoff(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Drain(ctx)
	const n = 30
	for i := range n {
		if err := broker.Publish(ctx, b, topic, &Job{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	ferrytest.Eventually(t, "every message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) >= n
	})
	mu.Lock()
	defer mu.Unlock()
	for i, v := range order {
		if v != i {
			t.Fatalf("processing order = %v, want 0..%d in order", order, n-1)
		}
	}
}

// topicOffsets is groupOffsets under a clearer name for a group of any
// topic.
func topicOffsets(t testing.TB, ctx context.Context, addr, group string) map[int32]int64 {
	return groupOffsets(t, ctx, addr, group)
}

// readAll returns every record of topic, reading it outside any group.
func readAll(t testing.TB, ctx context.Context, addr, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	var out []*kgo.Record
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %d of %d records before %v", topic, len(out), want, err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}
