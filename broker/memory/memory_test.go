package memory_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/broker/memory"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newBroker(t testing.TB, opts ...memory.Option) *memory.Broker {
	t.Helper()
	b, err := memory.New(opts...)
	if err != nil {
		t.Fatalf("memory.New() = %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

func TestConformance(t *testing.T) {
	ferrytest.BrokerConformance(t, ferrytest.BrokerCaps{Redelivery: true, DeadLetter: true, Dedupe: true, Ordered: true},
		func(t testing.TB) broker.Broker { return newBroker(t) })
}

func config(t *testing.T, topic string, opts ...broker.SubscribeOption) broker.SubscribeConfig {
	t.Helper()
	cfg, err := broker.NewSubscribeConfig(topic, opts...)
	if err != nil {
		t.Fatalf("NewSubscribeConfig(%q) = %v", topic, err)
	}
	return cfg
}

func subscribe(t *testing.T, b broker.Broker, topic string, h broker.Handler, opts ...broker.SubscribeOption) broker.Subscription {
	t.Helper()
	sub, err := b.Subscribe(context.Background(), topic, h, config(t, topic, opts...))
	if err != nil {
		t.Fatalf("Subscribe(%q) = %v", topic, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sub.Drain(ctx)
	})
	return sub
}

func publish(t *testing.T, b broker.Broker, m *broker.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Publish(ctx, m); err != nil {
		t.Fatalf("Publish(%q) = %v", m.Topic, err)
	}
}

// deliveries is a handler that sends every delivery on a channel.
func deliveries(n int) (chan *broker.Delivery, broker.Handler) {
	ch := make(chan *broker.Delivery, n)
	return ch, func(_ context.Context, d *broker.Delivery) error {
		ch <- d
		return nil
	}
}

func next(t *testing.T, ch <-chan *broker.Delivery, what string) *broker.Delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no delivery within 5s", what)
		return nil
	}
}

func none(t *testing.T, ch <-chan *broker.Delivery, d time.Duration, what string) {
	t.Helper()
	select {
	case got := <-ch:
		t.Errorf("%s: unexpected delivery %v", what, got)
	case <-time.After(d):
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	_, err := memory.New(memory.WithBuffer(0), memory.WithDedupeWindow(-time.Second))
	if errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("New(bad options) = %v, want invalid_argument", err)
	}
	for _, want := range []string{"WithBuffer(0)", "WithDedupeWindow(-1s)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New(bad options) = %v, want it to name %s", err, want)
		}
	}
	b, err := memory.New(nil, memory.WithBuffer(1), memory.WithDedupeWindow(0))
	if err != nil || b == nil {
		t.Fatalf("New(valid options) = %v, %v", b, err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Errorf("Close() = %v", err)
	}
}

func TestDeliveryFields(t *testing.T) {
	b := newBroker(t)
	ch, h := deliveries(4)
	subscribe(t, b, "fields.*", h, broker.Queue("readers"))
	fan, fh := deliveries(4)
	subscribe(t, b, "fields.>", fh)
	data := []byte("payload")
	m := &broker.Message{Topic: "fields.a", Header: map[string][]string{"x-k": {"v"}}, Data: data}
	before := time.Now()
	publish(t, b, m)
	publish(t, b, &broker.Message{Topic: "fields.b", ID: "second"})
	data[0] = 'X' // Publish copied the payload
	m.Header["x-k"][0] = "changed"

	d1, d2 := next(t, ch, "first"), next(t, ch, "second")
	if d1.ID == "" || m.ID != "" {
		t.Errorf("generated ID = %q and the caller's message ID = %q, want a generated ID and the message untouched", d1.ID, m.ID)
	}
	if string(d1.Data) != "payload" || d1.Header.Get("x-k") != "v" {
		t.Errorf("delivery = %q %v, want the message as published", d1.Data, d1.Header)
	}
	if d1.Attempt != 1 || d1.Subscription != "readers" || d1.Kind != "" || d1.Published.Before(before) {
		t.Errorf("delivery = attempt %d, subscription %q, kind %v, published %v; want 1, readers, 0, after %v",
			d1.Attempt, d1.Subscription, d1.Kind, d1.Published, before)
	}
	if d1.Sequence == 0 || d2.Sequence != d1.Sequence+1 || d2.ID != "second" {
		t.Errorf("sequences %d, %d and ID %q, want consecutive from 1 and ID second", d1.Sequence, d2.Sequence, d2.ID)
	}
	if f := next(t, fan, "fan-out"); f.Subscription != "fields.>" || f == d1 {
		t.Errorf("fan-out delivery subscription = %q, want fields.> and a delivery of its own", f.Subscription)
	}
}

