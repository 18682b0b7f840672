// Package server holds transport-neutral endpoints: a Server is a named,
// versioned set of typed handlers behind one middleware chain, which every
// transport (HTTP, gRPC, NATS) serves unchanged.
//
// A handler is a plain function:
//
//	func (g *Greeter) Hello(ctx context.Context, req *HelloRequest) (*HelloReply, error)
//
// registered once with [Handle]. Generics make a wrong signature a compile
// error and the per-call dispatch a type assertion, not reflection. Request
// and reply types may be plain Go structs (encoded as JSON by their json
// tags, and as protobuf through a schema derived from their fields) or
// generated protobuf messages.
//
// Registration errors (a duplicate or malformed name) do not panic: they are
// collected and returned by [Server.Err], which Service.Run checks before
// anything listens.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Transport serves a Server's endpoints over one wire protocol.
//
// Start binds and begins serving, returning once the transport accepts calls
// (it does not block for the life of the server). Stop stops accepting new
// calls and waits for in-flight ones until ctx is done, then cuts the rest
// off. Both are called at most once, Stop only after a successful Start.
type Transport interface {
	Start(ctx context.Context, s *Server) error
	Stop(ctx context.Context) error
}

// Advertiser is implemented by transports that clients can find through a
// service registry. Once the transport has started, Advertise returns its
// transport name ("http", "grpc", "nats") and the address that transport's
// client dials; ok is false before Start or after Stop.
type Advertiser interface {
	Advertise() (transport, address string, ok bool)
}

// TLSReporter is implemented by transports that can serve TLS: ServesTLS
// reports whether this one does, so that its registry entry says clients
// must dial it with TLS (registry.Endpoint.TLS).
type TLSReporter interface {
	ServesTLS() bool
}

