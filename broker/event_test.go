package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
)

// handOver is a Broker that keeps a subscription's handler and
// configuration, for a test to deliver messages to by hand.
type handOver struct {
	h   broker.Handler
	cfg broker.SubscribeConfig
}

func (b *handOver) Publish(context.Context, *broker.Message) error { return nil }
func (b *handOver) Close(context.Context) error                    { return nil }

func (b *handOver) Subscribe(_ context.Context, topic string, h broker.Handler, cfg broker.SubscribeConfig) (broker.Subscription, error) {
	b.h, b.cfg = h, cfg
	return &fakeSub{name: topic}, nil
}

// deliver runs the handler on a message as an implementation does: with
// cfg.NewDelivery, or (own) with a Delivery of its own and
// NewDeliveryContext.
func (b *handOver) deliver(ctx context.Context, own bool, data string) (*broker.Delivery, error) {
	var d *broker.Delivery
	if own {
		d = new(broker.Delivery)
		ctx = broker.NewDeliveryContext(ctx, d)
	} else {
		ctx, d = b.cfg.NewDelivery(ctx)
	}
	*d = broker.Delivery{
		Message:      broker.Message{Topic: "orders.placed", ID: "o-1", Header: transport.Pairs("x-a", "1"), Data: []byte(data)},
		Attempt:      1,
		Subscription: "billing",
		Kind:         transport.NATS,
	}
	return d, b.h(ctx, d)
}

type order struct{ N int }

type ctxKey struct{}

// TestEventContext: whichever way an implementation makes its Delivery,
// the middleware and the handler see it, a Call describing it with
// writable reply metadata, the values of the subscription's context and
// its deadline, and an Event of their own for every message and every
// call of the handler.
func TestEventContext(t *testing.T) {
	for _, own := range []bool{false, true} {
		b := &handOver{}
		var (
			delivery *broker.Delivery
			calls    []*transport.Call
			events   []*broker.Event[order]
		)
		twice := func(next middleware.Handler) middleware.Handler {
			return func(ctx context.Context, req any) (any, error) {
				c, ok := transport.CallFromContext(ctx)
				if !ok {
					t.Fatalf("own=%v: no Call in the middleware's context", own)
				}
				c.Reply.Set("x-reply", "r")
				if c.Reply.Get("X-Reply") != "r" || len(c.Reply.Keys()) != 1 {
					t.Errorf("own=%v: reply metadata after Set = %v", own, c.Reply.Keys())
				}
				if _, err := next(ctx, req); err != nil {
					return nil, err
				}
				return next(context.WithValue(ctx, ctxKey{}, "inner"), req)
			}
		}
		h := func(ctx context.Context, e *broker.Event[order]) error {
			d, ok := broker.DeliveryFromContext(ctx)
			c, cok := transport.CallFromContext(ctx)
			if !ok || d != e.Delivery || (delivery != nil && d != delivery) || !cok {
				t.Errorf("own=%v: DeliveryFromContext = %p, %v; event's %p; want the delivered one %p; Call found %v", own, d, ok, e.Delivery, delivery, cok)
			} else if c.Service != "billing" || c.Endpoint != "orders.placed" || c.Kind != transport.NATS || c.Client ||
				c.Request.Get("x-a") != "1" || c.Reply.Get("x-reply") != "r" {
				t.Errorf("own=%v: Call = %+v", own, c)
			}
			if dl, ok := ctx.Deadline(); !ok || !dl.Equal(c.Deadline) {
				t.Errorf("own=%v: deadline %v, %v; Call's %v", own, dl, ok, c.Deadline)
			}
			if ctx.Value(ctxKey{}) == nil {
				t.Errorf("own=%v: the subscription context's value is lost", own)
			}
			calls, events = append(calls, c), append(events, e)
			return nil
		}
		if _, err := broker.Subscribe(context.Background(), b, "orders.placed", h, broker.Queue("billing"), broker.WithMiddleware(twice)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "sub"), time.Minute)
		defer cancel()
		for i := range 2 {
			delivery = nil
			d, err := b.deliver(ctx, own, `{"N":7}`)
			if err != nil {
				t.Fatalf("own=%v: handler = %v", own, err)
			}
			delivery = d
			if len(events) != 2*(i+1) {
				t.Fatalf("own=%v: %d handler calls after %d messages", own, len(events), i+1)
			}
		}
		for i, e := range events {
			if e.Data == nil || e.Data.N != 7 {
				t.Errorf("own=%v: event %d data = %+v", own, i, e.Data)
			}
			for j := range i {
				if events[j] == e {
					t.Errorf("own=%v: events %d and %d are the same Event", own, j, i)
				}
			}
		}
		if calls[0] != calls[1] || calls[1] == calls[2] {
			t.Errorf("own=%v: want one Call per message", own)
		}
		if events[0].Data != events[1].Data || events[1].Data == events[2].Data {
			t.Errorf("own=%v: want one decoded value per message", own)
		}
		if _, err := b.deliver(ctx, own, `not json`); !broker.IsPermanent(err) {
			t.Errorf("own=%v: undecodable payload: handler = %v, want a permanent error", own, err)
		}
	}
}

// TestNewDelivery: without the typed Subscribe, NewDelivery's context
// carries its Delivery and the parent's values.
func TestNewDelivery(t *testing.T) {
	cfg, err := broker.NewSubscribeConfig("orders.placed")
	if err != nil {
		t.Fatal(err)
	}
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	ctx, d := cfg.NewDelivery(parent)
	if got, ok := broker.DeliveryFromContext(ctx); !ok || got != d {
		t.Errorf("DeliveryFromContext = %p, %v, want %p", got, ok, d)
	}
	if ctx.Value(ctxKey{}) != "v" {
		t.Error("NewDelivery's context lost the parent's value")
	}
	if _, ok := broker.DeliveryFromContext(parent); ok {
		t.Error("the parent carries a Delivery")
	}
}
