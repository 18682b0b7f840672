package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// failing returns a handler failing with errs[i] on attempt i+1 (the last
// one repeats; nil succeeds), and a counter of its calls.
func failing(list ...error) (middleware.Handler, *int) {
	n := new(int)
	return func(ctx context.Context, req any) (any, error) {
		i := min(*n, len(list)-1)
		*n++
		if list[i] != nil {
			return nil, list[i]
		}
		return "ok", nil
	}, n
}

func TestRetryDecisions(t *testing.T) {
	dial := errs.Newf(errs.Unavailable, "calling: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})
	reset := errs.Newf(errs.Unavailable, "calling: %w", io.ErrUnexpectedEOF)
	tests := []struct {
		name       string
		idempotent bool
		err        error
		want       int // attempts
	}{
		{"unavailable from server", false, errs.New(errs.Unavailable, "draining"), 5},
		{"connection refused", false, dial, 5},
		{"reset after sending, not idempotent", false, reset, 1},
		{"reset after sending, idempotent", true, reset, 5},
		{"marked maybe processed", false, errs.Newf(errs.Unavailable, "x: %w", middleware.ErrMaybeProcessed), 1},
		{"grpc read failure", false, errs.New(errs.Unavailable, "error reading from server: EOF"), 1},
		{"deadline exceeded, not idempotent", false, errs.New(errs.DeadlineExceeded, "slow"), 1},
		{"deadline exceeded, idempotent", true, errs.New(errs.DeadlineExceeded, "slow"), 5},
		{"internal, idempotent", true, errs.New(errs.Internal, "oops"), 5},
		{"internal, not idempotent", false, errs.New(errs.Internal, "oops"), 1},
		{"resource exhausted without push-back", true, errs.New(errs.ResourceExhausted, "too big"), 1},
		{"invalid argument", true, errs.New(errs.InvalidArgument, "bad"), 1},
		{"plain error", false, fmt.Errorf("boom"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n := failing(tt.err)
			p := middleware.RetryPolicy{Idempotent: tt.idempotent, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
				Budget: middleware.NewRetryBudget(1, 1000)}
			_, err := middleware.Retry(p)(h)(context.Background(), nil)
			if err == nil || *n != tt.want {
				t.Errorf("Retry(%v) = %d attempts, err %v, want %d attempts and an error", tt.err, *n, err, tt.want)
			}
		})
	}
}

func TestRetrySucceedsAndRecordsAttempts(t *testing.T) {
	var seen []int
	h := func(ctx context.Context, _ any) (any, error) {
		a, ok := middleware.AttemptFromContext(ctx)
		if !ok {
			t.Fatal("AttemptFromContext() = false, want the attempt")
		}
		seen = append(seen, a.Number())
		if a.Tried("x") != (a.Number() > 1) {
			t.Errorf("Tried(x) on attempt %d = %v", a.Number(), a.Tried("x"))
		}
		a.MarkTried("x")
		if a.Number() < 3 {
			return nil, errs.New(errs.Unavailable, "again")
		}
		return "ok", nil
	}
	var hook []int
	p := middleware.RetryPolicy{BaseBackoff: time.Millisecond, OnAttempt: func(_ context.Context, n int, _ error) { hook = append(hook, n) }}
	resp, err := middleware.Retry(p)(h)(context.Background(), nil)
	if err != nil || resp != "ok" || fmt.Sprint(seen) != "[1 2 3]" || fmt.Sprint(hook) != "[1 2 3]" {
		t.Errorf("Retry() = %v, %v, attempts %v, hook %v, want ok after [1 2 3]", resp, err, seen, hook)
	}
}

func TestRetryStaysInsideDeadline(t *testing.T) {
	h, n := failing(errs.New(errs.Unavailable, "down"))
	// A back-off of up to an hour cannot fit in the 10s left: Retry returns
	// the attempt's error instead of sleeping into the deadline, so the
	// context is still live when it returns.
	p := middleware.RetryPolicy{BaseBackoff: time.Hour, MaxBackoff: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := middleware.Retry(p)(h)(ctx, nil)
	if ctx.Err() != nil || errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("Retry() = %v after %d attempts (context %v), want the attempt's error before the deadline", err, *n, ctx.Err())
	}
}

func TestRetryAttemptTimeout(t *testing.T) {
	// The first attempt hangs until its context ends, as a call to a
	// server that died after taking the request does; the second answers.
	hang := func(ctx context.Context, _ any) (any, error) {
		if a, _ := middleware.AttemptFromContext(ctx); a.Number() == 1 {
			<-ctx.Done()
			return nil, errs.FromError(ctx.Err())
		}
		if _, ok := ctx.Deadline(); !ok {
			return nil, errors.New("attempt without a deadline")
		}
		return "ok", nil
	}
	for _, idem := range []bool{true, false} {
		p := middleware.RetryPolicy{Idempotent: idem, AttemptTimeout: 50 * time.Millisecond, BaseBackoff: time.Millisecond}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		began := time.Now()
		resp, err := middleware.Retry(p)(hang)(ctx, nil)
		el := time.Since(began)
		cancel()
		switch {
		case idem && (err != nil || resp != "ok"):
			t.Errorf("idempotent: Retry() = %v, %v after %v, want ok on the second attempt", resp, err, el)
		case !idem && errs.CodeOf(err) != errs.DeadlineExceeded:
			t.Errorf("not idempotent: Retry() = %v, %v after %v, want deadline_exceeded without a retry", resp, err, el)
		case el < 50*time.Millisecond:
			t.Errorf("idempotent=%v: took %v, want at least the 50ms attempt timeout", idem, el)
		}
	}
}

func TestRetryPushBack(t *testing.T) {
	tests := []struct {
		key, value string
		code       errs.Code
		want       int
		minWait    time.Duration
	}{
		{"Retry-After", "0", errs.Unavailable, 2, 0},
		{"grpc-retry-pushback-ms", "120", errs.Unavailable, 2, 100 * time.Millisecond},
		{"grpc-retry-pushback-ms", "120", errs.ResourceExhausted, 2, 100 * time.Millisecond},
		{"grpc-retry-pushback-ms", "-5", errs.Unavailable, 1, 0},
		{"Retry-After", "later", errs.Unavailable, 1, 0},
		{"Retry-After", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), errs.Unavailable, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value+"/"+tt.code.String(), func(t *testing.T) {
			call := &transport.Call{Client: true}
			n := 0
			h := func(ctx context.Context, _ any) (any, error) {
				n++
				if n > 1 {
					return "ok", nil
				}
				call.Reply = transport.Pairs(tt.key, tt.value)
				return nil, errs.New(tt.code, "busy")
			}
			began := time.Now()
			_, _ = middleware.Retry(middleware.RetryPolicy{})(h)(transport.NewCallContext(context.Background(), call), nil)
			if el := time.Since(began); n != tt.want || el < tt.minWait {
				t.Errorf("attempts = %d after %v, want %d after ≥ %v", n, el, tt.want, tt.minWait)
			}
		})
	}
}

