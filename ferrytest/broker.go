package ferrytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
)

// BrokerCaps says which guarantees a broker implementation promises, so
// that BrokerConformance checks exactly those.
type BrokerCaps struct {
	// Redelivery: a handler error or panic brings the message back, with
	// the back-off delay and a growing Attempt.
	Redelivery bool
	// DeadLetter: after MaxDeliver attempts, or at once for a permanent
	// error, one copy goes to the dead-letter subject.
	DeadLetter bool
	// Dedupe: a message ID published twice within the window is
	// delivered once.
	Dedupe bool
	// Ordered: the Ordered option processes messages in publish order,
	// a failing one holding back the rest.
	Ordered bool
	// Durable: messages published before a queue subscription exists are
	// delivered to it, and what a drained subscription did not finish
	// goes to the next one.
	Durable bool
}

// brokerTimeout bounds each broker conformance case.
const brokerTimeout = 20 * time.Second

// ConfEvent is the event type of the broker conformance suite.
type ConfEvent struct {
	N    int    `json:"n"`
	Note string `json:"note,omitempty"`
}

// BrokerConformance runs the broker conformance suite: round trip with
// metadata, fan-out, competing consumers, wildcards, bounded concurrency,
// panics, clean shutdown and bad input — plus redelivery, dead letters,
// de-duplication, ordering and durability as caps promise. newBroker
// returns a fresh broker for one case; every topic the suite uses starts
// with "conf." and every dead-letter subject with "dlq.conf.", so a
// JetStream broker needs streams capturing "conf.>" and "dlq.>".
func BrokerConformance(t *testing.T, caps BrokerCaps, newBroker func(t testing.TB) broker.Broker) {
	t.Helper()
	cases := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, b broker.Broker, topic string)
		need bool
	}{
		{"RoundTrip", confRoundTrip, true},
		{"FanOut", confFanOut, true},
		{"CompetingConsumers", confCompeting, true},
		{"Wildcard", confWildcard, true},
		{"Concurrency", confConcurrency, true},
		{"PanicRecovered", func(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
			confPanic(t, ctx, b, topic, caps.Redelivery)
		}, true},
		{"DrainFinishesInFlight", confDrainFinishes, true},
		{"BadInput", confBadInput, true},
		{"Closed", confClosed, true},
		{"Redelivery", confRedelivery, caps.Redelivery},
		{"DeadLetter", confDeadLetter, caps.DeadLetter},
		{"UndecodableDeadLettered", confUndecodable, caps.DeadLetter},
		{"PermanentErrorDeadLettered", confPermanent, caps.DeadLetter},
		{"Dedupe", confDedupe, caps.Dedupe},
		{"Ordered", confOrdered, caps.Ordered},
		{"Durable", confDurable, caps.Durable},
		{"DrainHandsBackUnfinished", confDrainHandsBack, caps.Durable && caps.Redelivery},
	}
	for i, c := range cases {
		if !c.need {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
			defer cancel()
			b := newBroker(t)
			t.Cleanup(func() {
				cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = b.Close(cctx)
			})
			c.run(t, ctx, b, fmt.Sprintf("conf.c%d.%s", i, c.name))
		})
	}
}

// recorder collects deliveries from handlers.
type recorder struct {
	mu  sync.Mutex
	got []*broker.Event[ConfEvent]
	ch  chan struct{} // one tick per delivery
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 100000)} }

func (r *recorder) add(e *broker.Event[ConfEvent]) {
	r.mu.Lock()
	r.got = append(r.got, e)
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *recorder) handler(ctx context.Context, e *broker.Event[ConfEvent]) error {
	r.add(e)
	return nil
}

func (r *recorder) events() []*broker.Event[ConfEvent] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// wait waits for n more deliveries.
func (r *recorder) wait(t *testing.T, ctx context.Context, n int, what string) {
	t.Helper()
	for i := range n {
		select {
		case <-r.ch:
		case <-ctx.Done():
			t.Fatalf("%s: got %d of %d deliveries before %v", what, i, n, ctx.Err())
		}
	}
}

// quiet checks that no further delivery comes within d.
func (r *recorder) quiet(t *testing.T, d time.Duration, what string) {
	t.Helper()
	select {
	case <-r.ch:
		t.Errorf("%s: an unexpected further delivery: %+v", what, r.events()[len(r.events())-1].Delivery)
	case <-time.After(d):
	}
}