var (
	serviceName  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
	endpointName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	semver       = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$`)
)

// Server is a named set of endpoints. Create it with New; it is safe for
// concurrent use, and registration must finish before transports start.
type Server struct {
	name        string
	version     string
	description string
	logger      *slog.Logger
	mws         []middleware.Middleware
	json        codec.Codec
	adm         admission
	passThrough bool // WithErrorPassThrough
	contract    protoreflect.ServiceDescriptor

	mu        sync.RWMutex
	endpoints []*Endpoint
	byName    map[string]*Endpoint
	errs      []error
	frozen    bool
}

// Option configures a Server.
type Option func(*Server)

// WithVersion sets the service version, a semantic version (default
// "0.0.0"); the NATS Services API requires one.
func WithVersion(v string) Option { return func(s *Server) { s.version = v } }

// WithDescription sets a human-readable description shown by discovery
// tools such as `nats micro info`.
func WithDescription(d string) Option { return func(s *Server) { s.description = d } }

// WithMiddleware appends server-wide middleware, run for every endpoint
// registered afterwards, outside endpoint-specific middleware. The first
// listed runs outermost.
func WithMiddleware(mws ...middleware.Middleware) Option {
	return func(s *Server) { s.mws = append(s.mws, mws...) }
}

// WithJSON sets the codec the transports decode JSON requests with, on
// HTTP and NATS alike — codec.NewJSON(codec.JSONOptions{...}) to refuse
// unknown fields or keys that match a field only when case is ignored.
// The default is codec.JSON; nil keeps it.
func WithJSON(c codec.Codec) Option {
	return func(s *Server) {
		if c != nil {
			s.json = c
		}
	}
}

// WithProtoService makes the server implement an existing protobuf
// contract: sd, the service of a .proto file compiled by protoc-gen-go
// (e.g. pb.File_acme_billing_v1_billing_proto.Services().ByName("Billing")).
// The gRPC transport serves the endpoints under the contract's full name
// ("/acme.billing.v1.Billing/Charge") and its reflection advertises the
// original file, so clients generated from the .proto in any language call
// the handlers unchanged. Each endpoint must be a method of sd, of the same
// streaming kind, with the generated message types of its input and output;
// the gRPC transport refuses to start otherwise, naming the mismatch.
// Methods of sd without an endpoint answer Unimplemented. HTTP and NATS
// serve the endpoints under the server's own name as usual.
func WithProtoService(sd protoreflect.ServiceDescriptor) Option {
	return func(s *Server) { s.contract = sd }
}

// ProtoService returns the contract set by WithProtoService, or nil.
func (s *Server) ProtoService() protoreflect.ServiceDescriptor { return s.contract }

// JSON returns the codec JSON requests are decoded with (WithJSON).
func (s *Server) JSON() codec.Codec { return s.json }

// WithLogger sets the logger for recovered panics and transport events.
// The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// New returns a Server named name. The name must start with a letter and hold
// only letters, digits, '-' and '_' (it becomes an HTTP path segment, a gRPC
// package and a NATS subject token); a bad name is reported by Err.
func New(name string, opts ...Option) *Server {
	s := &Server{name: name, version: "0.0.0", byName: map[string]*Endpoint{}, json: codec.JSON}
	s.adm.configure(Admission{})
	for _, o := range opts {
		o(s)
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if !serviceName.MatchString(name) {
		s.errs = append(s.errs, fmt.Errorf("server: invalid service name %q: want a letter then letters, digits, '-' or '_'", name))
	}
	if !semver.MatchString(s.version) {
		s.errs = append(s.errs, fmt.Errorf("server: invalid version %q: want a semantic version such as 1.2.3", s.version))
	}
	return s
}

// Name returns the service name.
func (s *Server) Name() string { return s.name }

// Version returns the service version.
func (s *Server) Version() string { return s.version }

// Description returns the service description.
func (s *Server) Description() string { return s.description }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.logger }

// Endpoints returns the registered endpoints in registration order.
func (s *Server) Endpoints() []*Endpoint {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*Endpoint(nil), s.endpoints...)
}

// Middleware returns the server-wide middleware (WithMiddleware), first
// outermost, for other handlers that should run behind it, such as event
// subscriptions.
func (s *Server) Middleware() []middleware.Middleware {
	return append([]middleware.Middleware(nil), s.mws...)
}

// Endpoint returns the endpoint named name.
func (s *Server) Endpoint(name string) (*Endpoint, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.byName[name]
	return e, ok
}

// Err returns every registration error so far, joined, or nil.
func (s *Server) Err() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return errors.Join(s.errs...)
}

// Freeze ends registration: later Handle calls are reported by Err. Service
// calls it before starting transports, so all of them serve the same set.
func (s *Server) Freeze() {
	s.mu.Lock()
	s.frozen = true
	s.mu.Unlock()
}

func (s *Server) add(e *Endpoint, opts []EndpointOption) {
	for _, o := range opts {
		o(e)
	}
	// Recovery twice: around the handler, so that a panic reaches every
	// middleware as an Internal error (telemetry ends its span, counts the
	// call and logs it), and outermost, for panics in middleware.
	recov := middleware.Recover(middleware.WithRecoverLogger(s.logger))
	chain := append(append(append([]middleware.Middleware{recov}, s.mws...), e.mws...), recov, s.reportHidden(e.Name))
	e.Handler = middleware.Chain(chain...)(e.Handler)

	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.frozen:
		s.errs = append(s.errs, fmt.Errorf("server: endpoint %q registered after the service started", e.Name))
	case !endpointName.MatchString(e.Name):
		s.errs = append(s.errs, fmt.Errorf("server: invalid endpoint name %q: want a letter then letters, digits or '_'", e.Name))
	case s.byName[e.Name] != nil:
		s.errs = append(s.errs, fmt.Errorf("server: endpoint %q registered twice", e.Name))
	case e.Kind != transport.Unary && len(e.Routes) > 0:
		s.errs = append(s.errs, fmt.Errorf("server: endpoint %q: a %s endpoint has no REST routes (it is served at its default path)", e.Name, e.Kind))
	case e.Kind != transport.Unary && e.Idempotent:
		s.errs = append(s.errs, fmt.Errorf("server: endpoint %q: a %s endpoint cannot be idempotent: a stream is never retried", e.Name, e.Kind))
	default:
		for _, r := range e.Routes {
			if err := r.validate(); err != nil {
				s.errs = append(s.errs, fmt.Errorf("server: endpoint %q: %w", e.Name, err))
				return
			}
		}
		s.endpoints = append(s.endpoints, e)
		s.byName[e.Name] = e
	}
}

// reportHidden logs, at Error, a handler error whose text the caller will
// not see: a plain error goes on the wire as "unknown error", an
// *errs.Error wrapped with fmt.Errorf loses the wrapping text, and the
// private cause of an *errs.Error (WithCause) never goes on the wire. The log line
// carries the whole error with the service, endpoint, transport and trace
// ID, so the cause of a failed call can be found.
//
// It is also the error boundary: an error received from a call this
// handler made (errs.ReceivedFrom) is not sent on as it is, unless
// WithErrorPassThrough — see Boundary.
func (s *Server) reportHidden(endpoint string) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			resp, err := next(ctx, req)
			if err == nil {
				return resp, nil
			}
			if from := errs.ReceivedFrom(err); from != "" && !s.passThrough {
				sent := Boundary(err)
				s.logHidden(ctx, endpoint, sent, err.Error(), slog.String("dependency", from))
				return resp, sent
			}
			if hidden, ok := hiddenText(err); ok {
				s.logHidden(ctx, endpoint, errs.FromError(err), hidden)
			}
			return resp, err
		}
	}
}

// Boundary is the error a server sends its caller for err, an error it
// received from a call it made itself: the code where it means the same
// to the caller (Unavailable, DeadlineExceeded, ResourceExhausted, Aborted:
// try again later), Internal otherwise (the caller can do nothing about a
// dependency's invalid argument or permission); a message that names
// neither the dependency nor its text (which may hold internal addresses);
// no reason, metadata or details. The original goes to the server's log.
func Boundary(err error) *errs.Error {
	code := errs.CodeOf(err)
	switch code {
	case errs.Unavailable, errs.DeadlineExceeded, errs.ResourceExhausted, errs.Aborted, errs.Canceled:
	default:
		code = errs.Internal
	}
	return errs.Newf(code, "a service this call depends on failed (%s)", errs.CodeOf(err))
}

// WithErrorPassThrough sends errors received from calls a handler made to
// the caller as they are — for a gateway or proxy, whose callers expect the
// backend's errors. By default they pass the error boundary (Boundary).
func WithErrorPassThrough() Option { return func(s *Server) { s.passThrough = true } }

// hiddenText returns the text of err the caller will not see, if any.
func hiddenText(err error) (string, bool) {
	e := errs.FromError(err)
	if e.Code() == errs.Canceled || e.Code() == errs.DeadlineExceeded {
		return "", false // the call simply ran out
	}
	if error(e) != err {
		return err.Error(), true
	}
	cause := e.Unwrap() // private (WithCause) unless the message says it
	if cause == nil || strings.Contains(e.Message(), cause.Error()) {
		return "", false // the caller sees all there is
	}
	return cause.Error(), true
}

func (s *Server) logHidden(ctx context.Context, endpoint string, e *errs.Error, hidden string, extra ...slog.Attr) {
	attrs := []slog.Attr{slog.String("service", s.name), slog.String("endpoint", endpoint)}
	if c, ok := transport.CallFromContext(ctx); ok {
		attrs = append(attrs, slog.String("transport", c.Kind.String()))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	attrs = append(attrs, slog.String("caller_sees", e.Error()), slog.String("error", hidden))
	attrs = append(attrs, extra...)
	s.logger.LogAttrs(ctx, slog.LevelError, "server: handler failed; the caller sees less", attrs...)
}

// Endpoint is one registered handler. Its fields are read-only once
// registered; transports read them to decode, dispatch and describe calls.
type Endpoint struct {
	// Name is the endpoint name, e.g. "Hello".
	Name string
	// Kind is transport.Unary for a Handle endpoint, or the kind of
	// stream it serves (HandleServerStream, HandleClientStream,
	// HandleBidiStream). For a streaming endpoint a transport puts the
	// call's transport.Stream in Call.Stream and calls Handler once per
	// stream: with the decoded request for a server stream, with nil for
	// the others; a client stream's Handler returns its one reply for the
	// transport to send, the others return nil.
	Kind transport.StreamKind
	// Handler is the composed chain: recovery, server middleware, endpoint
	// middleware, then the typed handler. Transports call it with the
	// decoded request (a pointer to a value of RequestType).
	Handler middleware.Handler
	// RequestType and ResponseType are the handler's request and reply types
	// (the struct types, not pointers).
	RequestType, ResponseType reflect.Type
	// Routes are the extra REST routes the HTTP transport serves.
	Routes []Route
	// Idempotent marks an endpoint that is safe to call more than once.
	Idempotent bool

	newRequest func() any
	mws        []middleware.Middleware
}

// NewRequest returns a new, zero request value (a pointer) to decode into.
func (e *Endpoint) NewRequest() any { return e.newRequest() }

// EndpointOption configures one endpoint.
type EndpointOption func(*Endpoint)

// WithEndpointMiddleware appends middleware for this endpoint only; it runs
// inside the server-wide middleware.
func WithEndpointMiddleware(mws ...middleware.Middleware) EndpointOption {
	return func(e *Endpoint) { e.mws = append(e.mws, mws...) }
}

// WithIdempotent marks the endpoint as safe to call more than once. A
// ferry.Service with a registry lists it in its registration
// (registry.MetadataIdempotent), so client.Client retries it after failures
// that may have reached the handler without being told; the HTTP transport
// also serves it from GET /{service}/{Endpoint}, with the request fields as
// query parameters.
func WithIdempotent() EndpointOption { return func(e *Endpoint) { e.Idempotent = true } }

// WithRoute adds a REST route served by the HTTP transport besides the
// default POST /{service}/{Endpoint}. pattern is a Go 1.22 net/http pattern
// with a method, such as "GET /v1/hello/{name}": path wildcards and query
// parameters are bound to request fields by their JSON names, and for
// methods with a body (POST, PUT, PATCH) the body is decoded first.
func WithRoute(pattern string) EndpointOption {
	return func(e *Endpoint) { e.Routes = append(e.Routes, Route{Pattern: pattern}) }
}

// Route is a REST route of an endpoint.
type Route struct {
	// Pattern is a net/http pattern with a method, e.g. "GET /v1/hello/{name}".
	Pattern string
}

// Method returns the route's HTTP method.
func (r Route) Method() string {
	m, _, _ := strings.Cut(r.Pattern, " ")
	return m
}

// Path returns the route's path pattern.
func (r Route) Path() string {
	_, p, _ := strings.Cut(r.Pattern, " ")
	return strings.TrimSpace(p)
}

func (r Route) validate() error {
	switch r.Method() {
	case "GET", "POST", "PUT", "PATCH", "DELETE":
	default:
		return fmt.Errorf("route %q: want a method (GET, POST, PUT, PATCH or DELETE), a space and a path", r.Pattern)
	}
	if !strings.HasPrefix(r.Path(), "/") {
		return fmt.Errorf("route %q: path must start with '/'", r.Pattern)
	}
	return nil
}

// Register is Handle for a declared endpoint (transport.Endpoint): its
// name, and its types checked against h's by the compiler. An endpoint of
// another service is a registration error.
func Register[Req, Resp any](s *Server, ep transport.Endpoint[Req, Resp], h func(context.Context, *Req) (*Resp, error), opts ...EndpointOption) {
	if ep.Service != s.name {
		s.mu.Lock()
		s.errs = append(s.errs, fmt.Errorf("server: endpoint %s belongs to service %q, not %q", ep, ep.Service, s.name))
		s.mu.Unlock()
		return
	}
	Handle(s, ep.Name, h, opts...)
}

// Handle registers h as endpoint name of s. Req and Resp are struct types
// (plain Go structs or generated protobuf messages). A nil reply with a nil
// error is sent as an empty reply.
func Handle[Req, Resp any](s *Server, name string, h func(context.Context, *Req) (*Resp, error), opts ...EndpointOption) {
	e := &Endpoint{
		Name:         name,
		RequestType:  reflect.TypeFor[Req](),
		ResponseType: reflect.TypeFor[Resp](),
		newRequest:   func() any { return new(Req) },
		Handler: func(ctx context.Context, req any) (any, error) {
			r, ok := req.(*Req)
			if !ok {
				return nil, errs.Newf(errs.Internal, "endpoint %s: middleware replaced the request with %T", name, req)
			}
			resp, err := h(ctx, r)
			if err != nil {
				return nil, err
			}
			if resp == nil {
				resp = new(Resp)
			}
			return resp, nil
		},
	}
	s.addTyped(e, opts)
}

func checkStruct(t reflect.Type, what string) error {
	if t.Kind() != reflect.Struct {
		return fmt.Errorf("%s type %v is not a struct", what, t)
	}
	return nil
}

func (s *Server) recordErr(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

var (
	ctxType   = reflect.TypeFor[context.Context]()
	errorType = reflect.TypeFor[error]()
)

// endpointShape reports whether a method type (receiver first) is
// func(context.Context, *Req) (*Resp, error) with struct Req and Resp.
func endpointShape(mt reflect.Type) bool {
	if mt.NumIn() != 3 || mt.NumOut() != 2 || mt.In(1) != ctxType || mt.Out(1) != errorType {
		return false
	}
	return ptrToStruct(mt.In(2)) && ptrToStruct(mt.Out(0))
}

// nearEndpoint reports whether a method type looks meant as an endpoint:
// it takes a context.Context first, or it takes one pointer to a struct
// and returns a value and an error.
func nearEndpoint(mt reflect.Type) bool {
	if mt.NumIn() >= 2 && mt.In(1) == ctxType {
		return true
	}
	return mt.NumIn() == 2 && ptrToStruct(mt.In(1)) && mt.NumOut() == 2 && mt.Out(1) == errorType
}

func ptrToStruct(t reflect.Type) bool {
	return t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct
}

// HandleMethods registers every exported method of v whose shape is
// func(context.Context, *Req) (*Resp, error), named after the method. opts
// apply to each endpoint. It returns the names registered. Other methods are
// skipped, except near misses — a method that takes a context.Context
// first, or takes a pointer to a struct and returns a value and an error,
// without the endpoint shape — which are registration errors (Err), so a
// handler with a slip in its signature is not silently left out.
//
// The method set is found by reflection once, here; each call then goes
// through reflect.Value.Call, which costs a few hundred nanoseconds and some
// allocations more than Handle. Prefer Handle for hot endpoints.
func HandleMethods(s *Server, v any, opts ...EndpointOption) []string {
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	var names []string
	for i := 0; i < rt.NumMethod(); i++ {
		m := rt.Method(i)
		mt := m.Type // includes the receiver
		if !endpointShape(mt) {
			if nearEndpoint(mt) {
				s.recordErr(fmt.Errorf("server: HandleMethods(%T): method %s is %v, not an endpoint: want func(context.Context, *Req) (*Resp, error) with struct types Req and Resp",
					v, m.Name, rv.Method(i).Type()))
			}
			continue
		}
		in, out := mt.In(2), mt.Out(0)
		fn := rv.Method(i)
		name := m.Name
		reqT, respT := in.Elem(), out.Elem()
		e := &Endpoint{
			Name:         name,
			RequestType:  reqT,
			ResponseType: respT,
			newRequest:   func() any { return reflect.New(reqT).Interface() },
			Handler: func(ctx context.Context, req any) (any, error) {
				rq := reflect.ValueOf(req)
				if rq.Type() != in {
					return nil, errs.Newf(errs.Internal, "endpoint %s: middleware replaced the request with %T", name, req)
				}
				res := fn.Call([]reflect.Value{reflect.ValueOf(ctx), rq})
				if err, _ := res[1].Interface().(error); err != nil {
					return nil, err
				}
				if res[0].IsNil() {
					return reflect.New(respT).Interface(), nil
				}
				return res[0].Interface(), nil
			},
		}
		s.add(e, opts)
		names = append(names, name)
	}
	return names
}
