package registry

import (
	"context"
	"sync"
)

// Feed is the state a registry's Watcher shares between what follows the
// source (a goroutine on a watch, a poll loop) and the Watcher's Next. The
// source calls Publish with each complete set of instances, Report with
// each failure the watch survives and Fail with one that ends it; Next
// returns them with the semantics of Watcher.Next; Close stops it. A
// watcher is then a Feed and what follows the source:
//
//	func (w *watcher) Next(ctx context.Context) ([]registry.Instance, error) {
//		return w.feed.Next(ctx)
//	}
//
//	func (w *watcher) Stop() error {
//		w.feed.Close() // Next returns ErrWatcherStopped; run, which
//		<-w.done       // selects on w.feed.Done(), returns
//		return nil
//	}
//
// A Feed returns errors as it is given them, so a registry wraps them first
// with its code and its message prefix.
//
// The zero value is ready to use. A Feed must not be copied after first
// use. Its methods are safe for concurrent use; calls of Next are
// serialised.
type Feed struct {
	mu      sync.Mutex // guards the fields below up to nextMu, shared by the source and Next
	cur     []Instance
	ready   bool          // cur holds a published set
	err     error         // the latest failure reported
	errGen  uint64        // counts failures reported, so that Next returns each once
	failed  error         // the failure that ended the watch
	stopped bool          // Close was called
	changed chan struct{} // one slot: something for Next may have changed
	done    chan struct{} // closed by Close

	nextMu  sync.Mutex // serialises Next and guards the three below
	last    []Instance // the set Next last returned
	started bool       // Next has returned a set
	seenErr uint64     // errGen when Next last looked
}

// Publish makes set the current set of instances: a complete one, sorted
// as the registry hands its sets out. The Feed keeps set itself, not a
// copy, and Next returns copies of it, so the caller must not change it
// afterwards: a new set is a new slice. Until the first Publish, Next has
// no set to return.
func (f *Feed) Publish(set []Instance) {
	f.mu.Lock()
	f.cur, f.ready = set, true
	f.wake()
	f.mu.Unlock()
}

// Report records a failure that the watch survives, such as a lost
// connection: the next call of Next returns err, once, before any set; the
// caller keeps its last known set meanwhile. Of failures reported between
// two calls of Next, the later returns only the latest. A nil err is
// ignored.
func (f *Feed) Report(err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	f.err = err
	f.errGen++
	f.wake()
	f.mu.Unlock()
}

// Fail records a failure that ends the watch, such as a closed
// connection: every later call of Next returns err (until Close, after
// which they return ErrWatcherStopped). A nil err is ignored.
func (f *Feed) Fail(err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	f.failed = err
	f.wake()
	f.mu.Unlock()
}

// Close stops the feed: Next returns ErrWatcherStopped from then on,
// including a call blocked in another goroutine, and the channel Done
// returns is closed. Calls after the first do nothing.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.init()
	f.stopped = true
	close(f.done)
}

// Done returns a channel that Close closes, for the source to stop on.
func (f *Feed) Done() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.init()
	return f.done
}

// Next is Watcher.Next over what the source published. It returns
// ErrWatcherStopped after Close; the error given to Fail after Fail; a
// failure reported since its last call, once; and otherwise the current
// set, on its first call as soon as one is published and then as soon as
// it differs (Equal) from the one it last returned. It waits meanwhile,
// and returns ctx.Err() when ctx ends first. The set it returns is a copy
// (Clone) that the caller may change.
func (f *Feed) Next(ctx context.Context) ([]Instance, error) {
	f.nextMu.Lock()
	defer f.nextMu.Unlock()
	for {
		f.mu.Lock()
		f.init()
		cur, ready, err, gen, failed, stopped := f.cur, f.ready, f.err, f.errGen, f.failed, f.stopped
		changed, done := f.changed, f.done
		f.mu.Unlock()
		switch {
		case stopped:
			return nil, ErrWatcherStopped
		case failed != nil:
			return nil, failed
		case gen != f.seenErr:
			f.seenErr = gen
			return nil, err
		case ready && (!f.started || !Equal(cur, f.last)):
			f.last, f.started = cur, true
			return Clone(cur), nil
		}
		select {
		case <-changed:
		case <-done:
			return nil, ErrWatcherStopped
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// init makes the channels on first use; f.mu is held.
func (f *Feed) init() {
	if f.done == nil {
		f.changed, f.done = make(chan struct{}, 1), make(chan struct{})
	}
}

// wake tells a Next that may be waiting to look again, without blocking:
// a wake-up already pending covers this change too. f.mu is held.
func (f *Feed) wake() {
	f.init()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}
