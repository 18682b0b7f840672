package ferry_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/broker"
	jsbroker "github.com/ferry-go/ferry/broker/jetstream"
	"github.com/ferry-go/ferry/broker/memory"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/natsembed"
	regmemory "github.com/ferry-go/ferry/registry/memory"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go/jetstream"
)

type placed struct {
	Order string `json:"order"`
}

// jetStreamBroker makes, at start, a JetStream broker on nc.
func jetStreamBroker(nc *fnats.Conn) func(context.Context) (broker.Broker, error) {
	return func(ctx context.Context) (broker.Broker, error) {
		js, err := jetstream.New(nc.NATS())
		if err != nil {
			return nil, err
		}
		return jsbroker.New(ctx, js, jsbroker.WithStream(jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.MemoryStorage}))
	}
}

// embeddedJetStream returns the options of a service on an embedded NATS
// server with JetStream, connected, with a JetStream broker.
func embeddedJetStream(t *testing.T) ([]ferry.Option, *fnats.Conn) {
	emb := natsembed.New(natsembed.Options{JetStream: true, StoreDir: t.TempDir()})
	nc := fnats.ConnectTo(emb.ClientURL)
	return []ferry.Option{ferry.WithConnection(emb), ferry.WithConnection(nc), ferry.WithBrokerFrom(jetStreamBroker(nc))}, nc
}

// TestSubscriptionsRunWithTheService: an events-only service (no
// endpoints) on the embedded NATS server with a JetStream broker runs its
// subscription behind the server's middleware, and drains it at stop.
func TestSubscriptionsRunWithTheService(t *testing.T) {
	var seenByMiddleware atomic.Value
	mw := func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			if c, ok := transport.CallFromContext(ctx); ok {
				seenByMiddleware.Store(c.Service + " " + c.Endpoint)
			}
			return next(ctx, req)
		}
	}
	srv := server.New("billing", server.WithLogger(quiet()), server.WithMiddleware(mw))
	js, _ := embeddedJetStream(t)
	svc := ferry.New(srv, append(js, ferry.WithSignals(), ferry.WithLogger(quiet()))...)
	got := make(chan string, 1)
	ferry.Subscribe(svc, "orders.placed", func(ctx context.Context, e *broker.Event[placed]) error {
		got <- e.Data.Order
		return nil
	}, broker.Queue("billing"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("Start = %v", err)
	}
	if err := broker.Publish(ctx, svc.Broker(), "orders.placed", &placed{Order: "o-1"}); err != nil {
		t.Fatalf("Publish = %v", err)
	}
	select {
	case o := <-got:
		if o != "o-1" {
			t.Errorf("handler got order %q, want o-1", o)
		}
	case <-ctx.Done():
		t.Fatal("the subscription never got the event")
	}
	if s, _ := seenByMiddleware.Load().(string); s != "billing orders.placed" {
		t.Errorf("server middleware saw %q, want %q", s, "billing orders.placed")
	}
	if err := svc.Stop(ctx); err != nil {
		t.Errorf("Stop = %v", err)
	}
	if svc.Broker() != nil {
		t.Error("Broker() still set after Stop")
	}
}

