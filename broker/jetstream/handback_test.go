package jetstream_test

import (
	"context"
	"slices"
	"testing"

	"github.com/ferry-go/ferry/broker"
	jsbroker "github.com/ferry-go/ferry/broker/jetstream"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/nats-io/nats.go/jetstream"
)

// TestDrainHandsBackWhileHandling: at Concurrency 1 the fetch loop runs
// the handler itself; a drain still hands the messages fetched but not
// started back at once, while the handler runs, not once it returns.
func TestDrainHandsBackWhileHandling(t *testing.T) {
	const (
		topic = "handback.jobs"
		queue = "hb"
		n     = 5
	)
	js, _ := newJS(t)
	b := newBroker(t, js, jsbroker.WithStream(jetstream.StreamConfig{Name: "HANDBACK", Subjects: []string{"handback.>"}, Storage: jetstream.MemoryStorage}))
	ctx := ctxT(t)
	started := make(chan int, n)
	release := make(chan struct{})
	first, err := broker.Subscribe(ctx, b, topic, func(_ context.Context, e *broker.Event[ferrytest.ConfEvent]) error {
		started <- e.Data.N
		<-release
		return nil
	}, broker.Queue(queue), broker.Concurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer close(release)
	for i := range n {
		if err := broker.Publish(ctx, b, topic, &ferrytest.ConfEvent{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	var running int
	select {
	case running = <-started:
	case <-ctx.Done():
		t.Fatal("the handler never started")
	}
	// Every message is with the first subscription: one handled, the
	// rest fetched (the prefetch is at least 8).
	cons, err := js.Consumer(ctx, "HANDBACK", queue+"__handback_jobs")
	if err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, "every message with the first subscription: none pending, all fetched and unacknowledged", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == n && info.NumPending == 0
	})
	drained := make(chan error, 1)
	go func() { drained <- first.Drain(ctx) }()

	got := make(chan int, n)
	second, err := broker.Subscribe(ctx, b, topic, func(_ context.Context, e *broker.Event[ferrytest.ConfEvent]) error {
		got <- e.Data.N
		return nil
	}, broker.Queue(queue), broker.Concurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = second.Drain(context.Background()) })
	var others []int
	for len(others) < n-1 {
		select {
		case i := <-got:
			others = append(others, i)
		case err := <-drained:
			t.Fatalf("Drain() = %v while the handler still runs", err)
		case <-ctx.Done():
			t.Fatalf("while the first handler runs, the next subscription got %v, want the %d other messages", others, n-1)
		}
	}
	slices.Sort(others)
	want := slices.DeleteFunc([]int{0, 1, 2, 3, 4}, func(i int) bool { return i == running })
	if !slices.Equal(others, want) {
		t.Errorf("the next subscription got %v, want %v", others, want)
	}
	if len(started) > 0 {
		t.Errorf("the draining subscription started message %d", <-started)
	}
}