func subscribe(t *testing.T, ctx context.Context, b broker.Broker, topic string, h func(context.Context, *broker.Event[ConfEvent]) error, opts ...broker.SubscribeOption) broker.Subscription {
	t.Helper()
	sub, err := broker.Subscribe(ctx, b, topic, h, opts...)
	if err != nil {
		t.Fatalf("Subscribe(%q) = %v", topic, err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sub.Drain(dctx)
	})
	return sub
}

func publish(t *testing.T, ctx context.Context, b broker.Broker, topic string, n int, opts ...broker.PublishOption) {
	t.Helper()
	if err := broker.Publish(ctx, b, topic, &ConfEvent{N: n}, opts...); err != nil {
		t.Fatalf("Publish(%q, %d) = %v", topic, n, err)
	}
}

// settle is how long the suite waits to see that nothing more arrives.
const settle = 300 * time.Millisecond

func confRoundTrip(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	r := newRecorder()
	var seen atomic.Pointer[transport.Call]
	subscribe(t, ctx, b, topic, func(ctx context.Context, e *broker.Event[ConfEvent]) error {
		if c, ok := transport.CallFromContext(ctx); ok {
			seen.CompareAndSwap(nil, c) // the first message's
		}
		if d, ok := broker.DeliveryFromContext(ctx); !ok || d != e.Delivery {
			t.Errorf("DeliveryFromContext() = %v, %v, want the event's delivery", d, ok)
		}
		return r.handler(ctx, e)
	})
	mctx := transport.WithMetadata(ctx, transport.Pairs("x-from-ctx", "ctx-value"))
	publish(t, mctx, b, topic, 7, broker.WithID("rt-1"), broker.WithHeader("X-Trace", "abc"))
	r.wait(t, ctx, 1, "round trip")
	e := r.events()[0]
	switch {
	case e.Data == nil || e.Data.N != 7:
		t.Errorf("event data = %+v, want N=7", e.Data)
	case e.Topic != topic:
		t.Errorf("event topic = %q, want %q", e.Topic, topic)
	case e.Header.Get("x-trace") != "abc" || e.Header.Get("X-From-Ctx") != "ctx-value":
		t.Errorf("event header = %v, want x-trace=abc and x-from-ctx=ctx-value", e.Header)
	case e.Header.Get(broker.ContentTypeKey) != "":
		t.Errorf("event content type = %q, want none for JSON, the default", e.Header.Get(broker.ContentTypeKey))
	case e.ID != "rt-1":
		t.Errorf("event ID = %q, want rt-1", e.ID)
	case e.Attempt != 1:
		t.Errorf("event attempt = %d, want 1", e.Attempt)
	}
	// Protobuf is labelled and decodes the same.
	publish(t, ctx, b, topic, 8, broker.WithProto())
	r.wait(t, ctx, 1, "protobuf round trip")
	if e := r.events()[1]; e.Data == nil || e.Data.N != 8 || e.Header.Get(broker.ContentTypeKey) != "application/protobuf" {
		t.Errorf("protobuf event = %+v, content type %q, want N=8 labelled application/protobuf", e.Data, e.Header.Get(broker.ContentTypeKey))
	}
	c := seen.Load()
	if c == nil || c.Endpoint != topic || c.Client || c.Request == nil || c.Request.Get("x-trace") != "abc" {
		t.Errorf("transport.Call in the handler = %+v, want endpoint %q and the message headers", c, topic)
	}
	r.quiet(t, settle, "round trip")
}

func confFanOut(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	r1, r2 := newRecorder(), newRecorder()
	subscribe(t, ctx, b, topic, r1.handler, broker.DeliverNew())
	subscribe(t, ctx, b, topic, r2.handler, broker.DeliverNew())
	const n = 20
	for i := range n {
		publish(t, ctx, b, topic, i)
	}
	r1.wait(t, ctx, n, "fan-out subscriber 1")
	r2.wait(t, ctx, n, "fan-out subscriber 2")
	for i, r := range []*recorder{r1, r2} {
		if got := uniqueN(r.events()); len(got) != n {
			t.Errorf("fan-out subscriber %d got %d distinct events, want %d", i+1, len(got), n)
		}
	}
}

func uniqueN(evs []*broker.Event[ConfEvent]) map[int]int {
	m := map[int]int{}
	for _, e := range evs {
		m[e.Data.N]++
	}
	return m
}

