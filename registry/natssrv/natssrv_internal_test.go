package natssrv

import (
	"testing"

	"github.com/ferry-go/ferry/ferrytest"
)

// The watchers of a registry share one poll loop, which runs only while
// one of them does.
func TestOnePollLoop(t *testing.T) {
	s := ferrytest.NATS(t)
	r, err := New(ferrytest.Connect(t, s.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ferrytest.Context(t)
	a, err := r.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Watch(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	p := r.poller
	if p == nil || a.(*watcher).p != p || b.(*watcher).p != p {
		t.Fatalf("watchers' poll loops = %p, %p; registry's %p, want one shared", a.(*watcher).p, b.(*watcher).p, p)
	}
	_ = a.Stop()
	if r.poller != p {
		t.Errorf("poll loop after the first Stop = %p, want %p still running", r.poller, p)
	}
	_ = b.Stop()
	_ = b.Stop()
	if r.poller != nil || r.watchers != 0 {
		t.Errorf("after the last Stop: poll loop %p, %d watchers; want none", r.poller, r.watchers)
	}
	select {
	case <-p.done:
	default:
		t.Errorf("the poll loop still runs after the last Stop")
	}
}
