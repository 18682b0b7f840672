package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/server"
	"github.com/nats-io/nuid"
)

// Component is anything with a lifecycle that a Service starts and stops:
// transports, an embedded NATS server, a registry heartbeat.
type Component interface {
	// Start begins the component's work and returns once it is ready.
	Start(ctx context.Context) error
	// Stop ends it, waiting for in-flight work until ctx is done.
	Stop(ctx context.Context) error
}

// Listener is implemented by a component that listens on an address of
// its own which is not a transport (an admin server, say): the service's
// "started" log line shows it beside the transports' addresses. It is not
// registered in the registry.
type Listener interface {
	// ListenAddr names what listens ("admin") and where
	// ("http://[::]:9464"); ok is false while it does not listen.
	ListenAddr() (name, addr string, ok bool)
}

// Checker is implemented by a component that can tell whether it works —
// a transport whose subscription has ended, say. Service.Check asks every
// started one; it fits a readiness check.
type Checker interface {
	Check(ctx context.Context) error
}

// Service runs a server.Server over the configured transports and owns
// their lifecycle. Create it with New; Run it once.
type Service struct {
	srv             *server.Server
	components      []Component
	shutdownTimeout time.Duration
	signals         []os.Signal
	logger          *slog.Logger
	errs            []error

	connections []Component // WithConnection: first to start, last to stop

	broker *brokerComponent

	registrar     registry.Registrar
	makeRegistrar func(ctx context.Context) (registry.Registrar, error)
	advertiseHost string
	instance      registry.Instance

	mu      sync.Mutex
	state   int // stateNew until Start, then stateRunning, stateDone once stopped or failed
	started []Component
	ready   chan struct{}
}

const (
	stateNew = iota
	stateRunning
	stateDone
)

// Option configures a Service.
type Option func(*Service)

// WithTransport adds a transport. Transports start in the order given and
// stop in reverse.
func WithTransport(t server.Transport) Option {
	return func(s *Service) { s.components = append(s.components, &transportComponent{t: t, srv: s.srv}) }
}

// WithComponent adds a lifecycle component, started in the order given
// among transports and other components, and stopped in reverse.
func WithComponent(c Component) Option {
	return func(s *Service) { s.components = append(s.components, c) }
}

// WithConnection adds a component the others need while they run — an
// embedded NATS server, a NATS connection (fnats.Connect), a database pool:
// connections start first, in the order given, before the broker, the
// transports and the registration, and stop last, in reverse, once
// everything that uses them has drained.
func WithConnection(c Component) Option {
	return func(s *Service) {
		if c == nil {
			s.errs = append(s.errs, errors.New("ferry: WithConnection(nil)"))
			return
		}
		s.connections = append(s.connections, c)
	}
}

// WithRegistry registers the service in r once every transport has
// started — one instance carrying the advertised address of each transport
// that implements server.Advertiser — and deregisters it at stop before
// any transport drains, so callers stop picking it while in-flight calls
// finish. Registries with a TTL keep the entry alive on their own.
func WithRegistry(r registry.Registrar) Option {
	return func(s *Service) { s.registrar = r }
}

// WithRegistryFrom makes the registrar at start, once the connections
// (WithConnection) are up — the NATS registry on the service's NATS
// connection, say — then registers as WithRegistry does. A registrar with a
// Close() error method is closed at stop, after deregistering.
func WithRegistryFrom(f func(ctx context.Context) (registry.Registrar, error)) Option {
	return func(s *Service) {
		if f == nil {
			s.errs = append(s.errs, errors.New("ferry: WithRegistryFrom(nil)"))
			return
		}
		s.makeRegistrar = f
	}
}

// WithAdvertiseHost sets the host put into advertised addresses whose
// listener is bound to an unspecified address (":8080", "0.0.0.0:8080").
// The default is the machine's first non-loopback IPv4 address, or
// 127.0.0.1 when it has none. In Kubernetes pass the pod IP (status.podIP).
func WithAdvertiseHost(host string) Option {
	return func(s *Service) { s.advertiseHost = host }
}

