// Package dns discovers service instances in DNS: SRV records, or the
// A/AAAA records of a name plus a configured port — for example a
// Kubernetes headless Service, whose name resolves to the ready pods.
//
// Each service maps to one [Target] per transport. The addresses found for
// all of a service's targets are grouped into instances by host: the IP
// for A/AAAA records, the target name for SRV records. So a pod whose IP
// serves HTTP on 8080 and gRPC on 9090 is one instance with two endpoints.
// An instance's ID is its host with every character other than letters,
// digits, '-' and '_' replaced by '-' ("10.0.0.7" becomes "10-0-0-7").
//
// DNS has no push: a watcher resolves again every interval (default 30s)
// and returns the set when it differs. [Registry.WatchAll]
// (registry.Catalog) does the same for every configured service at once:
// it resolves them all each interval and returns the combined set, sorted
// by service then ID, when it differs. The registry is read-only; Register
// and Deregister fail with [ErrReadOnly].
package dns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry"
)

// DefaultInterval is how often a watcher resolves again.
const DefaultInterval = 30 * time.Second

// ErrReadOnly is returned by Register and Deregister: DNS is managed
// elsewhere. Its code is Unimplemented.
var ErrReadOnly = errs.New(errs.Unimplemented, "registry/dns: the DNS registry is read-only")

// Target is where one transport of a service is found in DNS. Set SRV, or
// Host and Port.
type Target struct {
	// Transport is the transport kind's name: "http", "grpc" or "nats".
	Transport string
	// SRV is the full name of SRV records, such as
	// "_grpc._tcp.greeter.prod.svc.cluster.local"; each record gives a
	// host and a port.
	SRV string
	// Host is a name whose A and AAAA records are the instances' IPs,
	// such as "greeter.prod.svc.cluster.local".
	Host string
	// Port is the port the transport listens on at each of Host's IPs.
	Port int
	// Scheme prefixes each address as "<scheme>://host:port". Default
	// "http" for the http transport ("https" with TLS), "nats" for nats,
	// none (host:port) for any other.
	Scheme string
	// TLS says the transport serves TLS, so clients dial it with TLS
	// (registry.Endpoint.TLS): a gRPC server with a certificate.
	TLS bool
}

// Resolver is the part of *net.Resolver the registry uses; tests may
// supply their own.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Option configures a Registry.
type Option func(*Registry)

// WithResolver sets the resolver. Default net.DefaultResolver.
func WithResolver(r Resolver) Option { return func(reg *Registry) { reg.resolver = r } }

// WithInterval sets how often a watcher resolves again. Default
// [DefaultInterval].
func WithInterval(d time.Duration) Option { return func(reg *Registry) { reg.interval = d } }

// Registry is a read-only registry.Registry backed by DNS. Create it with
// [New]; its methods are safe for concurrent use.
type Registry struct {
	services map[string][]Target
	resolver Resolver
	interval time.Duration
}

var (
	_ registry.Registry = (*Registry)(nil)
	_ registry.Catalog  = (*Registry)(nil)
)

// New returns a registry that finds each service of services at its
// targets. Every service name must be valid and every target must name a
// transport and either SRV or Host with a port in 1..65535, else New
// returns an InvalidArgument error naming each problem.
func New(services map[string][]Target, opts ...Option) (*Registry, error) {
	r := &Registry{services: make(map[string][]Target, len(services)), resolver: net.DefaultResolver, interval: DefaultInterval}
	for _, opt := range opts {
		opt(r)
	}
	var problems []error
	if r.resolver == nil {
		problems = append(problems, errors.New("nil resolver"))
	}
	if r.interval <= 0 {
		problems = append(problems, fmt.Errorf("interval %v: want a positive duration", r.interval))
	}
	for name, targets := range services {
		if err := checkService(name); err != nil {
			problems = append(problems, err)
		}
		for i, t := range targets {
			if err := t.validate(); err != nil {
				problems = append(problems, fmt.Errorf("service %s target %d: %w", name, i, err))
			}
		}
		r.services[name] = slices.Clone(targets)
	}
	if err := errors.Join(problems...); err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "registry/dns: %w", err)
	}
	return r, nil
}

