package nats

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferry-go/ferry/transport"
)

// The handler's context is the callState itself: transport.CallFromContext
// must find the Call in it, contexts derived
// from it must end with it, and other values come from the parent.
func TestCallStateContext(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	defer cancel()
	st := &callState{call: transport.Call{Service: "s", Endpoint: "e"}}
	st.ctx.Init(parent, time.Now().Add(time.Hour))
	ctx := st.callContext()
	if _, ok := ctx.(*callState); !ok {
		t.Fatalf("callContext() = %T, want *callState", ctx)
	}
	if c, ok := transport.CallFromContext(ctx); !ok || c != &st.call {
		t.Fatalf("CallFromContext() = %v, %v; want the call state's Call", c, ok)
	}
	if v := ctx.Value(key{}); v != "v" {
		t.Errorf("Value(parent's key) = %v, want v", v)
	}
	derived, stop := context.WithCancel(ctx)
	defer stop()
	if c, ok := transport.CallFromContext(derived); !ok || c != &st.call {
		t.Errorf("CallFromContext(derived) = %v, %v; want the call state's Call", c, ok)
	}
	st.ctx.Release()
	select {
	case <-derived.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a context derived from the handler's did not end with the call")
	}
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() after Release = %v, want Canceled", err)
	}
}
