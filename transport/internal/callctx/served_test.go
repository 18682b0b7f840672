package callctx

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferry-go/ferry/transport"
)

// TestServed: a Served is the handler's context: transport.CallFromContext
// finds its Call (through derived contexts too), other values come from
// the parent, and contexts derived from it end with the call.
func TestServed(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	defer cancel()
	s := &Served{Call: transport.Call{Service: "s", Endpoint: "e"}}
	s.Init(parent, time.Now().Add(time.Hour))
	if c, ok := transport.CallFromContext(s); !ok || c != &s.Call {
		t.Fatalf("CallFromContext() = %v, %v; want the Served's Call", c, ok)
	}
	if _, ok := transport.CallFromContext(&s.Ctx); ok {
		t.Error("CallFromContext(&s.Ctx) found a Call: the bare Ctx carries none")
	}
	if v := s.Value(key{}); v != "v" {
		t.Errorf("Value(parent's key) = %v, want v", v)
	}
	derived, stop := context.WithCancel(s)
	defer stop()
	if c, ok := transport.CallFromContext(derived); !ok || c != &s.Call {
		t.Errorf("CallFromContext(derived) = %v, %v; want the Served's Call", c, ok)
	}
	s.Release()
	select {
	case <-derived.Done():
	case <-time.After(wait):
		t.Fatal("a context derived from the Served did not end with the call")
	}
	if err := s.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() after Release = %v, want Canceled", err)
	}
}

// TestCarrier: a Carrier answers transport.CallFromContext with its Call
// and passes everything else, cancellation included, to its parent.
func TestCarrier(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	call := &transport.Call{Service: "s"}
	c := &Carrier{Context: parent, Call: call}
	if got, ok := transport.CallFromContext(c); !ok || got != call {
		t.Fatalf("CallFromContext() = %v, %v; want the Carrier's Call", got, ok)
	}
	if v := c.Value(key{}); v != "v" {
		t.Errorf("Value(parent's key) = %v, want v", v)
	}
	derived, stop := context.WithCancel(c)
	defer stop()
	cancel()
	select {
	case <-derived.Done():
	case <-time.After(wait):
		t.Fatal("a context derived from the Carrier did not end with its parent")
	}
}
