package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/transport"
	"github.com/ferry-go/ferry/transport/callkit"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fnats "github.com/ferry-go/ferry/transport/nats"
)

// Client calls services by name. It implements transport.Client and is
// safe for concurrent use. Create it with New; Close it when done.
type Client struct {
	d    registry.Discovery
	cfg  config
	nats transport.Client // nil without WithNATS

	defaultRoute *route
	byName       map[string]*route            // "Endpoint" configs
	bySvc        map[string]map[string]*route // "service/Endpoint" configs

	// ctx bounds the watches, which outlive any one call.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	services map[string]*service
	closed   atomic.Bool
}

var _ transport.Client = (*Client)(nil)

// route is the composed chain for calls to some endpoints.
type route struct {
	h       middleware.Handler
	timeout time.Duration
}

// New returns a client finding services through d. Options are checked
// here: an invalid one is an error.
func New(d registry.Discovery, opts ...Option) (*Client, error) {
	if d == nil {
		return nil, errors.New("client: nil Discovery")
	}
	cfg := config{
		transports: []string{"nats", "grpc", "http"},
		dialers:    map[transport.Kind]Dialer{transport.GRPC: nil, transport.HTTP: dialHTTP}, // gRPC's below
		timeout:    DefaultTimeout,
		newSel:     P2C,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		o(&cfg)
	}
	if cfg.dialers[transport.GRPC] == nil { // not replaced WithDialer
		cfg.dialers[transport.GRPC] = dialGRPC(cfg.grpcOpts)
		if len(cfg.grpcOpts) > 0 {
			// fgrpc.NewClient checks its options and connects only on the
			// first call: trying them here reports a bad one now, not as
			// every instance's dial failure.
			if c, err := fgrpc.NewClient("passthrough:///check", cfg.grpcOpts...); err != nil {
				cfg.fail(fmt.Errorf("client: WithGRPCOptions: %w", err))
			} else {
				_ = c.Close()
			}
		}
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	for _, t := range cfg.transports {
		if _, ok := cfg.dialers[transport.Kind(t)]; !ok && t != "nats" {
			return nil, fmt.Errorf("client: unknown transport %q: want nats, grpc, http or a kind given WithDialer", t)
		}
	}
	if cfg.budget == nil {
		cfg.budget = middleware.NewRetryBudget(0.2, 10)
	}
	o := &cfg.outlier
	if o.ConsecutiveFailures == 0 {
		o.ConsecutiveFailures = 5
	}
	if o.BaseEjectionTime == 0 {
		o.BaseEjectionTime = 30 * time.Second
	}
	if o.MaxEjectedFraction == 0 {
		o.MaxEjectedFraction = 0.5
	}
	c := &Client{d: d, cfg: cfg, services: map[string]*service{}}
	if cfg.nc != nil {
		c.nats = fnats.NewClient(cfg.nc, fnats.WithClientMiddleware(cfg.mws...))
	}
	c.defaultRoute = c.newRoute(EndpointConfig{})
	for name, ec := range cfg.endpoints {
		r := c.newRoute(ec)
		if svc, ep, ok := strings.Cut(name, "/"); ok {
			if c.bySvc == nil {
				c.bySvc = map[string]map[string]*route{}
			}
			if c.bySvc[svc] == nil {
				c.bySvc[svc] = map[string]*route{}
			}
			c.bySvc[svc][ep] = r
			continue
		}
		if c.byName == nil {
			c.byName = map[string]*route{}
		}
		c.byName[name] = r
	}
	// The watches belong to the client, not to any call: Close ends them.
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// newRoute composes the chain for one endpoint configuration.
func (c *Client) newRoute(ec EndpointConfig) *route {
	p := c.cfg.retry
	if ec.Retry != nil {
		p = *ec.Retry
	}
	p.Idempotent = p.Idempotent || ec.Idempotent
	if p.Budget == nil {
		p.Budget = c.cfg.budget
	}
	return &route{h: middleware.Chain(middleware.Bulkhead(ec.Bulkhead), middleware.Retry(p))(c.terminal), timeout: ec.Timeout}
}

func (c *Client) route(service, endpoint string) *route {
	if m := c.bySvc[service]; m != nil {
		if r := m[endpoint]; r != nil {
			return r
		}
	}
	if r := c.byName[endpoint]; r != nil {
		return r
	}
	return c.defaultRoute
}

// callState is one call's state, shared by the chain's end across attempts.
type callState struct {
	call transport.Call
	resp any
	pin  transport.Kind // WithCallTransport's, or ""
}

type stateKey struct{}

// Invoke calls endpoint of service with req and decodes the reply into
// resp (a pointer). Metadata from transport.WithMetadata goes with every
// attempt, and so does the remaining deadline; a context without one gets
// the default timeout. Reply metadata of the last attempt goes to
// transport.CaptureReply's destination. Errors are *errs.Error values: an
// unknown service (no instances, no NATS) is Unavailable: the endpoint
// exists, nothing serves it now. A fully qualified gRPC service name
// ("grpc.health.v1.Health", which transport/grpc's Client calls) is
// InvalidArgument: registries list Ferry services only.
func (c *Client) Invoke(ctx context.Context, service, endpoint string, req, resp any) error {
	if c.closed.Load() {
		return errs.New(errs.FailedPrecondition, "client: closed")
	}
	if service == "" || endpoint == "" {
		return errs.Newf(errs.InvalidArgument, "client: empty service or endpoint name (%q/%q)", service, endpoint)
	}
	if strings.Contains(service, ".") {
		return errs.Newf(errs.InvalidArgument, "client: service %q is a fully qualified gRPC service name, which no registry lists "+
			"(registries list Ferry services, whose names have no '.'): call it with transport/grpc's Client at its address", errs.Clip(service))
	}
	r := c.route(service, endpoint)
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	} else if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.timeout)
		defer cancel()
	}
	st := &callState{
		call: transport.Call{
			Service:  service,
			Endpoint: endpoint,
			Client:   true,
			Request:  transport.OutgoingMetadata(ctx), // read only: each attempt copies it
		},
		resp: resp,
	}
	st.pin, _ = ctx.Value(pinKey{}).(transport.Kind)
	st.call.Deadline, _ = ctx.Deadline()
	ctx = context.WithValue(transport.NewCallContext(ctx, &st.call), stateKey{}, st)
	ctx = callkit.WithParent(ctx, &st.call) // each attempt sends and fills st.call
	out, err := r.h(ctx, req)
	if err != nil {
		return callkit.Received(err, service, endpoint) // the same mapping on every transport
	}
	return callkit.AssignReply(resp, out)
}

