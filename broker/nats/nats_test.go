package nats_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	natsbroker "github.com/ferry-go/ferry/broker/nats"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/transport"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newBroker(t testing.TB, nc *nats.Conn, opts ...natsbroker.Option) *natsbroker.Broker {
	t.Helper()
	b, err := natsbroker.New(nc, opts...)
	if err != nil {
		t.Fatalf("natsbroker.New() = %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

func TestConformance(t *testing.T) {
	s := ferrytest.NATS(t)
	ferrytest.BrokerConformance(t, ferrytest.BrokerCaps{}, func(t testing.TB) broker.Broker {
		return newBroker(t, ferrytest.Connect(t, s.ClientURL()))
	})
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
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

func TestNewRejectsBadInput(t *testing.T) {
	_, err := natsbroker.New(nil, natsbroker.WithPendingLimits(0, 10))
	if errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), "nil connection") ||
		!strings.Contains(err.Error(), "WithPendingLimits(0, 10)") {
		t.Errorf("New(nil, bad limits) = %v, want invalid_argument naming the connection and the option", err)
	}
}

func TestPublishAfterServerShutdown(t *testing.T) {
	s := ferrytest.NATS(t)
	nc := ferrytest.Connect(t, s.ClientURL())
	b := newBroker(t, nc)
	ctx := context.Background()
	if err := b.Publish(ctx, &broker.Message{Topic: "down.before"}); err != nil {
		t.Fatalf("Publish with the server up = %v", err)
	}
	s.Shutdown()

	// nats.go notices the lost connection asynchronously; until it does a
	// publish goes into the void (at most once, as documented). Within the
	// deadline Publish must say Unavailable, and never hang.
	const budget = 2 * time.Second
	pctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	began := time.Now()
	var (
		err    error
		silent int
	)
	for {
		err = b.Publish(pctx, &broker.Message{Topic: "down.after"})
		if err != nil || pctx.Err() != nil {
			break
		}
		silent++
		time.Sleep(time.Millisecond)
	}
	el := time.Since(began)
	t.Logf("Publish failed after %v, %d publishes before nats.go noticed", el, silent)
	if errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("Publish with the server down = %v after %v, want unavailable", err, el)
	}
	if !strings.Contains(err.Error(), "down.after") || !strings.Contains(err.Error(), "RECONNECTING") {
		t.Errorf("Publish with the server down = %v, want the topic and the connection status", err)
	}

	// Once nats.go knows, the error is immediate: Unavailable, not the
	// context's deadline.
	kctx, kcancel := context.WithTimeout(ctx, ferrytest.WaitBound)
	defer kcancel()
	err = b.Publish(kctx, &broker.Message{Topic: "down.known"})
	if errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("Publish on a reconnecting connection = %v, want unavailable at once", err)
	}
}

func TestPublishWithFlushAfterServerShutdown(t *testing.T) {
	s := ferrytest.NATS(t)
	nc := ferrytest.Connect(t, s.ClientURL())
	b := newBroker(t, nc, natsbroker.WithFlush())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := b.Publish(ctx, &broker.Message{Topic: "flushed.before"}); err != nil {
		t.Fatalf("Publish with the server up = %v", err)
	}
	s.Shutdown()
	err := b.Publish(ctx, &broker.Message{Topic: "flushed.after"})
	if errs.CodeOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "flushed.after") {
		t.Errorf("Publish(WithFlush) right after the server shut down = %v, want unavailable naming the topic", err)
	}
}

