package validate_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/broker/memory"
	"github.com/ferry-go/ferry/middleware/validate"
)

// TestEvents: a subscription with the middleware never sees an invalid
// event; the same middleware value works for RPC and events.
func TestEvents(t *testing.T) {
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	defer func() { _ = b.Close(ctx) }()

	var got atomic.Int64
	valid := make(chan string, 1)
	sub, err := broker.Subscribe(ctx, b, "events.orders", func(ctx context.Context, e *broker.Event[PlaceOrder]) error {
		got.Add(1)
		valid <- e.Data.Customer
		return nil
	}, broker.WithMiddleware(validate.New()), broker.MaxDeliver(1))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Drain(ctx) }()
	if err := broker.Publish(ctx, b, "events.orders", &PlaceOrder{Customer: "bad"}); err != nil {
		t.Fatal(err)
	}
	if err := broker.Publish(ctx, b, "events.orders", &PlaceOrder{Customer: "ada", Items: []*Item{{SKU: "a", Qty: 1}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-valid:
		if c != "ada" {
			t.Errorf("handler got %q", c)
		}
	case <-ctx.Done():
		t.Fatal("valid event never handled")
	}
	time.Sleep(100 * time.Millisecond)
	if n := got.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
}
