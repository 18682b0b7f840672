package broker

import (
	"context"
	"sync/atomic"

	"github.com/ferry-go/ferry/transport"
)

// What a typed subscription needs per message — the Delivery, the
// contexts carrying it and the transport.Call, the Call, the Event and the
// decoded T — is one allocation: an event[T], which is also the handler's
// context. An implementation that gets its Delivery from
// SubscribeConfig.NewDelivery gets it from there; with one that does not
// (broker.NewDeliveryContext and a Delivery of its own), the event leaves
// the Delivery to the context it was given.

// NewDelivery returns a zero Delivery for one message and a copy of ctx
// carrying it, as NewDeliveryContext does: an implementation fills in the
// Delivery and runs the handler with the context. For a subscription of
// the typed Subscribe, both come in one allocation with what the handler
// needs per message; for any other, in one allocation as well.
func (c *SubscribeConfig) NewDelivery(ctx context.Context) (context.Context, *Delivery) {
	if c.newEvent != nil {
		return c.newEvent(ctx)
	}
	dc := &deliveryContext{Context: ctx}
	return dc, &dc.d
}

// deliveryContext is a context carrying the Delivery it holds: what
// context.WithValue(ctx, deliveryKey{}, d) is, with d in the same
// allocation.
type deliveryContext struct {
	context.Context
	d Delivery
}

func (c *deliveryContext) Value(key any) any {
	if key == any(deliveryKey{}) {
		return &c.d
	}
	return c.Context.Value(key)
}

func (c *deliveryContext) String() string {
	return contextName(c.Context) + ".WithValue(broker.Delivery)"
}

// eventKey finds the event[T] behind a context, through whatever
// middleware wrapped it.
type eventKey struct{}

// event is one message of a typed subscription, and the context its
// middleware and handler run with: it carries the Delivery (own, or its
// parent's) and, once set, the Call, as context.WithValue would.
type event[T any] struct {
	context.Context
	d       Delivery // when own
	call    transport.Call
	reply   transport.LazyMetadata
	ev      Event[T]
	evTaken atomic.Bool // ev is handed to the handler
	own     bool        // d is the Delivery: the implementation filled it in
	callSet bool        // the Call is in the context
	v       T
}

func (e *event[T]) Value(key any) any {
	switch {
	case e.own && key == any(deliveryKey{}):
		return &e.d
	case e.callSet && transport.IsCallKey(key):
		return &e.call
	case key == any(eventKey{}):
		return e
	}
	return e.Context.Value(key)
}

func (e *event[T]) String() string { return contextName(e.Context) + ".WithValue(broker.event)" }

func contextName(c context.Context) string {
	if s, ok := c.(interface{ String() string }); ok {
		return s.String()
	}
	return "context"
}
