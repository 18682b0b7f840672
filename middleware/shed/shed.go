package shed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
)

// Option configures New.
type Option func(*Shedder)

// WithRetryAfter sets the retry hint sent with a shed call (default 1s,
// rounded up to whole seconds; 0 sends none).
func WithRetryAfter(d time.Duration) Option {
	return func(s *Shedder) {
		if d < 0 || d > time.Hour {
			s.fail(fmt.Errorf("retry-after %v: want 0 to 1h", d))
			return
		}
		s.retryAfter = d
	}
}

// WithExempt names endpoints never shed and not counted: "Health" for that
// endpoint of any service, "orders/Health" for one service's.
func WithExempt(endpoints ...string) Option {
	return func(s *Shedder) {
		for _, e := range endpoints {
			if e == "" || strings.HasPrefix(e, "/") || strings.HasSuffix(e, "/") {
				s.fail(fmt.Errorf("exempt endpoint %q: want Endpoint or service/Endpoint", e))
				return
			}
			s.exempt[e] = true
		}
	}
}

// Shedder counts the calls in flight through its Middleware. It is safe
// for concurrent use.
type Shedder struct {
	errs []error // invalid options, reported by the constructor

	max        int64
	retryAfter time.Duration
	exempt     map[string]bool
	inFlight   atomic.Int64
	shed       atomic.Uint64
}

// fail records an invalid option for the constructor to report.
func (s *Shedder) fail(err error) { s.errs = append(s.errs, err) }

// New returns a Shedder admitting at most max calls at once.
func New(max int, opts ...Option) (*Shedder, error) {
	if max < 1 {
		return nil, fmt.Errorf("shed: max in flight %d: want at least 1", max)
	}
	s := &Shedder{max: int64(max), retryAfter: time.Second, exempt: map[string]bool{}}
	for _, o := range opts {
		if o == nil {
			continue
		}
		o(s)
	}
	if err := errors.Join(s.errs...); err != nil {
		return nil, fmt.Errorf("shed: %w", err)
	}
	return s, nil
}

// InFlight returns the calls running now (exempt ones not counted).
func (s *Shedder) InFlight() int { return int(s.inFlight.Load()) }

// Shed returns how many calls were rejected so far.
func (s *Shedder) Shed() uint64 { return s.shed.Load() }

// Middleware returns middleware that admits a call while fewer than max
// calls are in flight across all handlers it wraps, and otherwise fails it
// at once with errs.ResourceExhausted and the retry hint.
func (s *Shedder) Middleware() middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			call, _ := transport.CallFromContext(ctx)
			if call != nil && len(s.exempt) > 0 &&
				(s.exempt[call.Endpoint] || s.exempt[call.Service+"/"+call.Endpoint]) {
				return next(ctx, req)
			}
			if s.inFlight.Add(1) > s.max {
				s.inFlight.Add(-1)
				s.shed.Add(1)
				if s.retryAfter > 0 && call != nil && !call.Client && call.Reply != nil {
					call.Reply.Set(middleware.RetryAfterKey, strconv.FormatInt(int64(math.Ceil(s.retryAfter.Seconds())), 10))
				}
				return nil, errs.Newf(errs.ResourceExhausted, "server overloaded: %d calls in flight", s.max)
			}
			defer s.inFlight.Add(-1)
			return next(ctx, req)
		}
	}
}