func TestWireFormat(t *testing.T) {
	s := ferrytest.NATS(t)
	nc := ferrytest.Connect(t, s.ClientURL())
	b := newBroker(t, nc)

	raw := make(chan *nats.Msg, 2)
	rs, err := nc.ChanSubscribe("wire.out", raw)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Unsubscribe()
	m := &broker.Message{Topic: "wire.out", ID: "id-1", Header: transport.Metadata{"X-Trace": {"abc"}, "nats-msg-id": {"ignored"}}, Data: []byte("hi")}
	if err := b.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), &broker.Message{Topic: "wire.out"}); err != nil {
		t.Fatal(err)
	}
	for i, wantID := range []string{"id-1", ""} {
		var got *nats.Msg
		select {
		case got = <-raw:
		case <-time.After(5 * time.Second):
			t.Fatal("no message on the wire")
		}
		ids := got.Header.Values(nats.MsgIdHdr)
		switch {
		case wantID == "" && got.Header != nil:
			t.Errorf("message %d without ID or metadata has headers %v, want none", i, got.Header)
		case wantID != "" && (len(ids) != 1 || ids[0] != wantID):
			t.Errorf("message %d: Nats-Msg-Id = %v, want [%s]", i, ids, wantID)
		}
		if i == 0 && (got.Header.Get("x-trace") != "abc" || string(got.Data) != "hi" || len(got.Header) != 2) {
			t.Errorf("message headers = %v, data %q; want x-trace=abc and Nats-Msg-Id only, data hi", got.Header, got.Data)
		}
	}
	if m.ID != "id-1" || m.Header["X-Trace"] == nil {
		t.Errorf("Publish changed the caller's message: %+v", m)
	}

	// The other way: a message from a plain NATS client.
	ch := make(chan *broker.Delivery, 1)
	subscribe(t, b, "wire.in", func(_ context.Context, d *broker.Delivery) error {
		ch <- d
		return nil
	}, broker.Queue("readers"))
	in := nats.NewMsg("wire.in")
	in.Header["NATS-MSG-ID"] = []string{"from-cli"}
	in.Header["X-Foo"] = []string{"bar"}
	in.Data = []byte("payload")
	if err := nc.PublishMsg(in); err != nil {
		t.Fatal(err)
	}
	d := next(t, ch, "from a plain client")
	if d.ID != "from-cli" || d.Header.Get("x-foo") != "bar" || d.Header.Get("nats-msg-id") != "" || d.Header["x-foo"] == nil {
		t.Errorf("delivery ID %q header %v, want from-cli and x-foo=bar only", d.ID, d.Header)
	}
	if d.Attempt != 1 || d.Sequence != 0 || d.Kind != transport.NATS || d.Subscription != "readers" || string(d.Data) != "payload" {
		t.Errorf("delivery = %+v, want attempt 1, sequence 0, kind nats, subscription readers", d)
	}
}

