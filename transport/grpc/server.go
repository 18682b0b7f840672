package grpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	"github.com/ferry-go/ferry/transport/internal/callctx"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Defaults of the server options.
const (
	DefaultMaxConcurrentStreams = 1024
	DefaultMaxRecvMsgSize       = 4 << 20
	DefaultMaxSendMsgSize       = 4 << 20
	// DefaultStreamWorkers is how many goroutines serve calls by default
	// (WithStreamWorkers).
	DefaultStreamWorkers = 64
)

// Keepalive settings: the server pings a connection idle for
// keepaliveTime and drops it when no answer comes within keepaliveTimeout;
// clients may ping at most every minPingInterval, also with no call open.
const (
	keepaliveTime    = 2 * time.Minute
	keepaliveTimeout = 20 * time.Second
	minPingInterval  = 10 * time.Second
)

// ServerOption configures a Server.
type ServerOption func(*serverConfig)

type serverConfig struct {
	lis            net.Listener
	maxStreams     uint32
	maxRecv        int
	maxSend        int
	defaultTimeout time.Duration
	maxTimeout     time.Duration
	extra          []grpc.ServerOption
	streamWorkers  uint32
	tls            *tls.Config
	strictNumbers  bool // WithStrictFieldNumbers
}

// WithListener makes the server accept calls on l instead of listening on
// its address. The server closes l when it stops; after a failed Start, l
// is still the caller's to close.
func WithListener(l net.Listener) ServerOption {
	return func(c *serverConfig) { c.lis = l }
}

// WithStreamWorkers sets how many long-lived goroutines serve calls
// (default DefaultStreamWorkers; 0: a new goroutine for every call, as
// grpc-go does by default). A call that finds every worker busy still
// gets a goroutine of its own, so this bounds nothing; it saves what a new
// goroutine costs a call whose handler and middleware need more stack than
// a new goroutine has: growing and copying it on every call (measured in
// bench/: about 2 µs of CPU per call with the default middleware, a
// quarter of the server's CPU per call). Idle workers keep their grown
// stacks; grpc-go replaces each one after 65,536 calls to shed a stack
// grown by a rare deep call. It is grpc-go's NumStreamWorkers.
func WithStreamWorkers(n uint32) ServerOption {
	return func(c *serverConfig) { c.streamWorkers = n }
}

// WithMaxConcurrentStreams limits the calls in flight on one connection
// (default 1024; 0 keeps the default).
func WithMaxConcurrentStreams(n uint32) ServerOption {
	return func(c *serverConfig) {
		if n > 0 {
			c.maxStreams = n
		}
	}
}

// WithMaxRecvMsgSize limits the size of a request message in bytes (default
// 4 MiB; 0 keeps the default); larger ones are refused with
// ResourceExhausted. A negative size is reported by Start.
func WithMaxRecvMsgSize(n int) ServerOption {
	return func(c *serverConfig) {
		if n != 0 {
			c.maxRecv = n
		}
	}
}

// WithMaxSendMsgSize limits the size of a reply message in bytes (default
// 4 MiB; 0 keeps the default); a larger reply fails the call with
// ResourceExhausted. A negative size is reported by Start.
func WithMaxSendMsgSize(n int) ServerOption {
	return func(c *serverConfig) {
		if n != 0 {
			c.maxSend = n
		}
	}
}

// WithDefaultTimeout sets the deadline of calls that arrive without a
// grpc-timeout (default transport.DefaultTimeout, 30s; 0 or less keeps the
// default).
func WithDefaultTimeout(d time.Duration) ServerOption {
	return func(c *serverConfig) {
		if d > 0 {
			c.defaultTimeout = d
		}
	}
}

// WithMaxTimeout caps the deadline a caller may ask for in grpc-timeout
// (default transport.DefaultMaxTimeout, 5m; 0 or less keeps the default):
// a longer one is cut to it, so no caller holds a handler for hours.
func WithMaxTimeout(d time.Duration) ServerOption {
	return func(c *serverConfig) {
		if d > 0 {
			c.maxTimeout = d
		}
	}
}

// WithTLS serves TLS with cfg, which needs a certificate; set cfg.ClientCAs
// and cfg.ClientAuth (tls.RequireAndVerifyClientCert) for mutual TLS. The
// registry entry then says TLS (ServesTLS), so client.Client dials it with
// TLS.
func WithTLS(cfg *tls.Config) ServerOption {
	return func(c *serverConfig) { c.tls = cfg }
}

