package middleware

import (
	"context"

	"github.com/ferry-go/ferry/transport"
)

// OnMessages hooks into the messages of the streaming call in ctx: recv
// runs after each message the handler receives (before the handler sees
// it), send before each message the handler sends. An error from either is
// what that Recv or Send returns, so the handler decides what it means
// (returning it ends the stream with it). Either may be nil. For a unary
// call, or without a call in ctx, OnMessages does nothing.
//
// Middleware runs once per stream — auth, tracing, metrics and logging see
// a stream open when they are called and close when next returns — and
// calls OnMessages before next for what must see every message:
//
//	func(next middleware.Handler) middleware.Handler {
//		return func(ctx context.Context, req any) (any, error) {
//			middleware.OnMessages(ctx, func(ctx context.Context, m any) error { return check(m) }, nil)
//			return next(ctx, req)
//		}
//	}
func OnMessages(ctx context.Context, recv, send func(ctx context.Context, m any) error) {
	c, ok := transport.CallFromContext(ctx)
	if !ok || c.Stream == nil || (recv == nil && send == nil) {
		return
	}
	c.Stream = &hookedStream{next: c.Stream, ctx: ctx, recv: recv, send: send}
}

type hookedStream struct {
	next       transport.Stream
	ctx        context.Context
	recv, send func(context.Context, any) error
}

func (h *hookedStream) Recv(m any) error {
	if err := h.next.Recv(m); err != nil {
		return err
	}
	if h.recv != nil {
		return h.recv(h.ctx, m)
	}
	return nil
}

func (h *hookedStream) Send(m any) error {
	if h.send != nil {
		if err := h.send(h.ctx, m); err != nil {
			return err
		}
	}
	return h.next.Send(m)
}