// WithShutdownTimeout bounds the graceful drain at stop (default 15s); after
// it, transports cut off what is still in flight.
func WithShutdownTimeout(d time.Duration) Option {
	return func(s *Service) { s.shutdownTimeout = d }
}

// WithSignals sets the signals that make Run stop (default SIGINT and
// SIGTERM). WithSignals() with none disables signal handling.
func WithSignals(sig ...os.Signal) Option {
	return func(s *Service) { s.signals = sig }
}

// WithLogger sets the logger for lifecycle events (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.logger = l } }

// New returns a Service that serves srv. Nothing starts until Run or Start.
func New(srv *server.Server, opts ...Option) *Service {
	s := &Service{
		srv:             srv,
		shutdownTimeout: 15 * time.Second,
		signals:         []os.Signal{os.Interrupt, syscall.SIGTERM},
		logger:          srv.Logger(),
		ready:           make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	if s.registrar != nil || s.makeRegistrar != nil {
		s.components = append(s.components, &registration{s: s})
	}
	if s.shutdownTimeout <= 0 {
		s.errs = append(s.errs, fmt.Errorf("ferry: shutdown timeout %v must be positive", s.shutdownTimeout))
	}
	return s
}

// Server returns the served server.
func (s *Service) Server() *server.Server { return s.srv }

// Ready is closed once Start has started every component.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Addr returns the address the service's transport of kind ("http",
// "grpc", "nats", or a plug-in's name) serves on, as it would register it
// ("http://127.0.0.1:8080", "127.0.0.1:9090"), once started — or where a
// started component of that name listens ("admin": "http://127.0.0.1:9464",
// a Listener); ok is false when nothing started of that kind tells its
// address (server.Advertiser, Listener).
func (s *Service) Addr(kind string) (addr string, ok bool) {
	s.mu.Lock()
	started := slices.Clone(s.started)
	s.mu.Unlock()
	for _, c := range started {
		if tc, isT := c.(*transportComponent); isT {
			if a, isA := tc.t.(server.Advertiser); isA {
				if k, addr, ok := a.Advertise(); ok && k == kind {
					return addr, true
				}
			}
			continue
		}
		if l, isL := c.(Listener); isL {
			if name, addr, ok := l.ListenAddr(); ok && name == kind {
				return addr, true
			}
		}
	}
	return "", false
}

// Check reports whether the service works: an error before Start or after
// Stop, else the joined errors of the started components (transports
// included) that implement Checker and fail, nil when none does. The NATS
// transport fails it once its subscription has ended or its connection is
// not connected. It fits a readiness check (telemetry.Admin's AddCheck).
func (s *Service) Check(ctx context.Context) error {
	s.mu.Lock()
	started := slices.Clone(s.started)
	s.mu.Unlock()
	if len(started) == 0 {
		return errors.New("ferry: service not running")
	}
	select {
	case <-s.ready:
	default:
		return errors.New("ferry: service starting")
	}
	var list []error
	for _, c := range started {
		var x any = c
		if tc, ok := c.(*transportComponent); ok {
			x = tc.t
		}
		if ch, ok := x.(Checker); ok {
			if err := ch.Check(ctx); err != nil {
				list = append(list, err)
			}
		}
	}
	return errors.Join(list...)
}

// Instance returns the registry entry of the running service (its ID and
// advertised endpoints); it is the zero Instance unless WithRegistry is set
// and the service has started.
func (s *Service) Instance() registry.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.instance
}