func confCompeting(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	r := newRecorder()
	var a, c atomic.Int64
	slow := func(n *atomic.Int64) func(context.Context, *broker.Event[ConfEvent]) error {
		return func(ctx context.Context, e *broker.Event[ConfEvent]) error {
			n.Add(1)
			time.Sleep(2 * time.Millisecond)
			return r.handler(ctx, e)
		}
	}
	subscribe(t, ctx, b, topic, slow(&a), broker.Queue("workers"), broker.Concurrency(2))
	subscribe(t, ctx, b, topic, slow(&c), broker.Queue("workers"), broker.Concurrency(2))
	const n = 100
	for i := range n {
		publish(t, ctx, b, topic, i)
	}
	r.wait(t, ctx, n, "competing consumers")
	r.quiet(t, settle, "competing consumers")
	got := uniqueN(r.events())
	if len(got) != n {
		t.Errorf("competing consumers processed %d distinct events, want %d", len(got), n)
	}
	for k, v := range got {
		if v != 1 {
			t.Errorf("event %d processed %d times, want once", k, v)
		}
	}
	if a.Load() == 0 || c.Load() == 0 {
		t.Errorf("queue members processed %d and %d events, want both some", a.Load(), c.Load())
	}
}

func confWildcard(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	r := newRecorder()
	subscribe(t, ctx, b, topic+".*", r.handler, broker.DeliverNew())
	publish(t, ctx, b, topic+".a", 1)
	publish(t, ctx, b, topic+".b", 2)
	publish(t, ctx, b, topic+".a.deeper", 3) // "*" is one token only
	r.wait(t, ctx, 2, "wildcard")
	r.quiet(t, settle, "wildcard")
	topics := map[string]bool{}
	for _, e := range r.events() {
		topics[e.Topic] = true
	}
	if !topics[topic+".a"] || !topics[topic+".b"] {
		t.Errorf("wildcard deliveries on %v, want %s.a and %s.b", topics, topic, topic)
	}
}

