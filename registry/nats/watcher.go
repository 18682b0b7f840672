package nats

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// watcher follows one service (Watch: the keys "<service>.*") or every
// service (WatchAll: every key of the bucket). A goroutine drains the KV watch as
// changes arrive (a KV watch that is not drained stalls its subscription)
// and publishes each complete set; Next waits for a set that differs from
// the last one it returned.
//
// After the connection comes back the goroutine replaces the KV watch: the
// ordered consumer behind it may have missed expiry markers that aged out
// while it was away, a fresh watch does not.
type watcher struct {
	r       *Registry
	pattern string           // the KV key filter
	what    string           // what is watched, for errors: the service, or "every service"
	status  chan nats.Status // connection changes
	done    chan struct{}    // closed when run returns
	feed    registry.Feed    // what run publishes and Next returns; closed by Stop

	stopOnce sync.Once
}

// watch starts a watcher on the keys that match pattern; what names them
// in errors. The first KV watch starts here, so that Watch and WatchAll
// report a registry they cannot reach.
func (r *Registry) watch(ctx context.Context, pattern, what string) (*watcher, error) {
	w := &watcher{
		r:       r,
		pattern: pattern,
		what:    what,
		status:  r.nc.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED),
		done:    make(chan struct{}),
	}
	kw, err := r.kv.Watch(context.WithoutCancel(ctx), pattern)
	if err != nil {
		r.nc.RemoveStatusListener(w.status)
		return nil, failure(ctx, "watch "+what, err)
	}
	// The goroutine outlives ctx; it keeps ctx's values for its requests.
	go w.run(context.WithoutCancel(ctx), kw)
	return w, nil
}

// Backoff between attempts to restart a KV watch.
const (
	minRetry = 50 * time.Millisecond
	maxRetry = 2 * time.Second
)

func (w *watcher) run(ctx context.Context, kw jetstream.KeyWatcher) {
	defer close(w.done)
	defer func() {
		if kw != nil {
			stopWatch(kw)
		}
	}()
	s, ready := newSet(), false
	updates := kw.Updates()
	quit := w.feed.Done()
	var retry <-chan time.Time
	backoff := minRetry
	for {
		select {
		case <-quit:
			return
		case e, ok := <-updates:
			switch {
			case !ok: // the subscription ended
				kw, updates = nil, nil
				if w.r.nc.IsClosed() {
					w.fail(nats.ErrConnectionClosed)
					return
				}
				retry = time.After(backoff)
			case e == nil:
				ready = true
				w.feed.Publish(s.sorted)
			default:
				if s.apply(e) && ready {
					w.feed.Publish(s.sorted)
				}
			}
		case st := <-w.status:
			switch st {
			case nats.CONNECTED:
				if kw != nil {
					stopWatch(kw)
					kw, updates = nil, nil
				}
				retry, backoff = time.After(0), minRetry
			case nats.CLOSED:
				w.fail(nats.ErrConnectionClosed)
				return
			default:
				// Keep draining the old watch until the connection is
				// back; callers keep their last known set meanwhile.
				w.report(nats.ErrDisconnected)
			}
		case <-retry:
			retry = nil
			if !w.r.nc.IsConnected() {
				continue // the CONNECTED event restarts it
			}
			// nats.go bounds the request with its own timeout.
			nkw, err := w.r.kv.Watch(ctx, w.pattern)
			if err != nil {
				w.report(err)
				retry = time.After(backoff)
				backoff = min(2*backoff, maxRetry)
				continue
			}
			kw, updates, s, ready, backoff = nkw, nkw.Updates(), newSet(), false, minRetry
		}
	}
}

// report records a failure for Next to return once.
func (w *watcher) report(err error) {
	w.feed.Report(errs.Newf(errs.Unavailable, "registry/nats: watch %s: %w", w.what, err))
}

// fail records a failure that ends the watch.
func (w *watcher) fail(err error) {
	w.feed.Fail(errs.Newf(errs.Unavailable, "registry/nats: watch %s: %w", w.what, err))
}

func (w *watcher) Next(ctx context.Context) ([]registry.Instance, error) {
	return w.feed.Next(ctx)
}

// Stop ends the watch. While the connection is down it may take up to the
// JetStream request timeout, as the KV watch deletes its consumer.
func (w *watcher) Stop() error {
	w.stopOnce.Do(func() {
		w.feed.Close()
		<-w.done
		w.r.nc.RemoveStatusListener(w.status)
	})
	return nil
}

// stopWatch stops kw while draining it: nats.go delivers to the updates
// channel under a lock that closing the watch needs.
func stopWatch(kw jetstream.KeyWatcher) {
	quit, drained := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case _, ok := <-kw.Updates():
				if !ok {
					return
				}
			case <-quit:
				return
			}
		}
	}()
	_ = kw.Stop()
	close(quit)
	<-drained
}

// set is the instances seen on a KV watch, by key.
type set struct {
	raw    map[string][]byte
	sorted []registry.Instance // by service, then ID; replaced, never changed in place
}

func newSet() set { return set{raw: make(map[string][]byte)} }

// apply applies one KV change and reports whether the set changed: a put
// of the value the key already holds (a heartbeat) does not. Deletes,
// purges and the markers the server writes when a key ages out (which
// nats.go reports as purges) remove the key. A value that is not a valid
// instance of its key counts as absent: the bucket may be written by other
// clients, under keys of any shape.
func (s *set) apply(e jetstream.KeyValueEntry) bool {
	key := e.Key()
	if e.Operation() == jetstream.KeyValuePut {
		if old, ok := s.raw[key]; ok && bytes.Equal(old, e.Value()) {
			return false // a heartbeat
		}
		var in registry.Instance
		if json.Unmarshal(e.Value(), &in) == nil && in.Validate() == nil && in.Service+"."+in.ID == key {
			s.raw[key] = bytes.Clone(e.Value())
			s.put(in)
			return true
		}
	}
	if _, ok := s.raw[key]; !ok {
		return false
	}
	delete(s.raw, key)
	service, id, _ := strings.Cut(key, ".") // raw holds only "<service>.<id>" keys
	if i, found := s.find(service, id); found {
		s.sorted = slices.Delete(slices.Clone(s.sorted), i, i+1)
	}
	return true
}

// find returns where the instance service/id is, or would be, in sorted.
func (s *set) find(service, id string) (int, bool) {
	return slices.BinarySearchFunc(s.sorted, [2]string{service, id}, func(x registry.Instance, k [2]string) int {
		return cmp.Or(cmp.Compare(x.Service, k[0]), cmp.Compare(x.ID, k[1]))
	})
}

func (s *set) put(in registry.Instance) {
	i, found := s.find(in.Service, in.ID)
	next := slices.Clone(s.sorted)
	if found {
		next[i] = in
	} else {
		next = slices.Insert(next, i, in)
	}
	s.sorted = next
}

func (s *set) instances() []registry.Instance {
	if s.sorted == nil {
		return []registry.Instance{}
	}
	return s.sorted
}
