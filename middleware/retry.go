package middleware

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
	"golang.org/x/time/rate"
)

// Retry defaults and limits.
const (
	// MaxAttempts caps RetryPolicy.MaxAttempts; it is also the default.
	MaxAttempts = 5
	// DefaultBaseBackoff is the default RetryPolicy.BaseBackoff.
	DefaultBaseBackoff = 25 * time.Millisecond
	// DefaultMaxBackoff is the default RetryPolicy.MaxBackoff.
	DefaultMaxBackoff = time.Second
)

// Push-back metadata keys read by Retry from an attempt's reply metadata.
const (
	// RetryAfterKey is HTTP's Retry-After: whole seconds or an HTTP date.
	RetryAfterKey = "retry-after"
	// GRPCPushbackKey is gRPC's retry push-back in milliseconds (gRFC A6).
	GRPCPushbackKey = "grpc-retry-pushback-ms"
)

// ErrMaybeProcessed marks a failure after which the server may have
// processed the request (the connection broke after the request was sent).
// Retry does not retry such a failure unless the policy is idempotent. A
// transport client signals it by putting the sentinel in the error's chain;
// Retry also recognises the built-in transports' own errors (see
// RetryPolicy).
var ErrMaybeProcessed = errors.New("request may have been processed")

// RetryPolicy configures Retry. The zero value is usable: up to 5 attempts,
// 25ms base back-off with full jitter up to 1s, retrying only failures that
// mean the request was not processed, with a budget of its own.
//
// What is retried:
//   - Unavailable, when the request was not processed: the server said so
//     (a status it sent), or the connection could not be made (connection
//     refused, NATS "no responders"). Unavailable from a connection that
//     broke after the request went out (reset, EOF, gRPC "error reading from
//     server"/"transport is closing", or any error carrying
//     ErrMaybeProcessed) is retried only when Idempotent.
//   - ResourceExhausted, only when the reply carries server push-back: the
//     server asked to be called again. Without it the code may mean an
//     oversized payload or a full bulkhead, which a retry does not fix.
//   - DeadlineExceeded (while the caller's own deadline has not passed),
//     Internal, Unknown and Aborted, only when Idempotent.
//
// Server push-back in the failed attempt's reply metadata (HTTP
// Retry-After, gRPC grpc-retry-pushback-ms) replaces the back-off; an
// invalid or negative push-back means "do not retry".
type RetryPolicy struct {
	// MaxAttempts is the number of attempts including the first (default
	// and maximum 5; 1 disables retries).
	MaxAttempts int
	// BaseBackoff and MaxBackoff bound the back-off before retry n, drawn
	// uniformly from [0, min(MaxBackoff, BaseBackoff·2^(n-1))) (defaults
	// 25ms and 1s).
	BaseBackoff, MaxBackoff time.Duration
	// Idempotent marks endpoints that are safe to call twice. The handler
	// under Retry can also say so for one call (Attempt.SetIdempotent).
	Idempotent bool
	// AttemptTimeout, if positive, bounds each attempt (within the
	// caller's deadline), like Envoy's per-try timeout. An attempt that
	// runs out of it fails with DeadlineExceeded, which is retried only
	// when Idempotent. It is what recovers a call whose request reached a
	// server that then died without a word — over NATS the reply simply
	// never comes — before the caller's whole deadline is spent.
	AttemptTimeout time.Duration
	// Budget limits retries across every call sharing it. Nil gives each
	// Retry middleware a budget of its own (NewRetryBudget(0.2, 10)).
	Budget *RetryBudget
	// OnAttempt, if set, is called after every attempt with its number
	// (from 1) and error, e.g. to count attempts per call.
	OnAttempt func(ctx context.Context, attempt int, err error)
}

