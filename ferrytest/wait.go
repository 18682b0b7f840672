package ferrytest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// Tests must pass on a busy machine: a shared 2-core CI box, the race
// detector, other packages' tests at the same time. So a test never asserts
// that something happened within a wall-clock figure. It waits for an
// event or a condition with a generous bound (Eventually, Context), and it
// reports figures (t.Log) instead of asserting them; speed targets live in
// benchmarks.

// WaitBound is how long Eventually waits before it fails: far longer than
// anything should take, so that only a real failure reaches it.
const WaitBound = 60 * time.Second

// reserve is the part of a test's deadline that Context keeps back, so a
// test that runs out of time still reports what it was waiting for (and its
// cleanups run) before go test kills the binary.
const reserve = 30 * time.Second

// Context returns a context that ends when the test does, or shortly before
// the deadline go test -timeout sets for the test binary — never at a fixed
// figure of its own. Use it for whole-test budgets (a build, a load run)
// instead of context.WithTimeout(…, 3*time.Minute).
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if end, ok := End(t); ok {
		ctx, cancel = context.WithDeadline(context.Background(), end)
	}
	t.Cleanup(cancel)
	return ctx
}

// End returns when Context(t) ends: the test binary's deadline less a
// reserve of 30s (half the time left, if less than a minute is), or false
// when go test set no deadline (-timeout 0).
func End(t testing.TB) (time.Time, bool) {
	dt, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return time.Time{}, false
	}
	d, ok := dt.Deadline()
	if !ok {
		return time.Time{}, false
	}
	if left := time.Until(d); left < 2*reserve {
		return d.Add(-left / 2), true
	}
	return d.Add(-reserve), true
}

// Eventually calls cond until it returns true, failing the test if it has
// not within WaitBound (or before the test's deadline). what says what was
// awaited, for the failure message. cond is polled with a short back-off,
// so it should be cheap; it runs on the test goroutine and may call
// t.Fatal.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if err := poll(Context(t), WaitBound, cond); err != nil {
		t.Fatalf("ferrytest: %s: %v", what, err)
	}
}

// Poll is Eventually for a caller that handles the failure itself (in a
// goroutine, or to report more before failing): it calls cond until it
// returns true, ctx ends or WaitBound passes, and says which.
func Poll(ctx context.Context, cond func() bool) error { return poll(ctx, WaitBound, cond) }

// poll calls cond until it returns true, bound passes or ctx ends.
func poll(ctx context.Context, bound time.Duration, cond func() bool) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	wait := time.Millisecond
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("still not true after %v", time.Since(start).Round(time.Millisecond))
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
	return nil
}

// Settled waits until the counter n has stopped growing — unchanged and
// above zero over 10 looks 50ms apart — or WaitBound passes, and returns
// it: how far a writer got before flow control stopped it, say. A writer
// slow to get going only makes the figure lower, so a test bounding it
// from above never fails because the machine is busy.
func Settled(n *atomic.Int64) int64 {
	deadline := time.Now().Add(WaitBound)
	last, same := n.Load(), 0
	for same < 10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if cur := n.Load(); cur == last && cur > 0 {
			same++
		} else {
			last, same = cur, 0
		}
	}
	return last
}