// Close stops the watches and closes the transport clients the client
// made; calls in flight over them fail. It is safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock() // service() starts watches under mu: none starts after this
	already := c.closed.Swap(true)
	c.mu.Unlock()
	if already {
		return nil
	}
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	svcs := c.services
	c.services = map[string]*service{}
	c.mu.Unlock()
	var errList []error
	for _, s := range svcs {
		if snap := s.snap.Load(); snap != nil {
			for _, in := range snap.all {
				errList = append(errList, in.shut())
			}
		}
	}
	return errors.Join(errList...)
}

// terminal ends every chain: it sends one attempt.
func (c *Client) terminal(ctx context.Context, req any) (any, error) {
	st, ok := ctx.Value(stateKey{}).(*callState)
	if !ok {
		return nil, errs.New(errs.Internal, "client: middleware replaced the call context")
	}
	st.call.Reply = nil // no stale push-back from an earlier attempt
	// The attempt's transport client sets the wire fields (callkit.WithParent).
	st.call.Method, st.call.Route, st.call.Target, st.call.TLS = "", "", "", false
	s, err := c.service(ctx, st.call.Service)
	if err != nil {
		return nil, err
	}
	att, _ := middleware.AttemptFromContext(ctx)
	if att != nil && s.snap.Load().idem[st.call.Endpoint] {
		att.SetIdempotent() // the service says so in the registry
	}
	in, done, err := s.pick(att, st.pin)
	if err != nil {
		return nil, err
	}
	if in == nil {
		st.call.Kind = transport.NATS
		err = c.nats.Invoke(ctx, st.call.Service, st.call.Endpoint, req, st.resp)
	} else {
		if att != nil {
			att.MarkTried(in.id)
		}
		st.call.Kind = in.kind
		st.call.Peer = in.peer
		st.call.TLS = in.tls
		var tc transport.Client
		if tc, err = in.client(); err == nil {
			err = tc.Invoke(ctx, st.call.Service, st.call.Endpoint, req, st.resp)
		}
		s.release(in, done, err)
	}
	if err != nil {
		return nil, err
	}
	return st.resp, nil
}

type pinKey struct{}

// WithCallTransport returns a copy of ctx in which calls through a Client
// go over transport kind only ("nats", "http", "grpc" or a plug-in's
// kind), whatever the client's preference — for a caller that must choose
// the wire of one call, such as an API explorer behind the gateway
// (gateway.TransportHeader). Instances are selected, retried and broken as
// usual, among those offering kind. A call fails with Unavailable naming
// the service and the transport when no instance offers it (over NATS:
// when the registry knows instances and none offers NATS), and naming the
// transport when the client does not use it (WithTransports; NATS also
// needs WithNATS). An empty kind removes the pin.
func WithCallTransport(ctx context.Context, kind transport.Kind) context.Context {
	return context.WithValue(ctx, pinKey{}, kind)
}

// CallTransport returns the transport WithCallTransport pinned in ctx.
func CallTransport(ctx context.Context) (transport.Kind, bool) {
	k, _ := ctx.Value(pinKey{}).(transport.Kind)
	return k, k != ""
}

// service returns the state of the named service, starting its watch on
// first use, once it has a first set of instances or a first error.
func (c *Client) service(ctx context.Context, name string) (*service, error) {
	c.mu.Lock()
	s := c.services[name]
	if s == nil {
		if c.closed.Load() {
			c.mu.Unlock()
			return nil, errs.New(errs.FailedPrecondition, "client: closed")
		}
		s = newService(c, name)
		c.services[name] = s
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			s.watch(c.ctx)
		}()
	}
	c.mu.Unlock()
	select {
	case <-s.ready:
		return s, nil
	default:
	}
	select {
	case <-s.ready:
		return s, nil
	case <-ctx.Done():
		return nil, errs.Newf(errs.CodeOf(ctx.Err()), "client: waiting for the instances of service %q: %v", name, ctx.Err())
	}
}