func confConcurrency(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	var cur, peak atomic.Int64
	release := make(chan struct{})
	r := newRecorder()
	subscribe(t, ctx, b, topic, func(ctx context.Context, e *broker.Event[ConfEvent]) error {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		cur.Add(-1)
		return r.handler(ctx, e)
	}, broker.Queue("bounded"), broker.Concurrency(3))
	for i := range 10 {
		publish(t, ctx, b, topic, i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for peak.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // give a fourth the chance to start
	if p := peak.Load(); p != 3 {
		t.Errorf("handlers in flight peaked at %d, want exactly 3 (Concurrency(3))", p)
	}
	close(release)
	r.wait(t, ctx, 10, "bounded concurrency")
	if p := peak.Load(); p > 3 {
		t.Errorf("handlers in flight peaked at %d, want at most 3", p)
	}
}

func confPanic(t *testing.T, ctx context.Context, b broker.Broker, topic string, redelivery bool) {
	r := newRecorder()
	var calls atomic.Int64
	subscribe(t, ctx, b, topic, func(ctx context.Context, e *broker.Event[ConfEvent]) error {
		if calls.Add(1) == 1 {
			panic("handler bug")
		}
		return r.handler(ctx, e)
	}, broker.Queue("panicky"), broker.Backoff(10*time.Millisecond))
	publish(t, ctx, b, topic, 1)
	if redelivery {
		r.wait(t, ctx, 1, "redelivery after a panic")
		if e := r.events()[0]; e.Data.N != 1 || e.Attempt != 2 {
			t.Errorf("after a panic got %+v attempt %d, want event 1 on attempt 2", e.Data, e.Attempt)
		}
		return
	}
	// At most once: the panicking delivery is gone, the subscription lives.
	for calls.Load() < 1 {
		select {
		case <-ctx.Done():
			t.Fatal("the first message never reached the handler")
		case <-time.After(5 * time.Millisecond):
		}
	}
	publish(t, ctx, b, topic, 2)
	r.wait(t, ctx, 1, "delivery after a panic")
	if e := r.events()[0]; e.Data.N != 2 {
		t.Errorf("after a panic got %+v, want event 2", e.Data)
	}
}

func confDrainFinishes(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	var finished atomic.Bool
	sub := subscribe(t, ctx, b, topic, func(ctx context.Context, e *broker.Event[ConfEvent]) error {
		started <- struct{}{}
		<-release
		finished.Store(true)
		return nil
	}, broker.Queue("drainer"))
	publish(t, ctx, b, topic, 1)
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("handler never started")
	}
	done := make(chan error, 1)
	go func() { done <- sub.Drain(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Drain() = %v before the handler in flight finished", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Drain() = %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("Drain() did not return after the handler finished")
	}
	if !finished.Load() {
		t.Error("Drain returned before the handler finished")
	}
	if err := sub.Drain(ctx); err != nil {
		t.Errorf("second Drain() = %v, want nil", err)
	}
}

func confBadInput(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	h := func(context.Context, *broker.Event[ConfEvent]) error { return nil }
	for _, bad := range []string{"", "a..b", "a b", "a.*", "a.>"} {
		if err := broker.Publish(ctx, b, bad, &ConfEvent{}); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Publish(%q) = %v, want invalid_argument", bad, err)
		}
		if err := b.Publish(ctx, &broker.Message{Topic: bad}); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Broker.Publish(%q) = %v, want invalid_argument", bad, err)
		}
	}
	for _, bad := range []string{"", "a..b", "a.>.b", "a.b*"} {
		if _, err := broker.Subscribe(ctx, b, bad, h); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Subscribe(%q) = %v, want invalid_argument", bad, err)
		}
	}
	for _, tt := range []struct {
		opt  broker.SubscribeOption
		want string
	}{
		{broker.Concurrency(0), "concurrency 0"},
		{broker.MaxDeliver(0), "max deliver 0"},
		{broker.Queue("a.b"), `queue "a.b"`},
		{broker.Backoff(-time.Second), "backoff"},
		{broker.AckWait(time.Millisecond), "ack wait"},
	} {
		_, err := broker.Subscribe(ctx, b, topic, h, tt.opt)
		if errs.CodeOf(err) != errs.InvalidArgument || !contains(err, tt.want) {
			t.Errorf("Subscribe with a bad option = %v, want invalid_argument naming %q", err, tt.want)
		}
	}
	if _, err := broker.Subscribe[ConfEvent](ctx, b, topic, nil); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Subscribe(nil handler) = %v, want invalid_argument", err)
	}
	// The implementation's own checks, below the typed layer.
	raw := func(context.Context, *broker.Delivery) error { return nil }
	good := mustConfig(t, topic)
	for _, bad := range []string{"", "a..b", "a.>.b"} {
		if _, err := b.Subscribe(ctx, bad, raw, good); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Broker.Subscribe(%q) = %v, want invalid_argument", bad, err)
		}
	}
	if _, err := b.Subscribe(ctx, topic, nil, good); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Broker.Subscribe(nil handler) = %v, want invalid_argument", err)
	}
	if _, err := b.Subscribe(ctx, topic, raw, broker.SubscribeConfig{}); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Broker.Subscribe(zero config) = %v, want invalid_argument", err)
	}
	if err := b.Publish(ctx, nil); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Broker.Publish(nil) = %v, want invalid_argument", err)
	}
}

func contains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }

func confClosed(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := broker.Publish(ctx, b, topic, &ConfEvent{}); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Publish after Close = %v, want broker.ErrClosed", err)
	}
	if _, err := broker.Subscribe(ctx, b, topic, func(context.Context, *broker.Event[ConfEvent]) error { return nil }); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want broker.ErrClosed", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
}

func confRedelivery(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	r := newRecorder()
	var (
		mu    sync.Mutex
		times []time.Time
	)
	const backoff = 150 * time.Millisecond
	subscribe(t, ctx, b, topic, func(ctx context.Context, e *broker.Event[ConfEvent]) error {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if e.Attempt < 3 {
			return errs.New(errs.Unavailable, "not yet")
		}
		return r.handler(ctx, e)
	}, broker.Queue("retrier"), broker.Backoff(backoff), broker.MaxDeliver(5))
	publish(t, ctx, b, topic, 1)
	r.wait(t, ctx, 1, "redelivery")
	r.quiet(t, settle, "redelivery")
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 3 {
		t.Fatalf("handler ran %d times, want 3 (two failures, then success)", len(times))
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < backoff-10*time.Millisecond {
			t.Errorf("redelivery %d came %v after the failure, want at least the %v back-off", i, gap, backoff)
		}
	}
}

