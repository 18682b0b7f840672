package ferrytest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	var n atomic.Int64
	if err := poll(context.Background(), time.Hour, func() bool { return n.Add(1) == 5 }); err != nil || n.Load() != 5 {
		t.Errorf("poll until the 5th call = %v after %d calls", err, n.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := poll(ctx, time.Hour, func() bool { return false }); err == nil {
		t.Error("poll with a cancelled context = nil, want an error")
	}
	if err := poll(context.Background(), time.Nanosecond, func() bool { return false }); err == nil {
		t.Error("poll past its bound = nil, want an error")
	}
}

func TestContextFollowsTheTestDeadline(t *testing.T) {
	ctx := Context(t)
	d, hasCtx := ctx.Deadline()
	td, hasT := t.Deadline()
	switch {
	case hasT != hasCtx:
		t.Fatalf("Context deadline %v (%v), test deadline %v (%v)", d, hasCtx, td, hasT)
	case hasT && !d.Before(td):
		t.Errorf("Context deadline %v not before the test's %v", d, td)
	}
	Eventually(t, "a condition that holds", func() bool { return true })
}
