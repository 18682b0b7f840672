package etcd

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// watcher follows the keys under one prefix: a service's
// ("<prefix><service>/") or every service's (the registry's prefix). It
// lists them with a Get, then watches them from the revision after the
// Get's, so that no change between the two is missed; a goroutine applies
// the events and publishes each new set, and Next waits for a set that
// differs from the last one it returned.
//
// When the watch ends — compacted past the revision it needs, cancelled by
// the server, or cut off from the leader — the goroutine lists again and
// watches from the new revision, reporting failures to Next once each
// meanwhile.
type watcher struct {
	r      *Registry
	prefix string
	what   string        // what is watched, for errors: the service, or "every service"
	cancel func()        // ends the goroutine's requests
	done   chan struct{} // closed when run returns
	feed   registry.Feed // what run publishes and Next returns; closed by Stop

	stopOnce sync.Once
}

// watch lists the keys under prefix and starts a watcher from there; what
// names them in errors. The first list is made here with ctx, so that
// Watch and WatchAll report a cluster they cannot reach, and so that the
// first Next returns at once.
func (r *Registry) watch(ctx context.Context, prefix, what string) (*watcher, error) {
	resp, err := r.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, r.failure(ctx, "watch "+what, err)
	}
	s := newSet(r.prefix)
	for _, kv := range resp.Kvs {
		s.put(kv.Key, kv.Value)
	}
	return r.watchFrom(ctx, prefix, what, s, resp.Header.Revision), nil
}

// watchFrom starts a watcher whose set is s as of revision rev.
func (r *Registry) watchFrom(ctx context.Context, prefix, what string, s *set, rev int64) *watcher {
	// The goroutine outlives ctx; it keeps ctx's values for its requests.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w := &watcher{
		r:      r,
		prefix: prefix,
		what:   what,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	w.feed.Publish(s.instances())
	go w.run(rctx, s, rev)
	return w
}

func (w *watcher) run(ctx context.Context, s *set, rev int64) {
	defer close(w.done)
	var (
		wch     clientv3.WatchChan
		wcancel = func() {}
		retry   <-chan time.Time
		backoff = minRetry
	)
	defer func() { wcancel() }()
	start := func() {
		// WithRequireLeader: a member cut off from the leader ends the
		// watch (ErrNoLeader) instead of keeping it open and silent.
		var wctx context.Context
		wctx, wcancel = context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch = w.r.cli.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	}
	restart := func(after time.Duration) {
		wcancel()
		wcancel, wch = func() {}, nil
		retry = time.After(after)
	}
	quit := w.feed.Done()
	start()
	for {
		select {
		case <-quit:
			return
		case resp, ok := <-wch:
			switch {
			case !ok: // the watch ended without a word
				if w.r.cli.Ctx().Err() != nil {
					w.fail(errors.New("the etcd client is closed"))
					return
				}
				restart(backoff)
				backoff = min(2*backoff, maxRetry)
			case resp.Err() != nil:
				err := resp.Err()
				if errors.Is(err, rpctypes.ErrCompacted) {
					// The revision it needs is gone: the events since
					// cannot be had, the current set can.
					w.r.logWatch(ctx, slog.LevelInfo, "registry watch compacted; listing again", w, err)
					restart(0)
					continue
				}
				w.report(err)
				restart(backoff)
				backoff = min(2*backoff, maxRetry)
			default:
				changed := false
				for _, ev := range resp.Events {
					switch ev.Type {
					case mvccpb.PUT:
						changed = s.put(ev.Kv.Key, ev.Kv.Value) || changed
					case mvccpb.DELETE:
						changed = s.del(ev.Kv.Key) || changed
					}
				}
				if resp.Header.Revision > rev {
					rev = resp.Header.Revision
				}
				if changed {
					w.feed.Publish(s.instances())
				}
				backoff = minRetry
			}
		case <-retry:
			retry = nil
			gctx, cancel := context.WithTimeout(ctx, w.r.opTimeout())
			resp, err := w.r.cli.Get(gctx, w.prefix, clientv3.WithPrefix())
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return // stopped
				}
				if w.r.cli.Ctx().Err() != nil {
					w.fail(errors.New("the etcd client is closed"))
					return
				}
				w.report(err)
				retry = time.After(backoff)
				backoff = min(2*backoff, maxRetry)
				continue
			}
			s = newSet(w.r.prefix)
			for _, kv := range resp.Kvs {
				s.put(kv.Key, kv.Value)
			}
			rev = resp.Header.Revision
			w.feed.Publish(s.instances())
			start()
		}
	}
}

// report records a failure for Next to return once.
func (w *watcher) report(err error) {
	w.feed.Report(errs.Newf(errs.Unavailable, "registry/etcd: watch %s: %w", w.what, err))
}

// fail records a failure that ends the watch.
func (w *watcher) fail(err error) {
	w.feed.Fail(errs.Newf(errs.FailedPrecondition, "registry/etcd: watch %s: %w", w.what, err))
}

// Next returns the current set at once on its first call, then waits for
// one that differs from the last it returned. A failure to reach the
// cluster is returned once, as an Unavailable error, and the watcher keeps
// trying; a closed client is a FailedPrecondition error on every call.
func (w *watcher) Next(ctx context.Context) ([]registry.Instance, error) {
	return w.feed.Next(ctx)
}

// Stop ends the watch and waits for its goroutine; it always returns nil.
func (w *watcher) Stop() error {
	w.stopOnce.Do(func() {
		w.feed.Close()
		w.cancel()
		<-w.done
	})
	return nil
}

func (r *Registry) logWatch(ctx context.Context, level slog.Level, msg string, w *watcher, err error) {
	if r.logger == nil {
		return
	}
	r.logger.LogAttrs(ctx, level, msg, slog.String("prefix", w.prefix), slog.Any("error", err))
}

// set is the instances under a prefix, by key.
type set struct {
	prefix string              // the registry's
	raw    map[string][]byte   // the value of each key that holds a valid instance
	sorted []registry.Instance // by service, then ID; replaced, never changed in place
}

func newSet(prefix string) *set {
	return &set{prefix: prefix, raw: make(map[string][]byte), sorted: []registry.Instance{}}
}

// put applies a put of value under key and reports whether the set
// changed: a put of the value the key holds (an instance registered
// again unchanged, or put again on a new lease) does not. A value that is
// not a valid instance of its key counts as absent: others may write under
// the prefix, keys of any shape.
func (s *set) put(key, value []byte) bool {
	k := string(key)
	if old, ok := s.raw[k]; ok && bytes.Equal(old, value) {
		return false
	}
	var in registry.Instance
	if json.Unmarshal(value, &in) != nil || in.Validate() != nil || s.prefix+in.Service+"/"+in.ID != k {
		return s.del(key)
	}
	s.raw[k] = bytes.Clone(value)
	i, found := s.find(in.Service, in.ID)
	next := slices.Clone(s.sorted)
	if found {
		next[i] = in
	} else {
		next = slices.Insert(next, i, in)
	}
	s.sorted = next
	return true
}

// del applies a delete of key and reports whether the set changed.
func (s *set) del(key []byte) bool {
	k := string(key)
	old, ok := s.raw[k]
	if !ok {
		return false
	}
	delete(s.raw, k)
	var in registry.Instance
	_ = json.Unmarshal(old, &in) // raw holds valid instances only
	if i, found := s.find(in.Service, in.ID); found {
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

func (s *set) instances() []registry.Instance { return s.sorted }
