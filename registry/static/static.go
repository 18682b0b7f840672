// Package static is a registry of a fixed list of instances, typically
// read from configuration: for environments without a registry, or to pin
// a client to known addresses.
//
// It is read-only: Register and Deregister fail with [ErrReadOnly]. A
// watcher returns the service's instances once and then blocks until it
// is stopped or its context ends, since the list never changes; so does
// one made by [Registry.WatchAll] (registry.Catalog), which returns every
// service's instances.
package static

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry"
)

// ErrReadOnly is returned by Register and Deregister: the instances come
// from configuration. Its code is Unimplemented.
var ErrReadOnly = errs.New(errs.Unimplemented, "registry/static: the static registry is read-only")

// Registry is a read-only registry.Registry of a fixed list of instances.
// Its methods are safe for concurrent use.
type Registry struct {
	services map[string][]registry.Instance // sorted by ID; never changed
	all      []registry.Instance            // every instance, sorted by service then ID; never changed
}

var (
	_ registry.Registry = (*Registry)(nil)
	_ registry.Catalog  = (*Registry)(nil)
)

// New returns a registry of instances. Each must be valid, and no two may
// share a service and ID; otherwise New returns an InvalidArgument error
// naming every offending instance. The registry keeps its own copies.
func New(instances ...registry.Instance) (*Registry, error) {
	var problems []error
	services := make(map[string][]registry.Instance)
	seen := make(map[[2]string]bool)
	for i, in := range instances {
		if err := in.Validate(); err != nil {
			problems = append(problems, fmt.Errorf("instance %d: %w", i, err))
			continue
		}
		k := [2]string{in.Service, in.ID}
		if seen[k] {
			problems = append(problems, fmt.Errorf("instance %d: duplicate id %q in service %q", i, in.ID, in.Service))
			continue
		}
		seen[k] = true
		services[in.Service] = append(services[in.Service], in.Clone())
	}
	if err := errors.Join(problems...); err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "registry/static: %w", err)
	}
	all := []registry.Instance{}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		ins := services[name]
		slices.SortFunc(ins, func(a, b registry.Instance) int { return cmp.Compare(a.ID, b.ID) })
		all = append(all, ins...)
	}
	return &Registry{services: services, all: all}, nil
}

// Register returns ErrReadOnly.
func (r *Registry) Register(context.Context, registry.Instance) error { return ErrReadOnly }

// Deregister returns ErrReadOnly.
func (r *Registry) Deregister(context.Context, registry.Instance) error { return ErrReadOnly }

// Lookup returns copies of the service's instances, sorted by ID. An
// invalid service name is an InvalidArgument error.
func (r *Registry) Lookup(ctx context.Context, service string) ([]registry.Instance, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return registry.Clone(r.services[service]), nil
}

// Watch returns a watcher whose first Next returns the service's
// instances and whose later calls block until Stop or the end of their
// context. An invalid service name is an InvalidArgument error.
func (r *Registry) Watch(ctx context.Context, service string) (registry.Watcher, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &watcher{instances: r.services[service], stop: make(chan struct{})}, nil
}

// WatchAll returns a watcher whose first Next returns every instance,
// sorted by service then ID, and whose later calls block until Stop or the
// end of their context (registry.Catalog).
func (r *Registry) WatchAll(ctx context.Context) (registry.Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &watcher{instances: r.all, stop: make(chan struct{})}, nil
}

type watcher struct {
	instances []registry.Instance
	stop      chan struct{}
	stopOnce  sync.Once

	mu   sync.Mutex
	sent bool
}

func (w *watcher) Next(ctx context.Context) ([]registry.Instance, error) {
	select {
	case <-w.stop:
		return nil, registry.ErrWatcherStopped
	default:
	}
	w.mu.Lock()
	first := !w.sent
	w.sent = true
	w.mu.Unlock()
	if first {
		return registry.Clone(w.instances), nil
	}
	select {
	case <-w.stop:
		return nil, registry.ErrWatcherStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (w *watcher) Stop() error {
	w.stopOnce.Do(func() { close(w.stop) })
	return nil
}

func checkService(name string) error {
	// Validate checks names; a placeholder ID isolates the service check.
	if err := (registry.Instance{Service: name, ID: "x"}).Validate(); err != nil {
		return errs.Wrap(errs.InvalidArgument, err)
	}
	return nil
}