func TestSubscribeBadSetup(t *testing.T) {
	h := func(context.Context, *broker.Event[placed]) error { return nil }
	tests := []struct {
		name  string
		build func() *ferry.Service
		want  string
	}{
		{"bad option", func() *ferry.Service {
			svc := ferry.New(newServer(), ferry.WithTransport(nopTransport{}), ferry.WithLogger(quiet()))
			ferry.Subscribe(svc, "orders.placed", h, broker.Concurrency(0))
			return svc
		}, "concurrency 0"},
		{"bad topic", func() *ferry.Service {
			svc := ferry.New(newServer(), ferry.WithTransport(nopTransport{}), ferry.WithLogger(quiet()))
			ferry.Subscribe(svc, "orders..placed", h)
			return svc
		}, `invalid topic "orders..placed"`},
		{"no broker", func() *ferry.Service {
			svc := ferry.New(newServer(), ferry.WithTransport(nopTransport{}), ferry.WithLogger(quiet()))
			ferry.Subscribe(svc, "orders.placed", h)
			return svc
		}, "subscriptions need a broker"},
		{"broker that cannot be made", func() *ferry.Service {
			svc := ferry.New(newServer(), ferry.WithTransport(nopTransport{}), ferry.WithLogger(quiet()),
				ferry.WithBrokerFrom(func(context.Context) (broker.Broker, error) { return nil, errors.New("no NATS here") }))
			ferry.Subscribe(svc, "orders.placed", h)
			return svc
		}, "make the broker: no NATS here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := tt.build().Start(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// nopTransport serves nothing.
type nopTransport struct{}

func (nopTransport) Start(context.Context, *server.Server) error { return nil }
func (nopTransport) Stop(context.Context) error                  { return nil }

// failingBroker is a memory broker whose Subscribe fails for one topic and
// which tracks whether each subscription it made was drained.
type failingBroker struct {
	broker.Broker
	fail string

	mu   sync.Mutex
	subs []*trackedSub
}

type trackedSub struct {
	broker.Subscription
	drained atomic.Bool
}

func (s *trackedSub) Drain(ctx context.Context) error {
	s.drained.Store(true)
	return s.Subscription.Drain(ctx)
}

func (b *failingBroker) Subscribe(ctx context.Context, topic string, h broker.Handler, cfg broker.SubscribeConfig) (broker.Subscription, error) {
	if topic == b.fail {
		return nil, errors.New("cannot subscribe to " + topic)
	}
	s, err := b.Broker.Subscribe(ctx, topic, h, cfg)
	if err != nil {
		return nil, err
	}
	ts := &trackedSub{Subscription: s}
	b.mu.Lock()
	b.subs = append(b.subs, ts)
	b.mu.Unlock()
	return ts, nil
}

// TestFailedStartDrainsSubscriptions is issue #11's defect 1: when a
// later subscription failed to start, the ones that had started kept
// consuming after Start returned the error.
func TestFailedStartDrainsSubscriptions(t *testing.T) {
	mb, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close(context.Background())
	fb := &failingBroker{Broker: mb, fail: "orders.broken"}
	svc := ferry.New(server.New("billing", server.WithLogger(quiet())), ferry.WithBroker(fb), ferry.WithSignals(), ferry.WithLogger(quiet()))
	ok := func(context.Context, *broker.Event[placed]) error { return nil }
	ferry.Subscribe(svc, "orders.placed", ok)
	ferry.Subscribe(svc, "orders.shipped", ok)
	ferry.Subscribe(svc, "orders.broken", ok)
	if err := svc.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot subscribe to orders.broken") {
		t.Fatalf("Start = %v, want the subscription's error", err)
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if len(fb.subs) != 2 {
		t.Fatalf("%d subscriptions started, want 2", len(fb.subs))
	}
	for _, s := range fb.subs {
		if !s.drained.Load() {
			t.Errorf("subscription to %s still runs after Start failed", s.Topic())
		}
	}
}

// TestInFlightCallsPublishDuringStop is issue #11's defect 2: graceful stop
// closed the broker (WithBrokerFrom) before the transports drained, so an
// in-flight call that then published met a nil broker (a panic, recovered
// as a 500). The broker now closes after the transports have drained.
func TestInFlightCallsPublishDuringStop(t *testing.T) {
	srv := server.New("shop", server.WithLogger(quiet()))
	var svc *ferry.Service
	started, release := make(chan struct{}), make(chan struct{})
	server.Handle(srv, "Place", func(ctx context.Context, p *placed) (*placed, error) {
		close(started)
		<-release
		return p, broker.Publish(ctx, svc.Broker(), "orders.placed", p)
	})
	h := fhttp.NewServer("127.0.0.1:0")
	js, _ := embeddedJetStream(t)
	svc = ferry.New(srv, append(js, ferry.WithTransport(h), ferry.WithSignals(), ferry.WithLogger(quiet()))...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := "http://" + h.Addr().String()
	reply := make(chan error, 1)
	go func() {
		c, err := fhttp.NewClient(addr)
		if err != nil {
			reply <- err
			return
		}
		defer c.Close()
		_, err = transport.Invoke[placed, placed](ctx, c, "shop", "Place", &placed{Order: "o-9"})
		reply <- err
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- svc.Stop(ctx) }()
	// The HTTP transport is draining once it refuses new connections.
	host := strings.TrimPrefix(addr, "http://")
	ferrytest.Eventually(t, "the HTTP transport stops accepting", func() bool {
		conn, err := net.Dial("tcp", host)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	close(release)
	if err := <-reply; err != nil {
		t.Errorf("the in-flight call that publishes during stop = %v, want success", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Stop = %v", err)
	}
}

// TestSubscriptionsOnlyWithARegistry (issue #12): an events-only service
// configured with a registry — as every service of a system shares one —
// starts, and registers nothing: it has nothing to call.
func TestSubscriptionsOnlyWithARegistry(t *testing.T) {
	reg := regmemory.New()
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	svc := ferry.New(server.New("notifications", server.WithLogger(quiet())),
		ferry.WithBroker(b), ferry.WithRegistry(reg), ferry.WithLogger(quiet()))
	ferry.Subscribe(svc, "orders.placed", func(context.Context, *broker.Event[placed]) error { return nil })
	ctx := ferrytest.Context(t)
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("Start = %v, want an events-only service to start with a registry", err)
	}
	defer svc.Stop(ctx)
	if ins, err := reg.Lookup(ctx, "notifications"); err != nil || len(ins) != 0 {
		t.Errorf("registered %v, %v; want nothing", ins, err)
	}
}