// RetryBudget limits retries to a fraction of calls, so that a brown-out
// does not become a retry storm: every call deposits Ratio of a token,
// every retry withdraws one; when the balance is spent a floor of
// MinPerSecond retries per second still passes. The balance is capped at
// 100 tokens so that a quiet period does not bank a storm. It is safe for
// concurrent use; share one per client.
type RetryBudget struct {
	milli   atomic.Int64 // balance in thousandths of a token
	deposit int64
	floor   *rate.Limiter
}

// budgetCap is the most a budget banks, in thousandths of a token.
const budgetCap = 100 * 1000

// NewRetryBudget returns a budget allowing retries of about ratio of calls
// (0.2 is 20%; values outside [0, 1] are clamped) plus minPerSecond
// retries per second (negative counts as 0).
func NewRetryBudget(ratio, minPerSecond float64) *RetryBudget {
	ratio = min(max(ratio, 0), 1)
	minPerSecond = max(minPerSecond, 0)
	return &RetryBudget{
		deposit: int64(ratio * 1000),
		floor:   rate.NewLimiter(rate.Limit(minPerSecond), max(1, int(minPerSecond))),
	}
}

// Deposit records one call.
func (b *RetryBudget) Deposit() {
	if b.milli.Add(b.deposit) > budgetCap {
		b.milli.Store(budgetCap) // approximate under races; only bounds banking
	}
}

// Withdraw takes one retry from the budget and reports whether it may go.
func (b *RetryBudget) Withdraw() bool {
	for {
		v := b.milli.Load()
		if v < 1000 {
			return b.floor.Allow()
		}
		if b.milli.CompareAndSwap(v, v-1000) {
			return true
		}
	}
}

// Attempt records the attempts of one call under Retry. The handler at the
// end of the chain reads it with AttemptFromContext, e.g. to send a retry
// to an instance not tried yet. Attempts of a call are sequential, so it
// needs no locking.
type Attempt struct {
	n          int
	tried      []string
	idempotent bool
}

// SetIdempotent tells Retry that the called endpoint is idempotent, as the
// handler at the end of the chain learnt (client.Client reads it from the
// registry, where a service publishes its endpoints marked
// server.WithIdempotent): failures are then retried as under a policy with
// Idempotent set.
func (a *Attempt) SetIdempotent() { a.idempotent = true }

// Number returns the current attempt's number, from 1.
func (a *Attempt) Number() int { return a.n }

// Tried reports whether id was marked by an earlier attempt of the call.
func (a *Attempt) Tried(id string) bool {
	for _, t := range a.tried {
		if t == id {
			return true
		}
	}
	return false
}

// MarkTried records that the current attempt went to id.
func (a *Attempt) MarkTried(id string) { a.tried = append(a.tried, id) }

type attemptKey struct{}

// AttemptFromContext returns the call's Attempt when Retry runs outside
// the handler.
func AttemptFromContext(ctx context.Context) (*Attempt, bool) {
	a, ok := ctx.Value(attemptKey{}).(*Attempt)
	return a, ok
}