func TestNoSubscriberDrops(t *testing.T) {
	b := newBroker(t)
	publish(t, b, &broker.Message{Topic: "nobody.home", ID: "m1"})
	ch, h := deliveries(1)
	subscribe(t, b, "nobody.home", h)
	none(t, ch, 50*time.Millisecond, "a subscription made after the publish")
}

func TestBufferFullResourceExhausted(t *testing.T) {
	b := newBroker(t, memory.WithBuffer(2))
	release := make(chan struct{})
	subscribe(t, b, "full.q", func(ctx context.Context, d *broker.Delivery) error {
		<-release
		return nil
	}, broker.Queue("slow"), broker.Concurrency(1))
	// One in the handler, two queued (the third Publish waits until the
	// worker has taken the first).
	for range 3 {
		publish(t, b, &broker.Message{Topic: "full.q"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := b.Publish(ctx, &broker.Message{Topic: "full.q"})
	if errs.CodeOf(err) != errs.ResourceExhausted || !strings.Contains(err.Error(), `"slow"`) {
		t.Fatalf("Publish to a full group = %v, want resource_exhausted naming the subscription", err)
	}
	if el := time.Since(began); el < 90*time.Millisecond {
		t.Errorf("Publish to a full group returned after %v, want it to wait its 100ms context", el)
	}

	// Room frees up: a waiting Publish goes through.
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- b.Publish(ctx, &broker.Message{Topic: "full.q"})
	}()
	select {
	case err := <-done:
		t.Fatalf("Publish to a full group = %v before there was room", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("Publish once there is room = %v", err)
	}
}

func TestDedupeWindowExpires(t *testing.T) {
	b := newBroker(t, memory.WithDedupeWindow(50*time.Millisecond))
	ch, h := deliveries(4)
	subscribe(t, b, "dedupe.w", h)
	publish(t, b, &broker.Message{Topic: "dedupe.w", ID: "x"})
	publish(t, b, &broker.Message{Topic: "dedupe.w", ID: "x"})
	next(t, ch, "first")
	none(t, ch, 80*time.Millisecond, "a duplicate within the window")
	publish(t, b, &broker.Message{Topic: "dedupe.w", ID: "x"})
	next(t, ch, "the same ID after the window")

	off := newBroker(t, memory.WithDedupeWindow(0))
	ch, h = deliveries(4)
	subscribe(t, off, "dedupe.off", h)
	publish(t, off, &broker.Message{Topic: "dedupe.off", ID: "x"})
	publish(t, off, &broker.Message{Topic: "dedupe.off", ID: "x"})
	next(t, ch, "first")
	next(t, ch, "second with de-duplication off")
}

func TestRedeliveryDoesNotBlockWorkers(t *testing.T) {
	b := newBroker(t)
	ch, ok := deliveries(4)
	var failed atomic.Bool
	subscribe(t, b, "retry.free", func(ctx context.Context, d *broker.Delivery) error {
		if string(d.Data) == "bad" && !failed.Swap(true) {
			return errors.New("try later")
		}
		return ok(ctx, d)
	}, broker.Concurrency(1), broker.Backoff(300*time.Millisecond))
	publish(t, b, &broker.Message{Topic: "retry.free", Data: []byte("bad")})
	publish(t, b, &broker.Message{Topic: "retry.free", Data: []byte("good")})
	if d := next(t, ch, "good"); string(d.Data) != "good" {
		t.Errorf("first success = %q, want good first (the failed one waits its back-off)", d.Data)
	}
	if d := next(t, ch, "bad, redelivered"); string(d.Data) != "bad" || d.Attempt != 2 {
		t.Errorf("redelivery = %q attempt %d, want bad on attempt 2", d.Data, d.Attempt)
	}
}

func TestRawPanicRedelivered(t *testing.T) {
	b := newBroker(t)
	var logs ferrytest.Buffer
	ch, ok := deliveries(1)
	subscribe(t, b, "raw.panic", func(ctx context.Context, d *broker.Delivery) error {
		if d.Attempt == 1 {
			panic("boom")
		}
		return ok(ctx, d)
	}, broker.Backoff(time.Millisecond), broker.WithLogger(logs.Logger()))
	publish(t, b, &broker.Message{Topic: "raw.panic"})
	if d := next(t, ch, "after a panic"); d.Attempt != 2 {
		t.Errorf("after a panic: attempt %d, want 2", d.Attempt)
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("log = %q, want the panic", logs.String())
	}
}

func TestDeadLetterDisabledLogs(t *testing.T) {
	b := newBroker(t)
	var logs ferrytest.Buffer
	var calls atomic.Int64
	dlq, h := deliveries(1)
	subscribe(t, b, "dlq.>", h)
	subscribe(t, b, "nodlq.x", func(context.Context, *broker.Delivery) error {
		calls.Add(1)
		return errors.New("always")
	}, broker.MaxDeliver(2), broker.Backoff(time.Millisecond), broker.DeadLetter(""), broker.WithLogger(logs.Logger()))
	publish(t, b, &broker.Message{Topic: "nodlq.x", ID: "lost-1"})
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "lost-1") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "attempts=2") || !strings.Contains(l, "always") {
		t.Errorf("log = %q, want a warning with the attempts and the error", l)
	}
	none(t, dlq, 50*time.Millisecond, "dead letters with DeadLetter(\"\")")
	if calls.Load() != 2 {
		t.Errorf("handler ran %d times, want MaxDeliver = 2", calls.Load())
	}
}

func TestDrainHandsBackToOtherMember(t *testing.T) {
	b := newBroker(t)
	started := make(chan struct{}, 1)
	a, err := b.Subscribe(context.Background(), "hand.back", func(ctx context.Context, d *broker.Delivery) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}, config(t, "hand.back", broker.Queue("pair")))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, &broker.Message{Topic: "hand.back", ID: "m"})
	<-started
	ch, h := deliveries(1)
	subscribe(t, b, "hand.back", h, broker.Queue("pair"))

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.Drain(ctx); errs.CodeOf(err) != errs.DeadlineExceeded {
		t.Errorf("Drain cut short = %v, want deadline_exceeded", err)
	}
	if d := next(t, ch, "handed back"); d.ID != "m" || d.Attempt != 2 {
		t.Errorf("handed back %q attempt %d, want m on attempt 2", d.ID, d.Attempt)
	}
	if err := a.Drain(context.Background()); err != nil {
		t.Errorf("second Drain() = %v, want nil", err)
	}
}

