package timeout

import (
	"context"
	"time"

	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
)

// New returns middleware that gives the handler's context a deadline at
// most d away. A d of 0 or less returns middleware that changes nothing.
func New(d time.Duration) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		if d <= 0 {
			return next
		}
		return func(ctx context.Context, req any) (any, error) {
			deadline := time.Now().Add(d)
			if cur, ok := ctx.Deadline(); ok && !cur.After(deadline) {
				return next(ctx, req) // the incoming deadline is already tighter
			}
			ctx, cancel := context.WithDeadline(ctx, deadline)
			defer cancel()
			if call, ok := transport.CallFromContext(ctx); ok && !call.Client &&
				(call.Deadline.IsZero() || deadline.Before(call.Deadline)) {
				call.Deadline = deadline
			}
			return next(ctx, req)
		}
	}
}
