// Package memory is an in-process service registry, for tests and for
// services that call each other inside one binary.
//
// Watchers are told of every change as it happens (nothing polls), those
// of one service (Watch) and those of every service ([Registry.WatchAll],
// registry.Catalog) alike, and
// the registry keeps its own copies of the instances it is given and
// hands out fresh copies, so callers may change what they pass in or get
// back. Entries never expire: an instance stays until it is deregistered.
package memory

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry"
)

// Registry is an in-process registry.Registry. The zero value is not
// usable; create one with [New]. Its methods are safe for concurrent use.
type Registry struct {
	mu       sync.Mutex
	services map[string]*entry
	all      map[*watcher]struct{} // WatchAll's watchers
}

// entry is one service's instances and the watchers following them.
type entry struct {
	instances map[string]registry.Instance // by ID
	watchers  map[*watcher]struct{}
}

var (
	_ registry.Registry = (*Registry)(nil)
	_ registry.Catalog  = (*Registry)(nil)
)

// New returns an empty registry.
func New() *Registry {
	return &Registry{services: make(map[string]*entry), all: make(map[*watcher]struct{})}
}

// Register adds in, or replaces the instance with the same service and ID,
// and tells the service's watchers. An invalid instance is an
// InvalidArgument error.
func (r *Registry) Register(ctx context.Context, in registry.Instance) error {
	if err := in.Validate(); err != nil {
		return errs.Wrap(errs.InvalidArgument, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	in = in.Clone()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.services[in.Service]
	if s == nil {
		s = &entry{instances: make(map[string]registry.Instance), watchers: make(map[*watcher]struct{})}
		r.services[in.Service] = s
	}
	s.instances[in.ID] = in
	s.notify()
	notify(r.all)
	return nil
}

// Deregister removes the instance with in's service and ID, if any, and
// tells the service's watchers. Only those two fields are read; an invalid
// one is an InvalidArgument error.
func (r *Registry) Deregister(ctx context.Context, in registry.Instance) error {
	if err := (registry.Instance{Service: in.Service, ID: in.ID}).Validate(); err != nil {
		return errs.Wrap(errs.InvalidArgument, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.services[in.Service]
	if s == nil {
		return nil
	}
	if _, ok := s.instances[in.ID]; !ok {
		return nil
	}
	delete(s.instances, in.ID)
	s.notify()
	notify(r.all)
	r.gc(in.Service, s)
	return nil
}

// Lookup returns copies of the service's instances, sorted by ID. An
// invalid service name is an InvalidArgument error.
func (r *Registry) Lookup(ctx context.Context, service string) ([]registry.Instance, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshot(service), nil
}

// Watch follows the service's instances. The watcher's Next returns
// copies sorted by ID. An invalid service name is an InvalidArgument error.
func (r *Registry) Watch(ctx context.Context, service string) (registry.Watcher, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &watcher{r: r, service: service, changed: make(chan struct{}, 1), stop: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.services[service]
	if s == nil {
		s = &entry{instances: make(map[string]registry.Instance), watchers: make(map[*watcher]struct{})}
		r.services[service] = s
	}
	s.watchers[w] = struct{}{}
	return w, nil
}

// WatchAll follows the instances of every service (registry.Catalog).
// The watcher's Next returns copies sorted by service, then ID, and is
// woken by every Register and Deregister, whatever the service.
func (r *Registry) WatchAll(ctx context.Context) (registry.Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &watcher{r: r, everything: true, changed: make(chan struct{}, 1), stop: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all[w] = struct{}{}
	return w, nil
}

// snapshot returns copies of service's instances sorted by ID. r.mu is
// held.
func (r *Registry) snapshot(service string) []registry.Instance {
	s := r.services[service]
	if s == nil {
		return []registry.Instance{}
	}
	out := make([]registry.Instance, 0, len(s.instances))
	for _, in := range s.instances {
		out = append(out, in.Clone())
	}
	slices.SortFunc(out, func(a, b registry.Instance) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// snapshotAll returns copies of every service's instances sorted by
// service, then ID. r.mu is held.
func (r *Registry) snapshotAll() []registry.Instance {
	out := []registry.Instance{}
	for _, s := range r.services {
		for _, in := range s.instances {
			out = append(out, in.Clone())
		}
	}
	slices.SortFunc(out, func(a, b registry.Instance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// gc forgets a service nobody registers or watches, so that the map does
// not grow with every name ever used. r.mu is held.
func (r *Registry) gc(name string, s *entry) {
	if len(s.instances) == 0 && len(s.watchers) == 0 {
		delete(r.services, name)
	}
}

// notify wakes the service's watchers without blocking.
func (s *entry) notify() { notify(s.watchers) }

// notify wakes watchers without blocking: each has a one-slot channel, and
// a pending wake-up already covers this change.
func notify(watchers map[*watcher]struct{}) {
	for w := range watchers {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
}

// watcher follows one service, or every service. Next compares the
// current set with the last one it returned, so changes that cancel out
// (or a Register that changes nothing) wake it without a result.
type watcher struct {
	r          *Registry
	service    string        // the service followed, unless everything
	everything bool          // made by WatchAll
	changed    chan struct{} // a change may have happened since the last look
	stop       chan struct{} // closed by Stop

	stopOnce sync.Once

	mu       sync.Mutex // serialises Next
	last     []registry.Instance
	returned bool
}

func (w *watcher) Next(ctx context.Context) ([]registry.Instance, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		select {
		case <-w.stop:
			return nil, registry.ErrWatcherStopped
		default:
		}
		w.r.mu.Lock()
		var cur []registry.Instance
		if w.everything {
			cur = w.r.snapshotAll()
		} else {
			cur = w.r.snapshot(w.service)
		}
		w.r.mu.Unlock()
		if !w.returned || !registry.Equal(cur, w.last) {
			w.returned, w.last = true, cur
			return registry.Clone(cur), nil
		}
		select {
		case <-w.changed:
		case <-w.stop:
			return nil, registry.ErrWatcherStopped
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (w *watcher) Stop() error {
	w.stopOnce.Do(func() {
		close(w.stop)
		w.r.mu.Lock()
		defer w.r.mu.Unlock()
		if w.everything {
			delete(w.r.all, w)
			return
		}
		if s := w.r.services[w.service]; s != nil {
			delete(s.watchers, w)
			w.r.gc(w.service, s)
		}
	})
	return nil
}

func checkService(name string) error {
	// Validate checks names; a placeholder ID isolates the service check.
	if err := (registry.Instance{Service: name, ID: "x"}).Validate(); err != nil {
		return errs.Wrap(errs.InvalidArgument, err)
	}
	return nil
}