func TestRetryBudget(t *testing.T) {
	b := middleware.NewRetryBudget(0.2, 0) // floor 0: burst of 1 from the limiter
	for range 50 {
		b.Deposit()
	}
	got := 0
	for range 100 {
		if b.Withdraw() {
			got++
		}
	}
	if got < 10 || got > 11 {
		t.Errorf("Withdraw() allowed %d retries after 50 calls at 20%%, want 10 (+1 floor burst)", got)
	}
}

func TestBulkhead(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	h := middleware.Bulkhead(2)(func(ctx context.Context, _ any) (any, error) {
		entered <- struct{}{}
		<-release
		return "ok", nil
	})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h(context.Background(), nil); err != nil {
				t.Errorf("call within the limit = %v", err)
			}
		}()
	}
	<-entered
	<-entered
	_, err := h(context.Background(), nil)
	if errs.CodeOf(err) != errs.ResourceExhausted || !strings.Contains(err.Error(), "bulkhead full: 2 calls in flight") {
		t.Errorf("third call = %v, want resource_exhausted: bulkhead full: 2 calls in flight", err)
	}
	close(release)
	wg.Wait()
	if _, err := h(context.Background(), nil); err != nil {
		t.Errorf("call after the others finished = %v, want nil", err)
	}
	if _, err := middleware.Bulkhead(0)(func(context.Context, any) (any, error) { return nil, nil })(context.Background(), nil); err != nil {
		t.Errorf("Bulkhead(0) call = %v, want no limit", err)
	}
}
