package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is a readiness check: nil means the dependency is usable.
type Check func(ctx context.Context) error

// AdminOption configures an Admin.
type AdminOption func(*Admin)

// WithGatherer sets what /metrics serves: the prometheus.Registry the OTel
// Prometheus exporter is registered on (Setup does this). Without it,
// /metrics answers 404.
func WithGatherer(g prometheus.Gatherer) AdminOption {
	return func(a *Admin) { a.gatherer = g }
}

// WithCheck registers a named readiness check (see Admin.AddCheck).
func WithCheck(name string, c Check) AdminOption {
	return func(a *Admin) { a.AddCheck(name, c) }
}

// WithDrainDelay makes Stop wait d after flipping /readyz to 503 before it
// closes the admin server, so that a load balancer polling readiness sees
// the change (default 0).
func WithDrainDelay(d time.Duration) AdminOption {
	return func(a *Admin) { a.drainDelay = d }
}

// WithCheckTimeout bounds each readiness check run by /readyz (default 2s).
func WithCheckTimeout(d time.Duration) AdminOption {
	return func(a *Admin) { a.checkTimeout = d }
}

// Admin is the admin HTTP server, a ferry.Component on its own address:
//
//   - /metrics: the Prometheus text format of the gatherer (WithGatherer);
//   - /livez: 200 while the process serves it;
//   - /readyz: 200 only when every readiness check passes and no drain
//     has begun; otherwise 503 with one line per failing check.
//
// Stop (or an earlier Drain) flips /readyz to 503 first, waits the drain
// delay, then shuts the server down. Because a Service stops components in
// reverse order, add the Admin first (ferry.WithComponent before the
// transports) so that /metrics and /livez outlive the transports' drain,
// and add Admin.DrainSignal() last, so readiness goes false before any
// transport starts draining and becomes true only once everything listed
// before it has started.
type Admin struct {
	addr         string
	gatherer     prometheus.Gatherer
	drainDelay   time.Duration
	checkTimeout time.Duration

	mu     sync.Mutex
	checks map[string]Check
	lis    net.Listener
	srv    *http.Server
	done   chan struct{}

	draining atomic.Bool
	onDrain  []func()
	gated    atomic.Bool // a DrainSignal exists
	started  atomic.Bool // the DrainSignal started
}

// NewAdmin returns an admin server that will listen on addr (host:port;
// ":0" picks a free port, see Addr).
func NewAdmin(addr string, opts ...AdminOption) *Admin {
	a := &Admin{addr: addr, checks: map[string]Check{}, checkTimeout: 2 * time.Second}
	for _, o := range opts {
		if o != nil {
			o(a)
		}
	}
	return a
}

// AddCheck registers a readiness check under name, replacing any check of
// that name. It may be called at any time.
func (a *Admin) AddCheck(name string, c Check) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks[name] = c
}

// Drain flips /readyz to 503 for good and runs the OnDrain hooks (once).
// Stop calls it; call it earlier to take the instance out of rotation
// before stopping anything.
func (a *Admin) Drain() {
	if a.draining.Swap(true) {
		return
	}
	a.mu.Lock()
	hooks := a.onDrain
	a.mu.Unlock()
	for _, f := range hooks {
		f()
	}
}

// OnDrain registers f to run when the drain begins, e.g. to set a gRPC
// health service NOT_SERVING at the same moment /readyz goes 503.
func (a *Admin) OnDrain(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onDrain = append(a.onDrain, f)
}

// Addr returns the listening address once started, or nil.
func (a *Admin) Addr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lis == nil {
		return nil
	}
	return a.lis.Addr()
}

// Handler returns the admin routes, for mounting on a server of one's own.
func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	if a.gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		problems := a.Ready(r.Context())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(strings.Join(problems, "\n") + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// Ready runs the readiness checks and returns one line per problem; none
// means ready.
func (a *Admin) Ready(ctx context.Context) []string {
	var problems []string
	if a.draining.Load() {
		problems = append(problems, "draining")
	}
	if a.gated.Load() && !a.started.Load() {
		problems = append(problems, "starting")
	}
	a.mu.Lock()
	names := make([]string, 0, len(a.checks))
	for n := range a.checks {
		names = append(names, n)
	}
	checks := make([]Check, len(names))
	sort.Strings(names)
	for i, n := range names {
		checks[i] = a.checks[n]
	}
	a.mu.Unlock()
	for i, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, a.checkTimeout)
		err := c(cctx)
		cancel()
		if err != nil {
			problems = append(problems, names[i]+": "+err.Error())
		}
	}
	return problems
}

// Start implements ferry.Component: it listens on the address and serves
// the admin routes until Stop.
func (a *Admin) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		return errors.New("telemetry: admin server already started")
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", a.addr)
	if err != nil {
		return fmt.Errorf("telemetry: admin server: %w", err)
	}
	a.lis = lis
	a.srv = &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
	a.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		_ = srv.Serve(lis)
	}(a.srv, a.done)
	return nil
}

// ListenAddr implements ferry.Listener: "admin" and the URL it serves on,
// once started.
func (a *Admin) ListenAddr() (name, addr string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lis == nil {
		return "", "", false
	}
	return "admin", "http://" + a.lis.Addr().String(), true
}

// Stop implements ferry.Component: /readyz goes 503 at once, then after the
// drain delay the server shuts down gracefully until ctx ends.
func (a *Admin) Stop(ctx context.Context) error {
	already := a.draining.Load() // a DrainSignal already waited
	a.Drain()
	a.mu.Lock()
	srv, done := a.srv, a.done
	a.mu.Unlock()
	if srv == nil {
		return nil
	}
	if a.drainDelay > 0 && !already {
		t := time.NewTimer(a.drainDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
	}
	<-done
	return err
}

// DrainSignal returns a ferry.Component to list after every other
// component: its Start marks the service started (until then /readyz says
// "starting"), and its Stop — the first of the service's stops — flips
// /readyz to 503 while transports still serve.
func (a *Admin) DrainSignal() interface {
	Start(context.Context) error
	Stop(context.Context) error
} {
	a.gated.Store(true)
	return drainSignal{a}
}

type drainSignal struct{ a *Admin }

func (d drainSignal) Start(context.Context) error { d.a.started.Store(true); return nil }

func (d drainSignal) Stop(ctx context.Context) error {
	d.a.Drain()
	if d.a.drainDelay > 0 {
		t := time.NewTimer(d.a.drainDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return nil
}

// NATSConnected is a readiness check that passes while the connection conn
// returns is connected. conn is called on every check, so it may be a
// method value like svc.NATSConn, whose connection only exists once the
// service started.
func NATSConnected(conn func() *nats.Conn) Check {
	return func(context.Context) error {
		nc := conn()
		if nc == nil {
			return errors.New("no NATS connection")
		}
		if st := nc.Status(); st != nats.CONNECTED {
			return fmt.Errorf("NATS connection %s", strings.ToLower(st.String()))
		}
		return nil
	}
}

// Closed is a readiness check that passes once ch is closed, e.g. a
// Service's Ready() channel.
func Closed(ch <-chan struct{}) Check {
	return func(context.Context) error {
		select {
		case <-ch:
			return nil
		default:
			return errors.New("not started")
		}
	}
}