func (t Target) validate() error {
	switch {
	case t.Transport == "":
		return errors.New("no transport")
	case t.SRV != "" && t.Host != "":
		return errors.New("both SRV and Host set; want one")
	case t.SRV == "" && t.Host == "":
		return errors.New("neither SRV nor Host set; want one")
	case t.Host != "" && (t.Port < 1 || t.Port > 65535):
		return fmt.Errorf("host %s: port %d: want 1 to 65535", t.Host, t.Port)
	}
	return nil
}

// Register returns ErrReadOnly.
func (r *Registry) Register(context.Context, registry.Instance) error { return ErrReadOnly }

// Deregister returns ErrReadOnly.
func (r *Registry) Deregister(context.Context, registry.Instance) error { return ErrReadOnly }

// Lookup resolves the service's targets and returns its instances sorted
// by ID. A service that is not configured, or whose names do not exist,
// has none. An invalid service name is an InvalidArgument error; a failed
// resolution, Unavailable (never a partial set).
func (r *Registry) Lookup(ctx context.Context, service string) ([]registry.Instance, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	return r.resolve(ctx, service)
}

func (r *Registry) resolve(ctx context.Context, service string) ([]registry.Instance, error) {
	byHost := make(map[string]*registry.Instance)
	add := func(host, transport, address string, tls bool) {
		in := byHost[host]
		if in == nil {
			in = &registry.Instance{ID: instanceID(host), Service: service}
			byHost[host] = in
		}
		if _, dup := in.Endpoint(transport); !dup {
			in.Endpoints = append(in.Endpoints, registry.Endpoint{Transport: transport, Address: address, TLS: tls})
		}
	}
	for _, t := range r.services[service] {
		if t.SRV != "" {
			_, srvs, err := r.resolver.LookupSRV(ctx, "", "", t.SRV)
			if err != nil && !notFound(err) {
				return nil, failure(ctx, "SRV", t.SRV, err)
			}
			for _, s := range srvs {
				host := strings.ToLower(strings.TrimSuffix(s.Target, "."))
				add(host, t.Transport, t.address(host, int(s.Port)), t.TLS)
			}
			continue
		}
		ips, err := r.resolver.LookupIPAddr(ctx, t.Host)
		if err != nil && !notFound(err) {
			return nil, failure(ctx, "A/AAAA", t.Host, err)
		}
		for _, ip := range ips {
			host := ip.String()
			add(host, t.Transport, t.address(host, t.Port), t.TLS)
		}
	}
	out := make([]registry.Instance, 0, len(byHost))
	for _, in := range byHost {
		out = append(out, *in)
	}
	slices.SortFunc(out, func(a, b registry.Instance) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// resolveAll resolves every configured service and returns their
// instances sorted by service, then ID: all of them or an error, never a
// partial set.
func (r *Registry) resolveAll(ctx context.Context) ([]registry.Instance, error) {
	out := []registry.Instance{}
	for _, service := range slices.Sorted(maps.Keys(r.services)) {
		set, err := r.resolve(ctx, service)
		if err != nil {
			return nil, err
		}
		out = append(out, set...) // each set is sorted by ID
	}
	return out, nil
}

func (t Target) address(host string, port int) string {
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	scheme := t.Scheme
	if scheme == "" {
		switch {
		case t.Transport == "http" && t.TLS:
			scheme = "https"
		case t.Transport == "http", t.Transport == "nats":
			scheme = t.Transport
		}
	}
	if scheme == "" {
		return hp
	}
	return scheme + "://" + hp
}

// instanceID turns a host into an ID: registry IDs are key tokens.
func instanceID(host string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '-'
	}, host)
}

