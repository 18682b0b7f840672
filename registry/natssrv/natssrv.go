package natssrv

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/internal/microdisc"
	"github.com/ferry-go/ferry/registry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Defaults of the poll loop.
const (
	// DefaultInterval is how often the registry sends $SRV.PING.
	DefaultInterval = time.Second
	// DefaultMisses is how many polls in a row an instance may leave
	// unanswered before it is gone.
	DefaultMisses = 3
)

// maxInfoFetches bounds the $SRV.INFO requests one poll has in flight.
const maxInfoFetches = 16

// ErrReadOnly is returned by Register and Deregister: instances announce
// themselves on NATS (the Ferry NATS transport answers $SRV discovery).
// Its code is Unimplemented, which ferry.Service takes for "do not
// register".
var ErrReadOnly = errs.New(errs.Unimplemented, "registry/natssrv: NATS $SRV discovery is read-only: services announce themselves by answering it")

// Option configures New.
type Option func(*Registry)

// WithInterval sets how often the registry polls (default DefaultInterval;
// 0 or less keeps it). A poll waits at most half of it for replies.
func WithInterval(d time.Duration) Option {
	return func(r *Registry) {
		if d > 0 {
			r.interval = d
		}
	}
}

// WithMisses sets after how many unanswered polls in a row an instance is
// gone (default DefaultMisses; 0 or less keeps it).
func WithMisses(n int) Option {
	return func(r *Registry) {
		if n > 0 {
			r.misses = n
		}
	}
}

// WithLogger sets where replies that are ignored and INFO requests that
// fail are logged, at Debug (default: discarded). nil keeps the default.
func WithLogger(l *slog.Logger) Option {
	return func(r *Registry) {
		if l != nil {
			r.logger = l
		}
	}
}

// Registry is a read-only registry.Registry and registry.Catalog over NATS
// $SRV discovery; see the package documentation. Its methods are safe for
// concurrent use.
type Registry struct {
	nc       *nats.Conn
	interval time.Duration
	misses   int
	logger   *slog.Logger

	mu       sync.Mutex // guards the two below
	poller   *poller    // running while watchers exist
	watchers int
}

var (
	_ registry.Registry = (*Registry)(nil)
	_ registry.Catalog  = (*Registry)(nil)
)

// New returns a registry that discovers services over nc. The connection
// belongs to the caller. Nothing runs until the first Watch or WatchAll.
func New(nc *nats.Conn, opts ...Option) (*Registry, error) {
	if nc == nil {
		return nil, errs.New(errs.InvalidArgument, "registry/natssrv: New needs a NATS connection")
	}
	r := &Registry{nc: nc, interval: DefaultInterval, misses: DefaultMisses,
		logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		if o != nil {
			o(r)
		}
	}
	return r, nil
}

// window is the longest one poll waits for replies; quiet ends it earlier
// once replies stop coming.
func (r *Registry) window() time.Duration { return r.interval / 2 }
func (r *Registry) quiet() time.Duration  { return r.interval / 4 }

// Register returns ErrReadOnly.
func (r *Registry) Register(context.Context, registry.Instance) error { return ErrReadOnly }

// Deregister returns ErrReadOnly.
func (r *Registry) Deregister(context.Context, registry.Instance) error { return ErrReadOnly }

