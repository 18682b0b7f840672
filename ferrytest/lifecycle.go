package ferrytest

import (
	"context"
	"testing"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
)

// Lifecycle is an unstarted transport on a loopback address, for the
// lifecycle cases of Conformance.
type Lifecycle struct {
	Transport server.Transport
	// Dial returns a client of the transport once it started.
	Dial func() transport.Client
}

// confLifecycle checks what a service's lifecycle relies on: Stop before
// Start does nothing; a second Start fails; Stop refuses new calls at once
// while an in-flight call completes; Stop with an expired context cuts a
// held handler off through its context and returns the context's error.
func confLifecycle(t *testing.T, newLifecycle func(testing.TB) Lifecycle) {
	ctx := Context(t)
	newHold := func() (*server.Server, chan struct{}, chan struct{}, chan error) {
		entered, release, ended := make(chan struct{}, 1), make(chan struct{}), make(chan error, 1)
		s := server.New(suiteService, server.WithLogger(quietLogger()))
		server.Handle(s, "Echo", func(_ context.Context, r *Echo) (*Echo, error) { return r, nil })
		server.Handle(s, "Hold", func(ctx context.Context, r *Echo) (*Echo, error) {
			entered <- struct{}{}
			select {
			case <-release:
				return r, nil
			case <-ctx.Done():
				ended <- ctx.Err()
				return nil, ctx.Err()
			}
		})
		return s, entered, release, ended
	}

	t.Run("drain", func(t *testing.T) {
		s, entered, release, _ := newHold()
		lc := newLifecycle(t)
		if err := lc.Transport.Stop(ctx); err != nil {
			t.Errorf("Stop before Start = %v, want nil", err)
		}
		if err := lc.Transport.Start(ctx, s); err != nil {
			t.Fatalf("Start = %v", err)
		}
		if err := lc.Transport.Start(ctx, s); err == nil {
			t.Error("a second Start succeeded, want an error")
		}
		c := lc.Dial()
		defer c.Close()
		var out Echo
		if err := c.Invoke(ctx, suiteService, "Echo", &Echo{Text: "up"}, &out); err != nil {
			t.Fatalf("Echo after Start = %v", err)
		}
		held := make(chan error, 1)
		go func() {
			var out Echo
			err := c.Invoke(ctx, suiteService, "Hold", &Echo{Text: "held"}, &out)
			if err == nil && out.Text != "held" {
				err = errs.Newf(errs.Internal, "reply %q", out.Text)
			}
			held <- err
		}()
		<-entered
		stopped := make(chan error, 1)
		go func() { stopped <- lc.Transport.Stop(ctx) }()
		Eventually(t, "new calls refused once Stop began", func() bool {
			cctx, cancel := context.WithTimeout(ctx, WaitBound/10)
			defer cancel()
			fresh := lc.Dial()
			defer fresh.Close()
			return fresh.Invoke(cctx, suiteService, "Echo", &Echo{}, &Echo{}) != nil
		})
		select {
		case err := <-held:
			t.Fatalf("the held call ended before it was released: %v", err)
		default:
		}
		close(release)
		if err := <-held; err != nil {
			t.Errorf("the call in flight during Stop = %v, want it to complete", err)
		}
		if err := <-stopped; err != nil {
			t.Errorf("Stop = %v, want nil after a clean drain", err)
		}
		if err := lc.Transport.Start(ctx, s); err == nil {
			t.Error("Start after Stop succeeded, want an error: a transport runs once")
		}
	})

	t.Run("drain cut off", func(t *testing.T) {
		s, entered, _, ended := newHold()
		lc := newLifecycle(t)
		if err := lc.Transport.Start(ctx, s); err != nil {
			t.Fatalf("Start = %v", err)
		}
		c := lc.Dial()
		defer c.Close()
		go func() { _ = c.Invoke(ctx, suiteService, "Hold", &Echo{}, &Echo{}) }()
		<-entered
		expired, cancel := context.WithCancel(ctx)
		cancel()
		if err := lc.Transport.Stop(expired); err == nil {
			t.Error("Stop with an expired context while a call is held = nil, want the context's error")
		}
		if err := <-ended; err == nil {
			t.Error("the held handler's context did not end when Stop gave up")
		}
	})
}
