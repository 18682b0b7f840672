package middleware

import (
	"context"
	"sync/atomic"

	"github.com/ferry-go/ferry/errs"
)

// Bulkhead limits the calls in flight through each handler it wraps to max;
// a call beyond that fails at once with ResourceExhausted ("bulkhead full:
// N calls in flight") instead of queueing. Wrapping one endpoint's handler
// makes the limit per endpoint. A max of 0 or less means no limit.
func Bulkhead(max int) Middleware {
	return func(next Handler) Handler {
		if max <= 0 {
			return next
		}
		var inFlight atomic.Int64
		limit := int64(max)
		return func(ctx context.Context, req any) (any, error) {
			if inFlight.Add(1) > limit {
				inFlight.Add(-1)
				return nil, errs.Newf(errs.ResourceExhausted, "bulkhead full: %d calls in flight", max)
			}
			defer inFlight.Add(-1)
			return next(ctx, req)
		}
	}
}