// deadLetters subscribes to the dead-letter subject of topic.
func deadLetters(t *testing.T, ctx context.Context, b broker.Broker, topic string) *recorder {
	t.Helper()
	r := newRecorder()
	subscribe(t, ctx, b, broker.DeadLetterPrefix+topic, r.handler, broker.Queue("dlq-reader"))
	return r
}

func confDeadLetter(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	dlq := deadLetters(t, ctx, b, topic)
	good := newRecorder()
	var attempts atomic.Int64
	subscribe(t, ctx, b, topic, func(ctx context.Context, e *broker.Event[ConfEvent]) error {
		if e.Data.Note == "poison" {
			attempts.Add(1)
			return errors.New("cannot bill this order")
		}
		return good.handler(ctx, e)
	}, broker.Queue("biller"), broker.MaxDeliver(3), broker.Backoff(20*time.Millisecond))
	if err := broker.Publish(ctx, b, topic, &ConfEvent{N: 0, Note: "poison"}, broker.WithHeader("x-order", "o-0"), broker.WithID("poison-0")); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		publish(t, ctx, b, topic, i)
	}
	good.wait(t, ctx, 10, "messages beside the poison one")
	dlq.wait(t, ctx, 1, "dead letter")
	dlq.quiet(t, 2*settle, "dead letter")
	if got := attempts.Load(); got != 3 {
		t.Errorf("poison message handled %d times, want exactly MaxDeliver = 3", got)
	}
	d := dlq.events()[0]
	for k, want := range map[string]string{
		"x-order":                        "o-0",
		broker.DeadLetterTopicKey:        topic,
		broker.DeadLetterDeliveriesKey:   "3",
		broker.DeadLetterSubscriptionKey: "biller",
		broker.DeadLetterIDKey:           "poison-0",
	} {
		if got := d.Header.Get(k); got != want {
			t.Errorf("dead letter header %s = %q, want %q", k, got, want)
		}
	}
	if got := d.Header.Get(broker.DeadLetterErrorKey); !strings.Contains(got, "cannot bill this order") {
		t.Errorf("dead letter error header = %q, want the handler's error", got)
	}
	if d.Data.Note != "poison" {
		t.Errorf("dead letter payload = %+v, want the original", d.Data)
	}
}

func confUndecodable(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	// The letter carries the same broken payload, so read it raw.
	dlqTopic := broker.DeadLetterPrefix + topic
	got := make(chan *broker.Delivery, 4)
	rsub, err := b.Subscribe(ctx, dlqTopic, func(_ context.Context, d *broker.Delivery) error {
		got <- d
		return nil
	}, mustConfig(t, dlqTopic, broker.Queue("dlq-raw")))
	if err != nil {
		t.Fatalf("Subscribe(%q) = %v", dlqTopic, err)
	}
	t.Cleanup(func() { _ = rsub.Drain(context.Background()) })
	var calls atomic.Int64
	subscribe(t, ctx, b, topic, func(ctx context.Context, e *broker.Event[ConfEvent]) error {
		calls.Add(1)
		return nil
	}, broker.Queue("decoder"), broker.MaxDeliver(5), broker.Backoff(10*time.Millisecond))
	raw := &broker.Message{Topic: topic, ID: "bad-json", Header: transport.Pairs(broker.ContentTypeKey, "application/json"), Data: []byte(`{"n":`)}
	if err := b.Publish(ctx, raw); err != nil {
		t.Fatalf("Broker.Publish(undecodable) = %v", err)
	}
	select {
	case d := <-got:
		if e := d.Header.Get(broker.DeadLetterErrorKey); !strings.Contains(e, "decode") {
			t.Errorf("dead letter error header = %q, want the decode error", e)
		}
		if n := d.Header.Get(broker.DeadLetterDeliveriesKey); n != "1" {
			t.Errorf("dead letter deliveries = %q, want 1 (no redelivery of what cannot decode)", n)
		}
		if string(d.Data) != `{"n":` {
			t.Errorf("dead letter payload = %q, want the original bytes", d.Data)
		}
	case <-ctx.Done():
		t.Fatal("no dead letter for an undecodable payload")
	}
	select {
	case d := <-got:
		t.Errorf("a second dead letter: %+v", d)
	case <-time.After(settle):
	}
	if calls.Load() != 0 {
		t.Errorf("handler ran %d times for an undecodable payload, want 0", calls.Load())
	}
}

