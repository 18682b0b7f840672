package callctx

import (
	"context"
	"errors"
	"testing"
	"time"
)

// wait bounds waits on contexts that must end soon.
const wait = 10 * time.Second

func TestCtxDeadlineWithoutDone(t *testing.T) {
	c := &Ctx{parent: t.Context(), deadline: time.Now().Add(-time.Millisecond)}
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() past the deadline = %v, want DeadlineExceeded", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatalf("Done() past the deadline is open, want closed")
	}
	if got := context.Cause(c); !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("context.Cause() = %v, want DeadlineExceeded", got)
	}
}

func TestCtxDoneAtDeadline(t *testing.T) {
	c := &Ctx{parent: t.Context(), deadline: time.Now().Add(20 * time.Millisecond)}
	if err := c.Err(); err != nil {
		t.Fatalf("Err() before the deadline = %v, want nil", err)
	}
	select {
	case <-c.Done():
	case <-time.After(wait):
		t.Fatalf("Done() not closed after the deadline")
	}
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err() = %v, want DeadlineExceeded", err)
	}
	c.Release()
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err() after release = %v, want it to stay DeadlineExceeded", err)
	}
}

func TestCtxParentCancel(t *testing.T) {
	parent, cancel := context.WithCancel(t.Context())
	c := &Ctx{parent: parent, deadline: time.Now().Add(time.Hour)}
	done := c.Done()
	cancel()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatalf("Done() not closed after the parent was cancelled")
	}
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() = %v, want Canceled", err)
	}
}

func TestCtxDerived(t *testing.T) {
	type key struct{}
	parent := context.WithValue(t.Context(), key{}, "v")
	c := &Ctx{parent: parent, deadline: time.Now().Add(30 * time.Millisecond)}
	child, cancel := context.WithCancel(c)
	defer cancel()
	if got := child.Value(key{}); got != "v" {
		t.Errorf("child.Value() = %v, want v", got)
	}
	if d, ok := child.Deadline(); !ok || !d.Equal(c.deadline) {
		t.Errorf("child.Deadline() = %v, %v, want %v", d, ok, c.deadline)
	}
	select {
	case <-child.Done():
	case <-time.After(wait):
		t.Fatalf("derived context not cancelled at the parent's deadline")
	}
	if err := child.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("child.Err() = %v, want DeadlineExceeded", err)
	}

	// A context derived after the end is cancelled at once.
	late, cancelLate := context.WithCancel(c)
	defer cancelLate()
	select {
	case <-late.Done():
	case <-time.After(wait):
		t.Fatalf("context derived from an ended callCtx is not cancelled")
	}
}

func TestCtxRelease(t *testing.T) {
	c := &Ctx{parent: t.Context(), deadline: time.Now().Add(time.Hour)}
	child, cancel := context.WithCancel(c)
	defer cancel()
	c.Release()
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() after release = %v, want Canceled", err)
	}
	select {
	case <-child.Done():
	case <-time.After(wait):
		t.Fatalf("derived context not cancelled by release")
	}
}

func TestCtxAfterFuncStop(t *testing.T) {
	c := &Ctx{parent: t.Context(), deadline: time.Now().Add(time.Hour)}
	called := make(chan struct{}, 1)
	stop := c.AfterFunc(func() { called <- struct{}{} })
	if !stop() {
		t.Errorf("stop() = false, want true before the context ends")
	}
	if stop() {
		t.Errorf("second stop() = true, want false")
	}
	c.Release()
	select {
	case <-called:
		t.Errorf("stopped AfterFunc ran")
	case <-time.After(20 * time.Millisecond):
	}
}