func TestStreamDeduplicatesByID(t *testing.T) {
	s := ferrytest.NATS(t)
	nc := ferrytest.Connect(t, s.ClientURL())
	b := newBroker(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CAPTURE", Subjects: []string{"captured.>"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"same", "same", "other"} {
		if err := b.Publish(ctx, &broker.Message{Topic: "captured.x", ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stream stores the messages", func() bool {
		info, err := st.Info(ctx)
		return err == nil && info.State.Msgs >= 2
	})
	time.Sleep(50 * time.Millisecond)
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 2 {
		t.Errorf("stream holds %v messages (%v), want 2: the duplicate ID stored once", info.State.Msgs, err)
	}
}

func TestHandlerFailureLoggedAndDropped(t *testing.T) {
	s := ferrytest.NATS(t)
	b := newBroker(t, ferrytest.Connect(t, s.ClientURL()))
	var logs ferrytest.Buffer
	var calls atomic.Int64
	ok := make(chan *broker.Delivery, 1)
	subscribe(t, b, "fail.x", func(_ context.Context, d *broker.Delivery) error {
		switch calls.Add(1) {
		case 1:
			return errors.New("cannot handle")
		case 2:
			panic("raw panic")
		}
		ok <- d
		return nil
	}, broker.WithLogger(logs.Logger()), broker.Concurrency(1))
	for _, id := range []string{"a", "b", "c"} {
		if err := b.Publish(context.Background(), &broker.Message{Topic: "fail.x", ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if d := next(t, ok, "after a failure and a panic"); d.ID != "c" {
		t.Errorf("delivery after failures = %q, want c (no redelivery)", d.ID)
	}
	time.Sleep(100 * time.Millisecond)
	if calls.Load() != 3 {
		t.Errorf("handler ran %d times, want 3", calls.Load())
	}
	l := logs.String()
	for _, want := range []string{"level=WARN", "id=a", "cannot handle", "id=b", "raw panic"} {
		if !strings.Contains(l, want) {
			t.Errorf("log = %q, want it to contain %q", l, want)
		}
	}
}

func TestSlowConsumerLogged(t *testing.T) {
	s := ferrytest.NATS(t)
	nc := ferrytest.Connect(t, s.ClientURL())
	b := newBroker(t, nc, natsbroker.WithPendingLimits(2, -1))
	var logs ferrytest.Buffer
	release := make(chan struct{})
	var handled atomic.Int64
	subscribe(t, b, "slow.x", func(context.Context, *broker.Delivery) error {
		<-release
		handled.Add(1)
		return nil
	}, broker.WithLogger(logs.Logger()), broker.Concurrency(1))
	for range 20 {
		if err := b.Publish(context.Background(), &broker.Message{Topic: "slow.x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitFor(t, "the slow consumer logged", func() bool { return strings.Contains(logs.String(), "slow consumer") })
	if l := logs.String(); !strings.Contains(l, "dropped=") || !strings.Contains(l, "pending_msgs_limit=2") {
		t.Errorf("log = %q, want the dropped count and the limits", l)
	}
	if h := handled.Load(); h >= 20 {
		t.Errorf("handled %d of 20 with a pending limit of 2, want some dropped", h)
	}
}

func TestDrainCutsOffHandlers(t *testing.T) {
	s := ferrytest.NATS(t)
	nc := ferrytest.Connect(t, s.ClientURL())
	b := newBroker(t, nc)
	started := make(chan struct{}, 8)
	var cancelled atomic.Int64
	sub, err := b.Subscribe(context.Background(), "cut.x", func(ctx context.Context, d *broker.Delivery) error {
		started <- struct{}{}
		<-ctx.Done()
		cancelled.Add(1)
		return ctx.Err()
	}, config(t, "cut.x", broker.Concurrency(2), broker.WithLogger(slog.New(slog.DiscardHandler))))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := b.Publish(context.Background(), &broker.Message{Topic: "cut.x"}); err != nil {
			t.Fatal(err)
		}
	}
	<-started
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	err = sub.Drain(ctx)
	if errs.CodeOf(err) != errs.DeadlineExceeded {
		t.Errorf("Drain cut short = %v, want deadline_exceeded", err)
	}
	if el := time.Since(began); el > time.Second {
		t.Errorf("Drain took %v with a 100ms context", el)
	}
	if cancelled.Load() != 2 {
		t.Errorf("%d handler contexts cancelled, want the 2 running", cancelled.Load())
	}
	if len(started) != 0 {
		t.Errorf("%d more handlers started after Drain, want none (the rest is dropped)", len(started))
	}
	if err := sub.Drain(context.Background()); err != nil {
		t.Errorf("second Drain() = %v, want nil", err)
	}
	// Close leaves the connection to its owner.
	if err := b.Close(context.Background()); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if nc.IsClosed() || nc.Status() != nats.CONNECTED {
		t.Errorf("connection status after Close = %v, want CONNECTED", nc.Status())
	}
	if err := b.Publish(context.Background(), &broker.Message{Topic: "cut.x"}); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Publish after Close = %v, want broker.ErrClosed", err)
	}
}

func TestSubscribeOnClosedConnection(t *testing.T) {
	s := ferrytest.NATS(t)
	nc := ferrytest.Connect(t, s.ClientURL())
	b := newBroker(t, nc)
	nc.Close()
	_, err := b.Subscribe(context.Background(), "gone.x", func(context.Context, *broker.Delivery) error { return nil }, config(t, "gone.x"))
	if errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("Subscribe on a closed connection = %v, want unavailable", err)
	}
	if err := b.Publish(context.Background(), &broker.Message{Topic: "gone.x"}); errs.CodeOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "CLOSED") {
		t.Errorf("Publish on a closed connection = %v, want unavailable naming the status", err)
	}
}

func TestDrainAfterConnectionClosed(t *testing.T) {
	s := ferrytest.NATS(t)
	nc := ferrytest.Connect(t, s.ClientURL())
	b := newBroker(t, nc)
	sub := subscribe(t, b, "closed.x", func(context.Context, *broker.Delivery) error { return nil })
	nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := sub.Drain(ctx); err != nil {
		t.Errorf("Drain after the connection closed = %v, want nil", err)
	}
}