// Run starts the service, blocks until ctx is done or one of the stop
// signals arrives, then stops it within the shutdown timeout. It returns nil
// after a clean stop, or the start or stop errors. A ctx that ends (or a
// signal that arrives) while the service is still starting is a stop, not
// a failure: Start stops what it started and Run returns nil. Run never
// calls os.Exit.
func (s *Service) Run(ctx context.Context) error {
	if len(s.signals) > 0 {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, s.signals...)
		defer stop()
	}
	if err := s.Start(ctx); err != nil {
		if ctx.Err() != nil {
			s.logger.Info("ferry: stopped while starting", "service", s.srv.Name(), "cause", context.Cause(ctx), "start", err)
			return nil
		}
		return err
	}
	<-ctx.Done()
	s.logger.Info("ferry: stopping", "service", s.srv.Name(), "timeout", s.shutdownTimeout)
	began := time.Now()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
	defer cancel()
	err := s.Stop(stopCtx)
	if err != nil {
		s.logger.Error("ferry: stopped with errors", "service", s.srv.Name(), "took", time.Since(began).Round(time.Millisecond), "error", err)
	} else {
		s.logger.Info("ferry: stopped", "service", s.srv.Name(), "took", time.Since(began).Round(time.Millisecond))
	}
	return err
}

// Start checks the registration, freezes the server and starts every
// component in order. If one fails, those already started are stopped in
// reverse order and the joined errors are returned.
//
// A Service runs once: Start while it runs, or after it stopped or failed to
// start, returns an error; build a new Service to start again.
func (s *Service) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	state := s.state
	if state == stateNew {
		s.state = stateRunning
	}
	s.mu.Unlock()
	switch state {
	case stateRunning:
		return fmt.Errorf("ferry: service %q already started", s.srv.Name())
	case stateDone:
		return fmt.Errorf("ferry: service %q has stopped and cannot be restarted: a Service runs once; build a new one with ferry.New", s.srv.Name())
	}
	defer func() {
		if err != nil {
			s.mu.Lock()
			s.state = stateDone
			s.mu.Unlock()
		}
	}()
	if err := errors.Join(append(s.errs, s.srv.Err())...); err != nil {
		return err
	}
	if len(s.components) == 0 && s.broker == nil {
		return errors.New("ferry: no transport configured")
	}
	if len(s.srv.Endpoints()) == 0 && (s.broker == nil || len(s.broker.subs) == 0) && !s.publishes() {
		return fmt.Errorf("ferry: service %q has no endpoints, no subscriptions and no component that publishes (an outbox relay)", s.srv.Name())
	}
	s.srv.Freeze()
	for _, c := range s.startOrder() {
		if err := c.Start(ctx); err != nil {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
			defer cancel()
			return errors.Join(err, s.Stop(stopCtx))
		}
		s.mu.Lock()
		s.started = append(s.started, c)
		s.mu.Unlock()
	}
	close(s.ready)
	s.logger.Info("ferry: started", append([]any{"service", s.srv.Name(), "version", s.srv.Version()}, s.listening()...)...)
	return nil
}

// listening returns, as log attributes, every address the started service
// serves on: "http", "http://[::]:8080", "grpc", "[::]:9090", "nats",
// "nats://127.0.0.1:4222", and those of components that are Listeners.
func (s *Service) listening() []any {
	var attrs []any
	for _, c := range slices.Concat(s.connections, s.components) {
		var t any = c
		if tc, ok := c.(*transportComponent); ok {
			t = tc.t
		}
		switch t := t.(type) {
		case server.Advertiser:
			if kind, addr, ok := t.Advertise(); ok {
				attrs = append(attrs, kind, addr)
			}
		case Listener:
			if name, addr, ok := t.ListenAddr(); ok {
				attrs = append(attrs, name, addr)
			}
		}
	}
	return attrs
}

