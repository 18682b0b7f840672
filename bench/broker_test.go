package bench_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	jsbroker "github.com/ferry-go/ferry/broker/jetstream"
	natsbroker "github.com/ferry-go/ferry/broker/nats"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

const (
	// brokerPublishers is how many goroutines publish at once: a
	// synchronous JetStream publish waits for the stream's
	// acknowledgement, so one publisher would measure the round trip
	// rather than the broker.
	brokerPublishers = 64
	// coreHandlers is how many handlers run at once in the core NATS
	// rows: raw handles each message in its subscription callback, Ferry
	// gets Concurrency(1).
	coreHandlers = 1
	// jsHandlers is how many handlers run at once in the JetStream rows:
	// Ferry's default; raw hands each message from its Consume callback
	// to one of 8 goroutines. The jetstream-c1 rows run one.
	jsHandlers = broker.DefaultConcurrency
	// coreWindow bounds the core NATS messages published but not yet
	// handled: core NATS has no flow control, and publishers that run
	// ahead overflow the subscriber's pending limits, which drops
	// messages (Ferry's broker holds 65536 by default, nats.go 500,000
	// or 64 MB).
	coreWindow = 16384
	// brokerWait bounds the wait for the subscriber to handle every
	// message once publishing is done.
	brokerWait = 2 * time.Minute
	// brokerShutdown bounds each set-up call, drain and close.
	brokerShutdown = 10 * time.Second
)

// brokerRun numbers topics and streams so that no two runs share one: b.N
// changes between runs and nothing may carry over (each run also has a
// server and store of its own).
var brokerRun atomic.Int64

// BenchmarkBroker measures publish → handled, end to end per message,
// through raw nats.go and through Ferry's brokers on the same embedded
// nats-server: b.N messages are published by 64 goroutines on one
// connection while one queue subscription on another connection handles
// them, and the clock stops when the last one has been handled. Raw and
// Ferry rows run the same number of handlers at once.
func BenchmarkBroker(b *testing.B) {
	b.Run("core/raw", func(b *testing.B) {
		url := startBrokerServer(b)
		pub, sub := brokerConn(b, url), brokerConn(b, url)
		topic, _ := brokerNames("core")
		s := newSink(b.N, coreWindow)
		// The callback is the handler: nats.go runs it for one message
		// at a time. The connection's clean-up drains the subscription.
		if _, err := sub.QueueSubscribe(topic, "bench", func(m *nats.Msg) { s.decode(m.Data) }); err != nil {
			b.Fatal(err)
		}
		if err := sub.Flush(); err != nil {
			b.Fatal(err)
		}
		publishAll(b, s, func() error {
			data, err := json.Marshal(payload)
			if err != nil {
				return err
			}
			return pub.Publish(topic, data)
		})
	})
	b.Run("core/ferry", func(b *testing.B) {
		url := startBrokerServer(b)
		pub := newNATSBroker(b, brokerConn(b, url))
		sub := newNATSBroker(b, brokerConn(b, url))
		topic, _ := brokerNames("core")
		s := newSink(b.N, coreWindow)
		subscribe(b, sub, topic, s, coreHandlers)
		ctx := context.Background()
		publishAll(b, s, func() error { return broker.Publish(ctx, pub, topic, payload) })
	})
	b.Run("jetstream/raw", func(b *testing.B) { benchJetStreamRaw(b, jsHandlers) })
	b.Run("jetstream/ferry", func(b *testing.B) { benchJetStreamFerry(b, jsHandlers) })
	// One handler at a time, as in the core rows.
	b.Run("jetstream-c1/raw", func(b *testing.B) { benchJetStreamRaw(b, 1) })
	b.Run("jetstream-c1/ferry", func(b *testing.B) { benchJetStreamFerry(b, 1) })
}