func mustConfig(t *testing.T, topic string, opts ...broker.SubscribeOption) broker.SubscribeConfig {
	t.Helper()
	c, err := broker.NewSubscribeConfig(topic, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func confPermanent(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	dlq := deadLetters(t, ctx, b, topic)
	var calls atomic.Int64
	subscribe(t, ctx, b, topic, func(ctx context.Context, e *broker.Event[ConfEvent]) error {
		calls.Add(1)
		return broker.Permanent(errors.New("order refers to a deleted customer"))
	}, broker.Queue("strict"), broker.MaxDeliver(5), broker.Backoff(10*time.Millisecond))
	publish(t, ctx, b, topic, 1)
	dlq.wait(t, ctx, 1, "dead letter of a permanent error")
	dlq.quiet(t, settle, "dead letter of a permanent error")
	if got := calls.Load(); got != 1 {
		t.Errorf("handler ran %d times for a permanent error, want 1", got)
	}
	if got := dlq.events()[0].Header.Get(broker.DeadLetterDeliveriesKey); got != "1" {
		t.Errorf("dead letter deliveries = %q, want 1", got)
	}
}

func confDedupe(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	r := newRecorder()
	subscribe(t, ctx, b, topic, r.handler, broker.Queue("dedupe"))
	publish(t, ctx, b, topic, 1, broker.WithID("same-id"))
	publish(t, ctx, b, topic, 1, broker.WithID("same-id"))
	publish(t, ctx, b, topic, 2, broker.WithID("other-id"))
	r.wait(t, ctx, 2, "dedupe")
	r.quiet(t, settle, "dedupe")
	if got := uniqueN(r.events()); got[1] != 1 || got[2] != 1 {
		t.Errorf("deliveries by event = %v, want 1 and 2 once each", got)
	}
}

func confOrdered(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	var (
		mu    sync.Mutex
		order []int
	)
	r := newRecorder()
	var failedOnce atomic.Bool
	subscribe(t, ctx, b, topic, func(ctx context.Context, e *broker.Event[ConfEvent]) error {
		if e.Data.N == 5 && !failedOnce.Swap(true) {
			return errors.New("fail 5 once")
		}
		mu.Lock()
		order = append(order, e.Data.N)
		mu.Unlock()
		return r.handler(ctx, e)
	}, broker.Queue("ordered"), broker.Ordered(), broker.Backoff(20*time.Millisecond))
	const n = 30
	for i := range n {
		publish(t, ctx, b, topic, i)
	}
	r.wait(t, ctx, n, "ordered")
	mu.Lock()
	defer mu.Unlock()
	for i, v := range order {
		if v != i {
			t.Fatalf("processing order = %v, want 0..%d in order", order, n-1)
		}
	}
}

func confDurable(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	// Published before anyone subscribes.
	for i := range 5 {
		publish(t, ctx, b, topic, i)
	}
	r := newRecorder()
	subscribe(t, ctx, b, topic, r.handler, broker.Queue("late"))
	r.wait(t, ctx, 5, "messages published before the subscription")
}

func confDrainHandsBack(t *testing.T, ctx context.Context, b broker.Broker, topic string) {
	started := make(chan struct{}, 16)
	sub, err := broker.Subscribe(ctx, b, topic, func(ctx context.Context, e *broker.Event[ConfEvent]) error {
		started <- struct{}{}
		<-ctx.Done() // a handler that only stops when told
		return ctx.Err()
	}, broker.Queue("handback"), broker.Concurrency(2), broker.Backoff(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		publish(t, ctx, b, topic, i)
	}
	for range 2 {
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatal("handlers never started")
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	began := time.Now()
	err = sub.Drain(dctx)
	cancel()
	if el := time.Since(began); el > 3*time.Second {
		t.Errorf("Drain took %v with a 200ms context, want it to cancel the handlers and return", el)
	}
	_ = err // a drain cut short may report it
	// The unfinished messages go to the next member of the group.
	r := newRecorder()
	subscribe(t, ctx, b, topic, r.handler, broker.Queue("handback"), broker.Backoff(10*time.Millisecond))
	r.wait(t, ctx, 4, "messages a drained subscription did not finish")
	if got := uniqueN(r.events()); len(got) != 4 {
		t.Errorf("the next subscription got events %v, want all 4", got)
	}
}