// Stop stops the started components in reverse order of start, each
// draining until ctx is done; every component is stopped even when an
// earlier one fails, and the errors are joined. Check fails from the moment
// Stop is called, so a readiness probe turns away new traffic first.
//
// The transports stop together, in the place of the last one started: each
// stops accepting new calls at once and then drains its in-flight calls,
// concurrently with the others, under the one deadline of ctx — no
// transport takes new calls while another drains.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.started = nil
	if s.state == stateRunning {
		s.state = stateDone
	}
	s.mu.Unlock()
	var errs []error
	transportsStopped := false
	for i := len(started) - 1; i >= 0; i-- {
		c := started[i]
		if !isTransport(c) {
			if err := c.Stop(ctx); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if !transportsStopped { // at the last transport started: all of them
			transportsStopped = true
			errs = append(errs, stopTogether(ctx, slices.DeleteFunc(slices.Clone(started), func(c Component) bool { return !isTransport(c) }))...)
		}
	}
	return errors.Join(errs...)
}

// publishes reports whether a component publishes through the service's
// broker (BrokerUser): a relay-only service has work without endpoints.
func (s *Service) publishes() bool {
	for _, c := range s.components {
		if _, ok := unwrap(c).(BrokerUser); ok {
			return true
		}
	}
	return false
}

// isTransport tells the components that serve calls, which Stop stops
// together.
func isTransport(c Component) bool {
	switch c.(type) {
	case *transportComponent:
		return true
	}
	return false
}

// stopTogether stops cs concurrently and returns their errors in the order
// of cs.
func stopTogether(ctx context.Context, cs []Component) []error {
	if len(cs) == 1 {
		if err := cs[0].Stop(ctx); err != nil {
			return []error{err}
		}
		return nil
	}
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() { errs[i] = c.Stop(ctx) })
	}
	wg.Wait()
	return slices.DeleteFunc(errs, func(err error) bool { return err == nil })
}

type transportComponent struct {
	t   server.Transport
	srv *server.Server
}

func (c *transportComponent) Start(ctx context.Context) error { return c.t.Start(ctx, c.srv) }
func (c *transportComponent) Stop(ctx context.Context) error  { return c.t.Stop(ctx) }

// startOrder is the order Start starts the components in; Stop stops them
// in reverse: the connections (WithConnection), in the order given; the
// broker, so that handlers can publish from their first call; the
// transports and other components, in the order given; the subscriptions,
// once there are transports to serve what they trigger; the registration,
// once everything serves. So at stop the registration goes first, the
// subscriptions stop taking messages, the transports drain (their handlers
// can still publish), and only then do the broker and the connections
// close.
func (s *Service) startOrder() []Component {
	out := slices.Clone(s.connections)
	if s.broker != nil {
		out = append(out, brokerOpen{s.broker})
	}
	var reg, announcers []Component
	for _, c := range s.components {
		if r, ok := c.(*registration); ok {
			reg = append(reg, r)
			continue
		}
		if u, ok := unwrap(c).(BrokerUser); ok && s.broker != nil {
			u.UseBroker(s.Broker)
		}
		if a, ok := unwrap(c).(PeerAnnouncer); ok {
			a.SetPeers(s.advertised)
			announcers = append(announcers, c)
			continue
		}
		out = append(out, c)
	}
	out = append(out, announcers...) // once the others advertise their addresses
	if s.broker != nil {
		out = append(out, brokerSubs{s.broker})
	}
	return append(out, reg...)
}

// advertised returns the endpoints of the started transports that
// advertise an address, with an unspecified host filled in.
func (s *Service) advertised() []registry.Endpoint {
	host := s.advertiseHost
	if host == "" {
		host = defaultAdvertiseHost()
	}
	var eps []registry.Endpoint
	for _, c := range s.components {
		t := unwrap(c)
		a, ok := t.(server.Advertiser)
		if !ok {
			continue
		}
		kind, addr, ok := a.Advertise()
		if !ok {
			continue
		}
		ep := registry.Endpoint{Transport: kind, Address: fillHost(addr, host)}
		if r, ok := t.(server.TLSReporter); ok {
			ep.TLS = r.ServesTLS()
		}
		eps = append(eps, ep)
	}
	return eps
}