// Retry retries failed calls as p says, never past the caller's deadline:
// it stops when the time left cannot fit the back-off plus another attempt
// as long as the last one. Back-off sleeps end early when ctx ends. The
// last attempt's error is returned.
func Retry(p RetryPolicy) Middleware {
	if p.MaxAttempts <= 0 || p.MaxAttempts > MaxAttempts {
		p.MaxAttempts = MaxAttempts
	}
	if p.BaseBackoff <= 0 {
		p.BaseBackoff = DefaultBaseBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	p.MaxBackoff = max(p.MaxBackoff, p.BaseBackoff)
	if p.Budget == nil {
		p.Budget = NewRetryBudget(0.2, 10)
	}
	return func(next Handler) Handler {
		return func(ctx context.Context, req any) (any, error) {
			p.Budget.Deposit()
			a := &Attempt{}
			ctx = context.WithValue(ctx, attemptKey{}, a)
			for {
				a.n++
				start := time.Now()
				resp, err := p.attempt(ctx, next, req)
				if p.OnAttempt != nil {
					p.OnAttempt(ctx, a.n, err)
				}
				if err == nil || a.n >= p.MaxAttempts || ctx.Err() != nil || streamOpened(ctx) {
					return resp, err
				}
				delay, ok := p.delay(ctx, err, a.n, p.Idempotent || a.idempotent)
				if !ok {
					return resp, err
				}
				if dl, has := ctx.Deadline(); has && time.Until(dl) < delay+time.Since(start) {
					return resp, err
				}
				if !p.Budget.Withdraw() {
					return resp, err
				}
				if !sleep(ctx, delay) {
					return resp, err
				}
			}
		}
	}
}

// attempt runs one attempt under the policy's attempt timeout, if any.
func (p *RetryPolicy) attempt(ctx context.Context, next Handler, req any) (any, error) {
	if p.AttemptTimeout <= 0 {
		return next(ctx, req)
	}
	actx, cancel := context.WithTimeout(ctx, p.AttemptTimeout)
	defer cancel()
	return next(actx, req)
}

// delay decides whether err after attempt n is retried, and after how long.
func (p *RetryPolicy) delay(ctx context.Context, err error, n int, idempotent bool) (time.Duration, bool) {
	pushback, present, valid := pushBack(ctx)
	if present && !valid {
		return 0, false
	}
	switch errs.CodeOf(err) {
	case errs.Unavailable:
		if !idempotent && maybeProcessed(err) {
			return 0, false
		}
	case errs.ResourceExhausted:
		if !present {
			return 0, false
		}
	case errs.DeadlineExceeded, errs.Internal, errs.Unknown, errs.Aborted:
		if !idempotent {
			return 0, false
		}
	default:
		return 0, false
	}
	if present {
		return pushback, true
	}
	ceil := p.BaseBackoff << min(n-1, 30)
	if ceil <= 0 || ceil > p.MaxBackoff {
		ceil = p.MaxBackoff
	}
	return rand.N(ceil), true
}

// pushBack reads server push-back from the reply metadata of the attempt
// that just failed.
func pushBack(ctx context.Context) (d time.Duration, present, valid bool) {
	c, ok := transport.CallFromContext(ctx)
	if !ok || c.Reply == nil {
		return 0, false, false
	}
	if v := c.Reply.Get(GRPCPushbackKey); v != "" {
		ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || ms < 0 {
			return 0, true, false
		}
		return time.Duration(ms) * time.Millisecond, true, true
	}
	if v := c.Reply.Get(RetryAfterKey); v != "" {
		v = strings.TrimSpace(v)
		if s, err := strconv.ParseInt(v, 10, 64); err == nil {
			if s < 0 {
				return 0, true, false
			}
			return time.Duration(min(s, 1<<20)) * time.Second, true, true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(time.Until(t), 0), true, true
		}
		return 0, true, false
	}
	return 0, false, false
}

// maybeProcessed reports whether an Unavailable err may have come after
// the server received the request.
func maybeProcessed(err error) bool {
	if errors.Is(err, ErrMaybeProcessed) {
		return true
	}
	var e *errs.Error
	if !errors.As(err, &e) {
		return true // not from a transport we know: assume the worst
	}
	cause := e.Unwrap()
	if cause == nil {
		// A status the server sent, NATS "no responders", or a gRPC
		// failure, whose cause grpc-go reports only in the message.
		msg := e.Message()
		return strings.Contains(msg, "error reading from server") ||
			strings.Contains(msg, "transport is closing") ||
			strings.Contains(msg, "RST_STREAM")
	}
	var op *net.OpError
	if errors.As(cause, &op) && op.Op == "dial" {
		return false
	}
	return !errors.Is(cause, syscall.ECONNREFUSED)
}

// sleep waits d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// streamOpened reports whether ctx's call is a stream that opened: a
// stream is retried only while opening it failed, never after.
func streamOpened(ctx context.Context) bool {
	c, ok := transport.CallFromContext(ctx)
	return ok && c.StreamKind != transport.Unary && c.Stream != nil
}