// Lookup returns the service's instances sorted by ID: from the poll loop
// when watchers keep it running, otherwise by asking $SRV.INFO.<service>
// once (which waits for replies until they pause, up to half the
// interval). An invalid service name is InvalidArgument; a connection that
// is not up, Unavailable.
func (r *Registry) Lookup(ctx context.Context, service string) ([]registry.Instance, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	p := r.poller
	r.mu.Unlock()
	if p != nil {
		if cur, ok := p.snapshot(); ok {
			return registry.Clone(only(cur, service)), nil
		}
	}
	if !r.nc.IsConnected() {
		return nil, unavailable("look up "+service, nats.ErrConnectionClosed)
	}
	subject, err := micro.ControlSubject(micro.InfoVerb, service, "")
	if err != nil {
		return nil, errs.Wrap(errs.InvalidArgument, err)
	}
	gctx, cancel := context.WithTimeout(ctx, r.window())
	defer cancel()
	replies, err := microdisc.Gather(gctx, r.nc, subject, r.quiet(), 0)
	if err != nil {
		return nil, unavailable("look up "+service, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	addr := r.nc.ConnectedUrlRedacted()
	out := []registry.Instance{}
	seen := map[string]bool{}
	for _, b := range replies {
		in, ok := r.parseInfo(b, service, "")
		if !ok || seen[in.ID] {
			continue
		}
		seen[in.ID] = true
		out = append(out, withAddress(in, addr))
	}
	slices.SortFunc(out, func(a, b registry.Instance) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Watch follows the service's instances through the registry's poll loop,
// which it starts if no watcher runs it yet. Its first Next returns once
// the first poll is complete. An invalid service name is InvalidArgument;
// a closed connection, Unavailable.
func (r *Registry) Watch(ctx context.Context, service string) (registry.Watcher, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	return r.watch(ctx, service)
}

// WatchAll follows every service that answers $SRV.PING (registry.Catalog),
// sorted by service then ID.
func (r *Registry) WatchAll(ctx context.Context) (registry.Watcher, error) {
	return r.watch(ctx, "")
}

func (r *Registry) watch(ctx context.Context, service string) (registry.Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.nc.IsClosed() {
		return nil, unavailable("watch", nats.ErrConnectionClosed)
	}
	w := &watcher{r: r, service: service}
	r.mu.Lock()
	if r.poller == nil {
		r.poller = r.startPoller()
	}
	r.watchers++
	w.p = r.poller
	r.mu.Unlock()
	w.p.add(w)
	return w, nil
}

// release is a watcher's Stop: the last one stops the poll loop.
func (r *Registry) release(w *watcher) {
	w.p.remove(w)
	r.mu.Lock()
	r.watchers--
	var stop *poller
	if r.watchers == 0 {
		stop, r.poller = r.poller, nil
	}
	r.mu.Unlock()
	if stop != nil {
		stop.stop()
	}
}

// parseInfo reads one $SRV.INFO reply; service and id, when not empty, are
// what it must be of. A reply that is not a valid INFO of a service
// instance Ferry can name is logged and ignored. The instance has no
// endpoints yet (withAddress).
func (r *Registry) parseInfo(b []byte, service, id string) (registry.Instance, bool) {
	var info micro.Info
	if err := json.Unmarshal(b, &info); err != nil {
		r.logger.Debug("registry/natssrv: malformed INFO reply ignored", "error", err)
		return registry.Instance{}, false
	}
	in := registry.Instance{ID: info.ID, Service: info.Name, Version: info.Version, Metadata: maps.Clone(info.Metadata)}
	switch err := in.Validate(); {
	case info.Type != micro.InfoResponseType:
		r.logger.Debug("registry/natssrv: INFO reply of another type ignored", "type", info.Type)
		return registry.Instance{}, false
	case err != nil:
		r.logger.Debug("registry/natssrv: INFO reply ignored", "error", err)
		return registry.Instance{}, false
	case service != "" && in.Service != service, id != "" && in.ID != id:
		r.logger.Debug("registry/natssrv: INFO reply of another instance ignored", "asked", service+"/"+id, "got", in.Service+"/"+in.ID)
		return registry.Instance{}, false
	}
	if _, ferry := in.Metadata[registry.MetadataEndpoints]; !ferry {
		// Not a Ferry service: list the endpoints a Ferry client can
		// reach, those on its subject scheme "<service>.<endpoint>".
		var names []string
		for _, ep := range info.Endpoints {
			if ep.Subject == in.Service+"."+ep.Name && !strings.Contains(ep.Name, ",") {
				names = append(names, ep.Name)
			}
		}
		slices.Sort(names)
		if in.Metadata == nil {
			in.Metadata = map[string]string{}
		}
		in.Metadata[registry.MetadataEndpoints] = strings.Join(slices.Compact(names), ",")
	}
	return in, true
}

// withAddress gives in its endpoints: NATS, at the server the registry is
// connected to (calls go by subject, so that is where to call it), then
// the instance's other transports its INFO lists
// (registry.MetadataTransports).
func withAddress(in registry.Instance, addr string) registry.Instance {
	in.Endpoints = []registry.Endpoint{{Transport: "nats", Address: addr}}
	var others []registry.Endpoint
	if raw := in.Metadata[registry.MetadataTransports]; raw != "" && json.Unmarshal([]byte(raw), &others) == nil {
		for _, ep := range others {
			if ep.Transport != "" && ep.Transport != "nats" && ep.Address != "" {
				in.Endpoints = append(in.Endpoints, ep)
			}
		}
	}
	return in
}

// only returns the instances of service in all (sorted by service then
// ID), or all when service is "".
func only(all []registry.Instance, service string) []registry.Instance {
	if service == "" {
		return all
	}
	lo, _ := slices.BinarySearchFunc(all, service, func(in registry.Instance, s string) int { return cmp.Compare(in.Service, s) })
	hi := lo
	for hi < len(all) && all[hi].Service == service {
		hi++
	}
	return all[lo:hi:hi]
}

func unavailable(op string, err error) error {
	return errs.Newf(errs.Unavailable, "registry/natssrv: %s: %w", op, err)
}

func checkService(name string) error {
	// Validate checks names; a placeholder ID isolates the service check.
	if err := (registry.Instance{Service: name, ID: "x"}).Validate(); err != nil {
		return errs.Wrap(errs.InvalidArgument, err)
	}
	return nil
}

// errClosed is what every watcher reports once the connection has closed.
var errClosed = errors.New("the NATS connection is closed")