// benchJetStreamRaw is a durable pull consumer with explicit acks, fed by
// Consume (nats.go's default buffer of 500 messages), whose callback
// handles each message itself (handlers = 1) or hands it to one of
// handlers goroutines.
func benchJetStreamRaw(b *testing.B, handlers int) {
	url := startBrokerServer(b)
	pubJS, subJS := newJetStream(b, url), newJetStream(b, url)
	topic, stream := brokerNames("js")
	ctx, cancel := context.WithTimeout(context.Background(), brokerShutdown)
	defer cancel()
	if _, err := pubJS.CreateStream(ctx, benchStream(stream, topic)); err != nil {
		b.Fatal(err)
	}
	cons, err := subJS.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       "bench",
		FilterSubject: topic,
		AckPolicy:     jetstream.AckExplicitPolicy,
	})
	if err != nil {
		b.Fatal(err)
	}
	s := newSink(b.N, 0)
	process := func(m jetstream.Msg) {
		s.decode(m.Data())
		_ = m.Ack()
	}
	callback := process
	work := make(chan jetstream.Msg) // unbuffered: the callback waits for a free handler
	var workers sync.WaitGroup
	if handlers > 1 {
		for range handlers {
			workers.Go(func() {
				for m := range work {
					process(m)
				}
			})
		}
		callback = func(m jetstream.Msg) { work <- m }
	}
	cc, err := cons.Consume(callback)
	if err != nil {
		close(work)
		workers.Wait()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cc.Drain()
		select {
		case <-cc.Closed():
		case <-time.After(brokerShutdown):
			b.Errorf("JetStream consumer not drained after %v", brokerShutdown)
			cc.Stop()
			<-cc.Closed()
		}
		close(work)
		workers.Wait()
	})
	publishAll(b, s, func() error {
		data, err := json.Marshal(payload)
		if err != nil {
			return err
		}
		// Ferry gives every message an ID for de-duplication: so does
		// raw, from the same generator.
		_, err = pubJS.Publish(context.Background(), topic, data, jetstream.WithMsgID(nuid.Next()))
		return err
	})
}

// benchJetStreamFerry is broker/jetstream on the same stream, with a queue
// subscription of handlers handlers.
func benchJetStreamFerry(b *testing.B, handlers int) {
	url := startBrokerServer(b)
	topic, stream := brokerNames("js")
	withStream := jsbroker.WithStream(benchStream(stream, topic))
	pub := newJSBroker(b, newJetStream(b, url), withStream)
	sub := newJSBroker(b, newJetStream(b, url), withStream)
	s := newSink(b.N, 0)
	subscribe(b, sub, topic, s, handlers)
	ctx := context.Background()
	publishAll(b, s, func() error { return broker.Publish(ctx, pub, topic, payload) })
}

// sink counts handled messages and says when the last one arrived.
type sink struct {
	want      int64
	n         atomic.Int64  // handled
	done      chan struct{} // closed when want messages were handled
	window    int64         // core NATS flow control; 0 for none
	published atomic.Int64  // counted only with a window

	failOnce sync.Once
	err      error
	failed   chan struct{} // closed when a handler saw a bad message

	warnings warnings // what Ferry's subscription logged
}

// newSink expects want messages. A window above 0 makes publishers wait
// while that many messages are published but not yet handled.
func newSink(want, window int) *sink {
	return &sink{want: int64(want), done: make(chan struct{}), window: int64(window), failed: make(chan struct{})}
}

// decode is the raw rows' handler: what Ferry's typed Subscribe does
// before calling its handler, and then the same handler.
func (s *sink) decode(data []byte) {
	var m Msg
	if err := json.Unmarshal(data, &m); err != nil {
		s.fail(err)
		return
	}
	s.handled(&m)
}

// handled is the handler of every row.
func (s *sink) handled(m *Msg) {
	if m.Num != payload.Num {
		s.fail(fmt.Errorf("bad message %+v", m))
		return
	}
	if s.n.Add(1) == s.want {
		close(s.done)
	}
}

// throttle waits while the window is full. It polls rather than being
// woken by handlers: a wake-up per handled message would have each handler
// make a publisher goroutine runnable, which Go's scheduler runs next, ahead
// of the subscription's own goroutines.
func (s *sink) throttle() {
	p := s.published.Add(1)
	for p-s.n.Load() > s.window {
		time.Sleep(50 * time.Microsecond)
	}
}

func (s *sink) fail(err error) {
	s.failOnce.Do(func() { s.err = err; close(s.failed) })
}

// wait returns once every message was handled; anything else fails b.
func (s *sink) wait(b *testing.B) {
	t := time.NewTimer(brokerWait)
	defer t.Stop()
	select {
	case <-s.done:
	case <-s.failed:
		b.Fatal(s.err)
	case <-t.C:
		b.Fatalf("handled %d of %d messages in %v", s.n.Load(), s.want, brokerWait)
	}
}

