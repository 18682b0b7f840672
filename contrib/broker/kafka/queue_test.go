package kafka

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/ferry-go/ferry/broker"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testSubscription is a subscription without a client: enough to file
// records, take them as the workers do, handle and revoke them.
func testSubscription(t *testing.T, h broker.Handler) *subscription {
	t.Helper()
	cfg, err := broker.NewSubscribeConfig("jobs", broker.Queue("q"))
	if err != nil {
		t.Fatal(err)
	}
	s := &subscription{
		topic:     "jobs",
		name:      cfg.Name("jobs"),
		h:         h,
		cfg:       cfg,
		parts:     map[tp]*partition{},
		stopping:  make(chan struct{}),
		commitSig: make(chan struct{}, 1),
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(s.cancel)
	s.queue.init(minPrefetch)
	return s
}

// poll files records of partition 0 at offsets as one poll, and queues
// them.
func (s *subscription) testPoll(offsets ...int64) {
	s.queue.put(s.file(len(offsets), func(f func(*kgo.Record)) {
		for _, o := range offsets {
			f(&kgo.Record{Topic: "jobs", Partition: 0, Offset: o})
		}
	}))
}

// takeRest takes what is left of the queued records, recording the
// offsets start refuses, until none is left; then closes the queue.
func (s *subscription) takeRest(t *testing.T) (refused []int64) {
	t.Helper()
	got := make(chan *job)
	empty := make(chan struct{})
	go func() {
		got <- s.queue.take(func(j *job) bool {
			if s.start(j) {
				return true
			}
			refused = append(refused, j.rec.Offset)
			if s.queue.waiting == 0 { // under the queue's lock
				close(empty)
			}
			return false
		})
	}()
	<-empty
	s.queue.close()
	if j := <-got; j != nil {
		t.Fatalf("a record at offset %d started", j.rec.Offset)
	}
	return refused
}

// recorder is a handler noting the offsets it handled.
type recorder struct {
	mu      sync.Mutex
	offsets []int64
}

func (r *recorder) handle(ctx context.Context, _ *broker.Delivery) error {
	rec, _ := RecordFromContext(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.offsets = append(r.offsets, rec.Offset)
	return nil
}

// TestRevocationKeepsStartedPrefix: the records of a partition that
// workers took before it was revoked are all handled, in whatever order
// the workers get to them, and all fall under the commit; the records
// after them never start. So the next owner starts right after the last
// record handled here: nothing skipped, nothing handled twice.
//
// Deciding whether a record starts when its handler begins rather than
// when its worker takes it failed this: record 11 began on one worker,
// the partition was revoked, record 10 on another worker was then
// refused, and the commit stopped at 10 — record 11, handled, was handled
// again by the next owner.
func TestRevocationKeepsStartedPrefix(t *testing.T) {
	var rec recorder
	s := testSubscription(t, rec.handle)
	s.testPoll(10, 11, 12, 13)
	first := s.queue.take(s.start)  // worker 1
	second := s.queue.take(s.start) // worker 2
	s.handle(second)                // worker 2 is quicker
	s.revoke(map[string][]int32{"jobs": {0}})
	s.handle(first)
	refused := s.takeRest(t)

	if want := []int64{11, 10}; !slices.Equal(rec.offsets, want) {
		t.Errorf("handled offsets %v, want %v", rec.offsets, want)
	}
	if want := []int64{12, 13}; !slices.Equal(refused, want) {
		t.Errorf("refused offsets %v, want %v", refused, want)
	}
	p := s.parts[tp{"jobs", 0}]
	if !p.hasMark || p.mark.Offset != 12 {
		t.Errorf("commit mark %+v (set %v), want offset 12: every handled record below it, none unhandled", p.mark, p.hasMark)
	}
}

// TestDrainKeepsStartedPrefix: the same when Drain starts between two
// records: the one taken before runs and is committed, those after are
// handed back.
func TestDrainKeepsStartedPrefix(t *testing.T) {
	var rec recorder
	s := testSubscription(t, rec.handle)
	s.testPoll(0, 1, 2)
	first := s.queue.take(s.start)
	close(s.stopping)
	refused := s.takeRest(t)
	s.handle(first)

	if want := []int64{0}; !slices.Equal(rec.offsets, want) {
		t.Errorf("handled offsets %v, want %v", rec.offsets, want)
	}
	if want := []int64{1, 2}; !slices.Equal(refused, want) {
		t.Errorf("refused offsets %v, want %v", refused, want)
	}
	if p := s.parts[tp{"jobs", 0}]; !p.hasMark || p.mark.Offset != 1 {
		t.Errorf("commit mark %+v (set %v), want offset 1", p.mark, p.hasMark)
	}
}

// TestFinishedPrefix: however records finish, the commit mark of their
// partition is the offset of the first one not finished, while the
// tracking reuses its array.
func TestFinishedPrefix(t *testing.T) {
	s := testSubscription(t, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		next     int64
		open     []*job
		finished = map[int64]bool{}
		prefix   int64
	)
	for range 500 {
		n := 1 + rng.IntN(20) // a poll
		jobs := s.file(n, func(f func(*kgo.Record)) {
			for range n {
				f(&kgo.Record{Topic: "jobs", Offset: next})
				next++
			}
		})
		for i := range jobs {
			open = append(open, &jobs[i])
		}
		rng.Shuffle(len(open), func(i, j int) { open[i], open[j] = open[j], open[i] })
		k := rng.IntN(len(open) + 1)
		for _, j := range open[:k] {
			s.complete(j)
			finished[j.rec.Offset] = true
		}
		open = open[k:]
		for finished[prefix] {
			prefix++
		}
		p := s.parts[tp{"jobs", 0}]
		if prefix > 0 && (!p.hasMark || p.mark.Offset != prefix) {
			t.Fatalf("after offset %d: commit mark %+v (set %v), want %d", next-1, p.mark, p.hasMark, prefix)
		}
		if got, want := len(p.pending)-p.head, int(next-prefix); got != want {
			t.Fatalf("after offset %d: %d records tracked, want %d", next-1, got, want)
		}
	}
}

// TestQueueOrderAndRoom: records are taken in poll order across polls;
// put says when a poll's worth waits, and room is signalled once fewer
// wait again.
func TestQueueOrderAndRoom(t *testing.T) {
	var q queue
	q.init(3)
	poll := func(offsets ...int64) []job {
		jobs := make([]job, len(offsets))
		for i, o := range offsets {
			jobs[i].rec = &kgo.Record{Offset: o}
		}
		return jobs
	}
	all := func(*job) bool { return true }
	if q.put(poll(1, 2)) {
		t.Fatal("put of 2 records, limit 3: full")
	}
	if !q.put(poll(3, 4)) {
		t.Fatal("put of 4 records, limit 3: not full")
	}
	var order []int64
	for i := range 4 {
		order = append(order, q.take(all).rec.Offset)
		select {
		case <-q.room:
			if i != 1 {
				t.Errorf("room signalled after %d takes, want after 2 (2 left of limit 3)", i+1)
			}
		default:
			if i == 1 {
				t.Error("no room signalled with 2 records left, limit 3")
			}
		}
	}
	if want := []int64{1, 2, 3, 4}; !slices.Equal(order, want) {
		t.Errorf("taken %v, want %v", order, want)
	}
	q.close()
	if j := q.take(all); j != nil {
		t.Errorf("take after close = offset %d, want nil", j.rec.Offset)
	}
}