func TestDrainLastMemberDrops(t *testing.T) {
	b := newBroker(t)
	var logs ferrytest.Buffer
	started := make(chan struct{}, 1)
	sub, err := b.Subscribe(context.Background(), "last.one", func(ctx context.Context, d *broker.Delivery) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}, config(t, "last.one", broker.Queue("solo"), broker.Concurrency(1), broker.WithLogger(logs.Logger())))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, &broker.Message{Topic: "last.one", ID: "running"})
	publish(t, b, &broker.Message{Topic: "last.one", ID: "queued"})
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = sub.Drain(ctx)
	l := logs.String()
	if !strings.Contains(l, "dropped=1") || !strings.Contains(l, "id=running") {
		t.Errorf("log = %q, want the queued and the running message reported dropped", l)
	}
	// A new member starts a new group: nothing is left for it.
	ch, h := deliveries(2)
	subscribe(t, b, "last.one", h, broker.Queue("solo"))
	none(t, ch, 50*time.Millisecond, "a new group after the last member drained")
}

func TestOrderedGroupAcrossMembers(t *testing.T) {
	b := newBroker(t)
	var (
		mu      sync.Mutex
		order   []int
		running atomic.Int64
	)
	done := make(chan struct{}, 20)
	h := func(ctx context.Context, d *broker.Delivery) error {
		if running.Add(1) > 1 {
			t.Error("two members of an ordered group ran at once")
		}
		defer running.Add(-1)
		n := int(d.Data[0])
		if n == 3 && d.Attempt < 3 {
			return errors.New("not yet")
		}
		mu.Lock()
		order = append(order, n)
		mu.Unlock()
		done <- struct{}{}
		return nil
	}
	subscribe(t, b, "ord.x", h, broker.Queue("seq"), broker.Ordered(), broker.Backoff(5*time.Millisecond))
	subscribe(t, b, "ord.x", h, broker.Queue("seq"), broker.Ordered(), broker.Backoff(5*time.Millisecond))
	if _, err := b.Subscribe(context.Background(), "ord.x", h, config(t, "ord.x", broker.Queue("seq"))); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Errorf("Subscribe(unordered member of an ordered group) = %v, want failed_precondition", err)
	}
	for i := range 10 {
		publish(t, b, &broker.Message{Topic: "ord.x", Data: []byte{byte(i)}})
	}
	for range 10 {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("ordered group stalled")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, n := range order {
		if n != i {
			t.Fatalf("order = %v, want 0..9", order)
		}
	}
}