// unwrap is the transport of a transport component, or c itself.
func unwrap(c Component) any {
	if tc, ok := c.(*transportComponent); ok {
		return tc.t
	}
	return c
}

// PeerAnnouncer is implemented by transports whose discovery answers
// describe the whole instance (the NATS transport's $SRV.INFO): a Service
// starts them after its other transports and gives them a function that
// returns every transport's endpoint (as it would register them).
type PeerAnnouncer interface {
	SetPeers(func() []registry.Endpoint)
}

// registration is the last component: it registers once all transports
// serve and deregisters first at stop.
type registration struct {
	s   *Service
	reg registry.Registrar // the one in use while started
}

func (r *registration) Start(ctx context.Context) error {
	s := r.s
	r.reg = s.registrar
	if s.makeRegistrar != nil {
		reg, err := s.makeRegistrar(ctx)
		if err != nil {
			return fmt.Errorf("ferry: make the registry: %w", err)
		}
		if reg == nil {
			return errors.New("ferry: WithRegistryFrom returned a nil registrar")
		}
		r.reg = reg
	}
	if len(s.srv.Endpoints()) == 0 {
		// Subscriptions only: nothing to call, so nothing to register. The
		// registry still serves the service's own calls (config.Client).
		s.logger.Debug("ferry: nothing to register: the service has subscriptions only", "service", s.srv.Name())
		return nil
	}
	in := registry.Instance{ID: nuid.Next(), Service: s.srv.Name(), Version: s.srv.Version()}
	md, err := registry.Describe(s.srv)
	if err != nil {
		_ = r.closeMade()
		return fmt.Errorf("ferry: %w", err)
	}
	in.Metadata = md
	in.Endpoints = s.advertised()
	if len(in.Endpoints) == 0 {
		_ = r.closeMade()
		return fmt.Errorf("ferry: registry: no transport of %q advertises an address", s.srv.Name())
	}
	if err := r.reg.Register(ctx, in); err != nil {
		if errs.CodeOf(err) == errs.Unimplemented {
			// A read-only registry (static, DNS) lists instances managed
			// elsewhere; it still serves the service's own calls.
			s.logger.Info("ferry: not registered: the registry is read-only", "service", in.Service, "reason", err.Error())
			return nil
		}
		r.closeMade()
		return fmt.Errorf("ferry: register %s/%s: %w", in.Service, in.ID, err)
	}
	s.mu.Lock()
	s.instance = in
	s.mu.Unlock()
	s.logger.Info("ferry: registered", "service", in.Service, "id", in.ID, "endpoints", in.Endpoints)
	return nil
}

func (r *registration) Stop(ctx context.Context) error {
	s := r.s
	s.mu.Lock()
	in := s.instance
	s.instance = registry.Instance{}
	s.mu.Unlock()
	if in.ID == "" {
		return r.closeMade()
	}
	var errList []error
	if err := r.reg.Deregister(ctx, in); err != nil {
		errList = append(errList, fmt.Errorf("ferry: deregister %s/%s: %w", in.Service, in.ID, err))
	}
	return errors.Join(append(errList, r.closeMade())...)
}

// closeMade closes a registrar WithRegistryFrom made, if it can be closed.
func (r *registration) closeMade() error {
	reg := r.reg
	r.reg = nil
	if r.s.makeRegistrar == nil || reg == nil {
		return nil
	}
	if c, ok := reg.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// fillHost replaces an unspecified host in addr (host:port, or a URL
// whose authority is host:port) with host.
func fillHost(addr, host string) string {
	prefix, hostport := "", addr
	if i := strings.Index(addr, "://"); i >= 0 {
		prefix, hostport = addr[:i+3], addr[i+3:]
	}
	h, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
		return prefix + net.JoinHostPort(host, port)
	}
	return addr
}

func defaultAdvertiseHost() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
