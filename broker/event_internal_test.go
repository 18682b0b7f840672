package broker

import (
	"context"
	"testing"

	"github.com/ferry-go/ferry/transport"
)

// TestEventCarriesCall: an event's context answers transport's Call
// look-up once its Call is set, and not before.
func TestEventCarriesCall(t *testing.T) {
	e := &event[int]{Context: context.Background()}
	if _, ok := transport.CallFromContext(e); ok {
		t.Fatal("CallFromContext found a Call before it was set")
	}
	e.call.Endpoint = "orders.placed"
	e.callSet = true
	if c, ok := transport.CallFromContext(e); !ok || c != &e.call {
		t.Fatalf("CallFromContext = %v, %v; want the event's Call", c, ok)
	}
}