func TestClosed(t *testing.T) {
	b := newBroker(t)
	release := make(chan struct{})
	finished := make(chan struct{})
	started := make(chan struct{})
	subscribe(t, b, "closing.x", func(ctx context.Context, d *broker.Delivery) error {
		close(started)
		<-release
		close(finished)
		return nil
	})
	publish(t, b, &broker.Message{Topic: "closing.x"})
	<-started
	go func() {
		time.Sleep(30 * time.Millisecond)
		close(release)
	}()
	if err := b.Close(context.Background()); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	select {
	case <-finished:
	default:
		t.Error("Close returned before the running handler finished")
	}
	err := b.Publish(context.Background(), &broker.Message{Topic: "closing.x"})
	if !errors.Is(err, broker.ErrClosed) || !strings.Contains(err.Error(), "closing.x") {
		t.Errorf("Publish after Close = %v, want broker.ErrClosed naming the topic", err)
	}
	_, err = b.Subscribe(context.Background(), "closing.x", func(context.Context, *broker.Delivery) error { return nil }, config(t, "closing.x"))
	if !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want broker.ErrClosed", err)
	}
}

func TestPublishHonoursContext(t *testing.T) {
	b := newBroker(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Publish(ctx, &broker.Message{Topic: "ctx.done"}); errs.CodeOf(err) != errs.Canceled {
		t.Errorf("Publish(cancelled ctx) = %v, want canceled", err)
	}
	if err := b.Publish(context.Background(), nil); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Publish(nil) = %v, want invalid_argument", err)
	}
	if _, err := b.Subscribe(context.Background(), "ctx.x", nil, config(t, "ctx.x")); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Subscribe(nil handler) = %v, want invalid_argument", err)
	}
	if _, err := b.Subscribe(context.Background(), "ctx.x", func(context.Context, *broker.Delivery) error { return nil }, broker.SubscribeConfig{}); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Subscribe(zero config) = %v, want invalid_argument", err)
	}
}