// notFound reports whether err says the name does not exist: a service
// scaled to zero, not a failure.
func notFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

func failure(ctx context.Context, kind, name string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("registry/dns: resolve %s %s: %w", kind, name, ctx.Err())
	}
	return errs.Newf(errs.Unavailable, "registry/dns: resolve %s %s: %w", kind, name, err)
}

// Watch returns a watcher that resolves the service at once on its first
// Next and then every interval, returning the set when it differs from the
// last one returned. After a failed resolution it tries again within
// min(interval, 5s). An invalid service name is an InvalidArgument error.
func (r *Registry) Watch(ctx context.Context, service string) (registry.Watcher, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Stop cancels resolutions in flight through sctx.
	return newWatcher(ctx, func(ctx context.Context) ([]registry.Instance, error) { return r.resolve(ctx, service) }, r.interval), nil
}

// WatchAll returns a watcher over every configured service
// (registry.Catalog): its first Next resolves them all at once, later ones
// every interval, and each returns the combined set, sorted by service
// then ID, when it differs from the last one returned. A failure to
// resolve any of them fails that Next as a whole (Unavailable, never a
// partial set), and the next try comes within min(interval, 5s).
func (r *Registry) WatchAll(ctx context.Context) (registry.Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return newWatcher(ctx, r.resolveAll, r.interval), nil
}

func newWatcher(ctx context.Context, resolve func(context.Context) ([]registry.Instance, error), interval time.Duration) *watcher {
	// Stop cancels resolutions in flight through sctx.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &watcher{resolve: resolve, interval: interval, stop: sctx.Done(), cancel: cancel, sctx: sctx}
}

// retryAfterError bounds the wait after a failed resolution.
const retryAfterError = 5 * time.Second

// watcher polls in Next itself, so it runs no goroutine.
type watcher struct {
	resolve  func(context.Context) ([]registry.Instance, error) // one service, or all
	interval time.Duration
	sctx     context.Context // ends at Stop
	stop     <-chan struct{} // sctx.Done()
	cancel   context.CancelFunc

	mu      sync.Mutex // serialises Next and guards the fields below
	due     time.Time  // when to resolve next; zero at first
	last    []registry.Instance
	started bool
}

func (w *watcher) Next(ctx context.Context) ([]registry.Instance, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if wait := time.Until(w.due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-w.stop:
				t.Stop()
				return nil, registry.ErrWatcherStopped
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
		select {
		case <-w.stop:
			return nil, registry.ErrWatcherStopped
		default:
		}
		rctx, cancel := context.WithCancel(ctx)
		unhook := context.AfterFunc(w.sctx, cancel)
		set, err := w.resolve(rctx)
		unhook()
		cancel()
		select {
		case <-w.stop:
			return nil, registry.ErrWatcherStopped
		default:
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			w.due = time.Now().Add(min(w.interval, retryAfterError))
			return nil, err
		}
		w.due = time.Now().Add(w.interval)
		if !w.started || !equal(set, w.last) {
			w.last, w.started = set, true
			return registry.Clone(set), nil
		}
	}
}

func (w *watcher) Stop() error {
	w.cancel()
	return nil
}

// equal compares the fields resolve fills in: ID, Service and Endpoints.
// It is not registry.Equal, which compares Version and Metadata too; an
// instance found in DNS has neither, so the two agree on every set here.
func equal(a, b []registry.Instance) bool {
	return slices.EqualFunc(a, b, func(x, y registry.Instance) bool {
		return x.ID == y.ID && x.Service == y.Service && slices.Equal(x.Endpoints, y.Endpoints)
	})
}

func checkService(name string) error {
	// Validate checks names; a placeholder ID isolates the service check.
	if err := (registry.Instance{Service: name, ID: "x"}).Validate(); err != nil {
		return errs.Wrap(errs.InvalidArgument, err)
	}
	return nil
}