// WithServerOptions passes options to grpc.NewServer after Ferry's own, so
// they win where both set the same thing (keepalive, message sizes, TLS
// credentials, interceptors, stats handlers). Forcing another codec breaks
// Ferry's wire behaviour.
func WithServerOptions(opts ...grpc.ServerOption) ServerOption {
	return func(c *serverConfig) { c.extra = append(c.extra, opts...) }
}

// Server serves one Ferry server over gRPC, with the health and reflection
// services beside it. It implements server.Transport. Create it with
// NewServer.
//
// Keepalive is set explicitly: the server pings a connection idle for two
// minutes and closes it if no answer comes within 20 seconds; clients may
// send keepalive pings every 10 seconds at most, also with no call open.
// WithServerOptions can override both.
type Server struct {
	addr string
	cfg  serverConfig

	mu      sync.Mutex
	started bool
	lis     net.Listener
	gs      *grpc.Server
	health  *health.Server
	name    string        // the health service name
	served  chan struct{} // closed when Serve returns
}

var _ server.Transport = (*Server)(nil)

// NewServer returns a gRPC transport that listens on addr ("host:port",
// e.g. ":9090" or "127.0.0.1:0") when started. Invalid option values are
// reported by Start.
func NewServer(addr string, opts ...ServerOption) *Server {
	cfg := serverConfig{
		maxStreams: DefaultMaxConcurrentStreams,
		maxRecv:    DefaultMaxRecvMsgSize,
		maxSend:    DefaultMaxSendMsgSize,

		streamWorkers: DefaultStreamWorkers,

		defaultTimeout: transport.DefaultTimeout,
		maxTimeout:     transport.DefaultMaxTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return &Server{addr: addr, cfg: cfg}
}

func (c *serverConfig) validate() error {
	switch {
	case c.maxStreams == 0:
		return errors.New("grpc: max concurrent streams must be positive")
	case c.maxRecv <= 0:
		return fmt.Errorf("grpc: max receive message size %d must be positive", c.maxRecv)
	case c.maxSend <= 0:
		return fmt.Errorf("grpc: max send message size %d must be positive", c.maxSend)
	}
	return nil
}

// Addr returns the address the server listens on, or nil before Start.
func (t *Server) Addr() net.Addr {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lis == nil {
		return nil
	}
	return t.lis.Addr()
}

// Advertise implements server.Advertiser: "grpc" and the bound host:port.
func (t *Server) Advertise() (transport, address string, ok bool) {
	a := t.Addr()
	if a == nil {
		return "", "", false
	}
	return "grpc", a.String(), true
}

// ServesTLS implements server.TLSReporter: true with WithTLS.
func (t *Server) ServesTLS() bool { return t.cfg.tls != nil }

// Start builds the gRPC service for s, checks that every endpoint's types
// have a protobuf form (naming the endpoint and field when one does not),
// listens and serves in the background. It returns once calls are
// accepted; health then reports SERVING for "" and for ServiceName(s.Name()).
func (t *Server) Start(ctx context.Context, s *server.Server) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started {
		return errors.New("grpc: server already started")
	}
	if err := t.cfg.validate(); err != nil {
		return err
	}
	if err := s.Err(); err != nil {
		return err
	}
	res, err := describe(s)
	if err == nil && t.cfg.strictNumbers {
		err = checkTagged(s)
	}
	if err != nil {
		return err
	}
	lis := t.cfg.lis
	if lis == nil {
		var lc net.ListenConfig
		if lis, err = lc.Listen(ctx, "tcp", t.addr); err != nil {
			return fmt.Errorf("grpc: listen on %s: %w", t.addr, err)
		}
	}

	opts := append([]grpc.ServerOption{
		grpc.ForceServerCodecV2(wireCodec{}),
		grpc.MaxConcurrentStreams(t.cfg.maxStreams),
		grpc.MaxRecvMsgSize(t.cfg.maxRecv),
		grpc.MaxSendMsgSize(t.cfg.maxSend),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: minPingInterval, PermitWithoutStream: true}),
		grpc.UnknownServiceHandler(unknownMethod),
		grpc.NumStreamWorkers(t.cfg.streamWorkers),
	}, t.cfg.extra...)
	if t.cfg.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(t.cfg.tls)))
	}
	gs := grpc.NewServer(opts...)
	gs.RegisterService(t.serviceDesc(s), nil)

	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	ropts := reflection.ServerOptions{Services: gs, DescriptorResolver: res, ExtensionResolver: protoregistry.GlobalTypes}
	reflectionv1.RegisterServerReflectionServer(gs, reflection.NewServerV1(ropts))
	reflectionv1alpha.RegisterServerReflectionServer(gs, reflection.NewServer(ropts))

	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(grpcService(s), healthpb.HealthCheckResponse_SERVING)

	t.started, t.lis, t.gs, t.health, t.name = true, lis, gs, hs, grpcService(s)
	t.served = make(chan struct{})
	logger := s.Logger()
	go func() {
		defer close(t.served)
		if err := gs.Serve(lis); err != nil {
			logger.Error("grpc: serve failed", "addr", lis.Addr().String(), "error", err)
		}
	}()
	return nil
}