// publishAll runs publish b.N times from brokerPublishers goroutines and
// waits until s has handled every message: the time per op is the time
// per message, end to end.
func publishAll(b *testing.B, s *sink, publish func() error) {
	b.ReportAllocs()
	b.SetParallelism(max(1, brokerPublishers/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if s.window > 0 {
				s.throttle()
			}
			if err := publish(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if !b.Failed() {
		s.wait(b)
	}
	b.StopTimer()
	if n := s.warnings.n.Load(); n > 0 {
		b.ReportMetric(float64(n), "warnings")
		b.Logf("Ferry logged %d warnings; the first: %s", n, *s.warnings.first.Load())
	}
}

// warnings is a slog.Handler counting records at Warn and above. Ferry's
// subscriptions log to it rather than to stderr, whose lines would cut
// benchmark result lines in two (and benchstat would skip them); the
// count is reported as a metric, the first record with b.Logf.
type warnings struct {
	n     atomic.Int64
	first atomic.Pointer[string]
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	if w.first.Load() == nil {
		var sb strings.Builder
		sb.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
			return true
		})
		msg := sb.String()
		w.first.CompareAndSwap(nil, &msg)
	}
	w.n.Add(1) // after first is set: a count above 0 has a first record
	return nil
}

func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

// brokerNames returns a fresh topic and stream name.
func brokerNames(kind string) (topic, stream string) {
	n := brokerRun.Add(1)
	return fmt.Sprintf("bench.%s.%d", kind, n), fmt.Sprintf("BENCH_%d", n)
}

// benchStream is the stream of both JetStream rows.
func benchStream(name, topic string) jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: name, Subjects: []string{topic}, Storage: jetstream.FileStorage, Replicas: 1}
}

// startBrokerServer starts a nats-server with JetStream for one run.
func startBrokerServer(b *testing.B) string {
	b.Helper()
	dir := b.TempDir() // removed after the server's shutdown: clean-ups run last in, first out
	ctx, cancel := context.WithTimeout(context.Background(), brokerShutdown)
	defer cancel()
	ns, err := natsembed.Start(ctx, natsembed.Options{JetStream: true, StoreDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

// brokerConn connects to url; its clean-up drains the connection (its
// subscriptions, then what is left to publish) and waits until it closed.
func brokerConn(b *testing.B, url string) *nats.Conn {
	b.Helper()
	closed := make(chan struct{})
	nc, err := nats.Connect(url, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.Errorf("drain connection: %v", err)
		}
		select {
		case <-closed:
		case <-time.After(brokerShutdown):
			b.Errorf("connection not closed %v after drain", brokerShutdown)
			nc.Close()
		}
	})
	return nc
}

func newJetStream(b *testing.B, url string) jetstream.JetStream {
	b.Helper()
	js, err := jetstream.New(brokerConn(b, url))
	if err != nil {
		b.Fatal(err)
	}
	return js
}

func newNATSBroker(b *testing.B, nc *nats.Conn) *natsbroker.Broker {
	b.Helper()
	br, err := natsbroker.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeBroker(b, br) })
	return br
}

func newJSBroker(b *testing.B, js jetstream.JetStream, opts ...jsbroker.Option) *jsbroker.Broker {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), brokerShutdown)
	defer cancel()
	br, err := jsbroker.New(ctx, js, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeBroker(b, br) })
	return br
}

func closeBroker(b *testing.B, br broker.Broker) {
	ctx, cancel := context.WithTimeout(context.Background(), brokerShutdown)
	defer cancel()
	if err := br.Close(ctx); err != nil {
		b.Errorf("close broker: %v", err)
	}
}

// subscribe starts a Ferry row's subscription: the queue group "bench"
// with the given number of handlers, whose clean-up drains it.
func subscribe(b *testing.B, br broker.Broker, topic string, s *sink, handlers int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), brokerShutdown)
	defer cancel()
	sub, err := broker.Subscribe(ctx, br, topic, func(_ context.Context, e *broker.Event[Msg]) error {
		s.handled(e.Data)
		return nil
	}, broker.Queue("bench"), broker.Concurrency(handlers), broker.WithLogger(slog.New(&s.warnings)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), brokerShutdown)
		defer cancel()
		if err := sub.Drain(ctx); err != nil {
			b.Errorf("drain subscription: %v", err)
		}
	})
}
