package natssrv

import (
	"context"
	"sync"

	"github.com/ferry-go/ferry/registry"
)

// watcher follows one service ("" for every service) in its registry's
// poll loop, which publishes to its feed the part of each set it follows;
// Next waits for a set that differs from the last one it returned.
type watcher struct {
	r       *Registry
	p       *poller
	service string
	feed    registry.Feed // what the poll loop publishes and Next returns; closed by Stop

	stopOnce sync.Once
}

func (w *watcher) Next(ctx context.Context) ([]registry.Instance, error) {
	return w.feed.Next(ctx)
}

// Stop ends the watch; the last watcher of a registry stops its poll loop
// (at once: a poll in flight is cancelled).
func (w *watcher) Stop() error {
	w.stopOnce.Do(func() {
		w.feed.Close()
		w.r.release(w)
	})
	return nil
}