// SetServing sets the health status of "" and of the service to SERVING
// or NOT_SERVING, so gRPC health checks follow the service's readiness —
// e.g. telemetry.Admin's OnDrain, or a dependency going down. It does
// nothing before Start or after Stop.
func (t *Server) SetServing(serving bool) {
	t.mu.Lock()
	hs, name := t.health, t.name
	t.mu.Unlock()
	if hs == nil {
		return
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	hs.SetServingStatus("", st)
	hs.SetServingStatus(name, st)
}

// Stop marks every service NOT_SERVING in health, stops accepting calls and
// waits for the calls in flight. If ctx ends first, the remaining calls are
// cut off (their handlers see their context canceled) and ctx's error is
// returned. Stop before a successful Start does nothing.
func (t *Server) Stop(ctx context.Context) error {
	t.mu.Lock()
	gs, hs, served := t.gs, t.health, t.served
	t.mu.Unlock()
	if gs == nil {
		return nil
	}
	hs.Shutdown()
	graceful := make(chan struct{})
	go func() {
		defer close(graceful)
		gs.GracefulStop()
	}()
	var err error
	select {
	case <-graceful:
	case <-ctx.Done():
		gs.Stop()
		<-graceful
		err = ctx.Err()
	}
	<-served
	return err
}

// unknownMethod answers calls to services or methods nobody registered:
// Unimplemented, the gRPC standard every client, proxy and test suite
// expects, with a message naming the full method (grpc-go's own names the
// service and the method apart).
func unknownMethod(_ any, stream grpc.ServerStream) error {
	m, _ := grpc.MethodFromServerStream(stream)
	return status.Error(codes.Unimplemented, "unknown method "+m)
}

// serviceDesc describes s's endpoints as the methods and streams of one
// gRPC service.
func (t *Server) serviceDesc(s *server.Server) *grpc.ServiceDesc {
	name := grpcService(s)
	eps := s.Endpoints()
	desc := &grpc.ServiceDesc{
		ServiceName: name,
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{},
		Streams:     []grpc.StreamDesc{},
		Metadata:    filePath(s.Name()),
	}
	if sd := s.ProtoService(); sd != nil {
		desc.Metadata = sd.ParentFile().Path()
	}
	for _, ep := range eps {
		full := "/" + name + "/" + ep.Name
		if ep.Kind != transport.Unary {
			desc.Streams = append(desc.Streams, t.streamDesc(s, ep, full))
			continue
		}
		desc.Methods = append(desc.Methods, grpc.MethodDesc{
			MethodName: ep.Name,
			Handler:    t.methodHandler(s, ep, &grpc.UnaryServerInfo{FullMethod: full}),
		})
	}
	return desc
}

// call is everything one served call needs, in one allocation.
type call struct {
	ctx   callctx.Ctx
	call  transport.Call
	cc    callctx.Carrier // the handler's context: ctx (or grpc-go's) with call
	in    incoming
	out   transport.LazyMetadata
	frame frame
}

func (t *Server) methodHandler(s *server.Server, ep *server.Endpoint, info *grpc.UnaryServerInfo) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	h := ep.Handler
	name := s.Name()
	timeout, maxTimeout := t.cfg.defaultTimeout, t.cfg.maxTimeout
	logger := s.Logger()
	tlsOn := t.cfg.tls != nil
	jsonDec := s.JSON() // server.WithJSON's, for grpc+json calls
	// serve runs the endpoint for the decoded req; it is what interceptors wrap.
	serve := func(ctx context.Context, c *call, req any) (any, error) {
		c.in.ctx = ctx
		c.call = transport.Call{
			Service:  name,
			Endpoint: ep.Name,
			Kind:     transport.GRPC,
			Request:  &c.in,
			Reply:    &c.out,
			Method:   info.FullMethod,
			TLS:      tlsOn,
		}
		setPeer(ctx, &c.call)
		c.call.Deadline, _ = ctx.Deadline()
		c.cc = callctx.Carrier{Context: ctx, Call: &c.call}
		resp, err := h(&c.cc, req)
		if len(c.out.MD) > 0 {
			// grpc.SetHeader fails only once headers went out, which a
			// unary reply's have not; it does not check the pairs.
			_ = grpc.SetHeader(ctx, validMetadata(logger, ep.Name, c.out.MD))
		}
		if len(c.call.Trailer) > 0 {
			_ = grpc.SetTrailer(ctx, validMetadata(logger, ep.Name, c.call.Trailer))
		}
		if err != nil {
			return nil, statusError(err)
		}
		return resp, nil
	}
	return func(_ any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		c := new(call)
		if err := dec(&c.frame); err != nil {
			return nil, err // grpc-go's own status: too large, canceled, ...
		}
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > maxTimeout {
			bound := timeout // the default, or the maximum for a longer deadline
			if ok {
				bound = maxTimeout
			}
			c.ctx.Init(ctx, time.Now().Add(bound)) // costs nothing until someone waits on it
			defer c.ctx.Release()
			ctx = &c.ctx
		}
		// Admission before decoding, weighed by the message's size.
		size := int64(c.frame.data.Len())
		if err := s.Admit(ctx, size); err != nil {
			c.frame.data.Free()
			return nil, statusError(err)
		}
		defer s.Release(size)
		asJSON := isJSON(ctx)
		req := ep.NewRequest()
		var err error
		if asJSON {
			err = decodeJSON(jsonDec, c.frame.data, req)
		} else {
			err = unmarshal(c.frame.data, req)
		}
		c.frame.data.Free()
		c.frame.data = nil
		if err != nil {
			return nil, badRequest(err)
		}
		var resp any
		if interceptor == nil {
			resp, err = serve(ctx, c, req) // errors are statuses already
		} else {
			resp, err = interceptor(ctx, req, info, func(ctx context.Context, req any) (any, error) {
				return serve(ctx, c, req)
			})
			if err != nil {
				err = statusError(err)
			}
		}
		if err != nil {
			return nil, err
		}
		if asJSON {
			return encodeJSON(ctx, logger, ep.Name, resp)
		}
		return resp, nil
	}
}

