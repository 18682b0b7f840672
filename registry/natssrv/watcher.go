package natssrv

import (
	"context"
	"sync"

	"github.com/ferry-go/ferry/registry"
)

// watcher follows one service ("" for every service) in its registry's
// poll loop; Next waits for a set that differs from the last one it
// returned.
type watcher struct {
	r       *Registry
	p       *poller
	service string
	changed chan struct{} // one slot: something for Next may have changed
	quit    chan struct{} // closed by Stop

	stopOnce sync.Once

	nextMu  sync.Mutex // serialises Next and guards the three below
	last    []registry.Instance
	started bool
	seenErr uint64 // set by poller.add before the watcher is handed out
}

func (w *watcher) Next(ctx context.Context) ([]registry.Instance, error) {
	w.nextMu.Lock()
	defer w.nextMu.Unlock()
	for {
		select {
		case <-w.quit:
			return nil, registry.ErrWatcherStopped
		default:
		}
		p := w.p
		p.mu.Lock()
		cur, ready, err, gen, closed := p.cur, p.ready, p.err, p.errGen, p.closed
		p.mu.Unlock()
		switch {
		case closed != nil:
			return nil, closed
		case gen != w.seenErr:
			w.seenErr = gen
			return nil, err
		case ready:
			set := only(cur, w.service)
			if !w.started || !equal(set, w.last) {
				w.last, w.started = set, true
				return registry.Clone(set), nil
			}
		}
		select {
		case <-w.changed:
		case <-w.quit:
			return nil, registry.ErrWatcherStopped
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Stop ends the watch; the last watcher of a registry stops its poll loop
// (at once: a poll in flight is cancelled).
func (w *watcher) Stop() error {
	w.stopOnce.Do(func() {
		close(w.quit)
		w.r.release(w)
	})
	return nil
}
