package broker_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/ferry-go/ferry/broker"
)

type fakeSub struct {
	name    string
	drained int
}

func (f *fakeSub) Topic() string                   { return f.name }
func (f *fakeSub) Drain(ctx context.Context) error { f.drained++; return nil }

func TestSubscriptions(t *testing.T) {
	var set broker.Subscriptions[*fakeSub]
	a, b, c := &fakeSub{name: "a"}, &fakeSub{name: "b"}, &fakeSub{name: "c"}
	ctx := context.Background()
	for _, s := range []*fakeSub{a, b} {
		if err := set.Add(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	set.Remove(b)
	if set.Closed() {
		t.Fatal("closed before Close")
	}
	open, first := set.Close()
	if !first || !slices.Equal(open, []*fakeSub{a}) {
		t.Errorf("Close = %v, %v; want [a], true", open, first)
	}
	if !set.Closed() {
		t.Error("not closed after Close")
	}
	if _, first := set.Close(); first {
		t.Error("second Close says first")
	}
	// A subscription set up while Close ran is drained and refused.
	if err := set.Add(ctx, c); !errors.Is(err, broker.ErrClosed) || c.drained != 1 {
		t.Errorf("Add after Close = %v (drained %d), want ErrClosed and one drain", err, c.drained)
	}
}

func TestAwaitHandlers(t *testing.T) {
	loopDone := make(chan struct{})
	var workers sync.WaitGroup
	workers.Add(1)
	release := make(chan struct{})
	go func() { <-release; workers.Done() }()

	// A handler still running when ctx ends: not finished; done closes
	// once it returns.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	close(loopDone)
	done, finished := broker.AwaitHandlers(ctx, loopDone, &workers)
	if finished {
		t.Fatal("finished with a handler still running")
	}
	close(release)
	<-done

	// Everything returned: finished.
	if _, finished := broker.AwaitHandlers(context.Background(), loopDone, &workers); !finished {
		t.Error("not finished with the loop ended and no handler running")
	}
}

// Open refuses after Close without setting up, passes set-up errors on,
// and drains a subscription whose set-up finished after Close.
func TestSubscriptionsOpen(t *testing.T) {
	ctx := context.Background()
	var set broker.Subscriptions[*fakeSub]
	a, err := set.Open(ctx, func() (*fakeSub, error) { return &fakeSub{name: "a"}, nil })
	if err != nil || a == nil || a.name != "a" {
		t.Fatalf("Open = %v, %v", a, err)
	}
	boom := errors.New("boom")
	if s, err := set.Open(ctx, func() (*fakeSub, error) { return nil, boom }); s != nil || !errors.Is(err, boom) {
		t.Errorf("Open(failing set-up) = %v, %v; want nil, boom", s, err)
	}
	late := &fakeSub{name: "late"}
	s, err := set.Open(ctx, func() (*fakeSub, error) {
		set.Close() // Close while this one is being set up
		return late, nil
	})
	if s != nil || !errors.Is(err, broker.ErrClosed) || late.drained != 1 {
		t.Errorf("Open(closed during set-up) = %v, %v, drained %d; want nil, ErrClosed, drained once", s, err, late.drained)
	}
	called := false
	if s, err := set.Open(ctx, func() (*fakeSub, error) { called = true; return &fakeSub{}, nil }); s != nil || !errors.Is(err, broker.ErrClosed) || called {
		t.Errorf("Open after Close = %v, %v (set-up called: %v); want nil, ErrClosed, not called", s, err, called)
	}
}