// isJSON reports whether the call came as application/grpc+json. grpc-go
// keeps the content-subtype on its server stream; the content-type
// metadata says the same where that stream is not at hand.
func isJSON(ctx context.Context) bool {
	if st, ok := grpc.ServerTransportStreamFromContext(ctx).(interface{ ContentSubtype() string }); ok {
		return strings.EqualFold(st.ContentSubtype(), jsonSubtype)
	}
	for _, ct := range metadata.ValueFromIncomingContext(ctx, "content-type") {
		if sub, ok := strings.CutPrefix(strings.ToLower(ct), "application/grpc+"); ok {
			sub, _, _ = strings.Cut(sub, ";")
			return strings.TrimSpace(sub) == jsonSubtype
		}
	}
	return false
}

// encodeJSON is the reply of a grpc+json call: resp encoded as the HTTP
// transport encodes a JSON reply, sent by wireCodec as it is.
func encodeJSON(ctx context.Context, logger *slog.Logger, endpoint string, resp any) (any, error) {
	b, err := codec.JSON.Marshal(resp)
	if err != nil {
		logger.ErrorContext(ctx, "grpc: encoding JSON reply failed", "endpoint", endpoint, "error", err)
		return nil, status.Error(codes.Internal, "encoding the reply failed")
	}
	return encoded(b), nil
}

// setPeer sets the call's Peer from the connection, and TLS when the
// connection has TLS credentials (given with WithServerOptions too).
func setPeer(ctx context.Context, c *transport.Call) {
	if p, ok := peer.FromContext(ctx); ok {
		if p.Addr != nil {
			c.Peer = p.Addr.String()
		}
		if _, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			c.TLS = true
		}
	}
}
