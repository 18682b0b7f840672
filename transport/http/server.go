package http

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/internal/timeoutms"
	"github.com/ferry-go/ferry/openapi"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	"github.com/ferry-go/ferry/transport/internal/callctx"
)

// TimeoutHeader carries a call's remaining time in whole milliseconds, an
// integer > 0. The server bounds the handler's context by it, or by its
// maximum timeout when that is shorter (see WithMaxTimeout).
const TimeoutHeader = "Ferry-Timeout-Ms"

// Defaults of the server options.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxBodyBytes      = 4 << 20
)

// ServerOption configures a Server.
type ServerOption func(*serverConfig)

type serverConfig struct {
	listener          net.Listener
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	maxHeaderBytes    int
	maxBodyBytes      int64
	defaultTimeout    time.Duration
	maxTimeout        time.Duration
	filters           []func(http.Handler) http.Handler
	tls               *tls.Config
	wsOrigins         []string
	streamWindow      int
	noOpenAPI         bool // WithoutOpenAPI
}

// WithoutOpenAPI stops the server from serving its OpenAPI document at GET
// /openapi.json (openapi.Path), which it does by default — for a service
// whose HTTP surface must not describe itself to whoever can reach it.
func WithoutOpenAPI() ServerOption {
	return func(c *serverConfig) { c.noOpenAPI = true }
}

// baseWriteTimeout is the http.Server's write timeout: a call under the
// default deadline has the write timeout beyond it. A call that asks for
// more moves its connection's write deadline (handler.writeDeadline).
func (c *serverConfig) baseWriteTimeout() time.Duration {
	if c.writeTimeout <= 0 {
		return 0
	}
	return c.defaultTimeout + c.writeTimeout
}

func newServerConfig(opts []ServerOption) serverConfig {
	c := serverConfig{
		readHeaderTimeout: DefaultReadHeaderTimeout,
		readTimeout:       DefaultReadTimeout,
		writeTimeout:      DefaultWriteTimeout,
		idleTimeout:       DefaultIdleTimeout,
		maxHeaderBytes:    DefaultMaxHeaderBytes,
		maxBodyBytes:      DefaultMaxBodyBytes,
		defaultTimeout:    transport.DefaultTimeout,
		maxTimeout:        transport.DefaultMaxTimeout,
		streamWindow:      DefaultStreamWindow,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// WithTLS serves HTTPS with cfg (which needs a certificate); Advertise then
// reports an https:// address.
func WithTLS(cfg *tls.Config) ServerOption {
	return func(c *serverConfig) { c.tls = cfg }
}

// WithListener makes the server accept on l instead of listening on its
// address. Stop closes l.
func WithListener(l net.Listener) ServerOption {
	return func(c *serverConfig) { c.listener = l }
}

// setDuration applies a duration option: 0 keeps the default, a negative
// value turns the limit off — the rule every Ferry option follows.
func setDuration(dst *time.Duration, d time.Duration) {
	switch {
	case d < 0:
		*dst = 0 // net/http's "no limit"
	case d > 0:
		*dst = d
	}
}

// WithReadHeaderTimeout bounds the time to read a request's headers
// (default 5s; 0 keeps the default, negative means no limit).
func WithReadHeaderTimeout(d time.Duration) ServerOption {
	return func(c *serverConfig) { setDuration(&c.readHeaderTimeout, d) }
}

// WithReadTimeout bounds the time to read a whole request, body included
// (default 30s; 0 keeps the default, negative means no limit).
func WithReadTimeout(d time.Duration) ServerOption {
	return func(c *serverConfig) { setDuration(&c.readTimeout, d) }
}

// WithWriteTimeout bounds how long writing a response may take beyond the
// call's deadline (default 10s). A call's
// handler runs under its deadline (WithDefaultTimeout, WithMaxTimeout); the
// connection's write deadline is that deadline plus this, so a reply is
// written even when the handler used all its time, and a client that stops
// reading cannot hold the connection for ever. A handler that ignores its
// context and outlives its deadline by more than this has its connection
// closed: the caller sees the connection end. 0 keeps the default,
// negative means no limit.
func WithWriteTimeout(d time.Duration) ServerOption {
	return func(c *serverConfig) { setDuration(&c.writeTimeout, d) }
}

// WithIdleTimeout bounds how long a keep-alive connection waits for its
// next request (default 120s; 0 keeps the default, negative means the read
// timeout applies, as in net/http).
func WithIdleTimeout(d time.Duration) ServerOption {
	return func(c *serverConfig) { setDuration(&c.idleTimeout, d) }
}

// WithMaxHeaderBytes limits the size of request headers (default 64 KiB;
// 0 or less keeps the default).
func WithMaxHeaderBytes(n int) ServerOption {
	return func(c *serverConfig) {
		if n > 0 {
			c.maxHeaderBytes = n
		}
	}
}

// WithMaxBodyBytes limits the size of a request body (default 4 MiB; 0 or
// less keeps the default). A larger body is answered with 413 and code
// resource_exhausted.
func WithMaxBodyBytes(n int64) ServerOption {
	return func(c *serverConfig) {
		if n > 0 {
			c.maxBodyBytes = n
		}
	}
}

// WithDefaultTimeout sets the deadline of calls that carry no
// Ferry-Timeout-Ms header (default transport.DefaultTimeout, 30s; 0 or
// less keeps the default). The handler's context ends at the deadline and a
// handler that honours it is answered 504 deadline_exceeded.
func WithDefaultTimeout(d time.Duration) ServerOption {
	return func(c *serverConfig) {
		if d > 0 {
			c.defaultTimeout = d
		}
	}
}

// WithMaxTimeout caps the deadline a caller may ask for in Ferry-Timeout-Ms
// (default transport.DefaultMaxTimeout, 5m; 0 or less keeps the default): a
// longer one is cut to it, so no caller holds a handler for hours.
func WithMaxTimeout(d time.Duration) ServerOption {
	return func(c *serverConfig) {
		if d > 0 {
			c.maxTimeout = d
		}
	}
}

// WithFilter wraps the server's http.Handler with f, an HTTP-tier filter
// (CORS, compression, access logs…). Filters see raw HTTP requests before
// routing and decoding; they are a separate tier from Ferry middleware,
// which sees decoded requests on every transport. The first filter listed
// runs outermost.
func WithFilter(f func(http.Handler) http.Handler) ServerOption {
	return func(c *serverConfig) {
		if f != nil {
			c.filters = append(c.filters, f)
		}
	}
}

// WithWebSocketOrigins lets browser pages served from other origins open
// the WebSockets of client and bidirectional streams. Each pattern is
// matched, case-insensitively with path.Match, against the host of the
// handshake's Origin header ("app.example.com", "*.example.com"), or
// against scheme://host when the pattern holds "://". By default a
// handshake whose Origin names another host than the request's is refused
// with 403, which keeps other sites' pages from using a visitor's cookies
// on the WebSocket (cross-site WebSocket hijacking); requests without an
// Origin header (non-browser clients) are always accepted. Plain HTTP
// server streams are not affected: use a CORS filter for those
// (transport/http/cors).
func WithWebSocketOrigins(patterns ...string) ServerOption {
	return func(c *serverConfig) { c.wsOrigins = append(c.wsOrigins, patterns...) }
}

// WithStreamWindow sets how many messages a caller may send on a client or
// bidirectional stream ahead of what the handler has received (default
// DefaultStreamWindow, 32; n <= 0 keeps it). A stream holds at most this
// many messages of at most WithMaxBodyBytes each. A caller that agreed to
// the "ferry.v1" subprotocol, as Ferry's Client does, gets this window as
// credit and more as the handler receives; others are held to it by TCP
// back-pressure (see the package documentation, "Streams").
func WithStreamWindow(n int) ServerOption {
	return func(c *serverConfig) {
		if n > 0 {
			c.streamWindow = min(n, maxCredit)
		}
	}
}

// Server serves a server.Server's endpoints over HTTP. It implements
// server.Transport. Create it with NewServer.
type Server struct {
	addr string
	cfg  serverConfig

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	handler http.Handler
	h       *handler
	done    chan struct{} // closed when Serve returns
}

var _ server.Transport = (*Server)(nil)

// NewServer returns a Server that will listen on addr ("host:port";
// "127.0.0.1:0" picks a free port, see Addr) when started.
func NewServer(addr string, opts ...ServerOption) *Server {
	return &Server{addr: addr, cfg: newServerConfig(opts)}
}

// Start builds the routes of s, listens, and serves in a goroutine. It
// returns an error naming the address if it cannot listen, or naming the
// route if a route is invalid.
func (s *Server) Start(ctx context.Context, srv *server.Server) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("http: server already started")
	}
	out, h, err := newHandler(srv, &s.cfg, s.cfg.writeTimeout)
	if err != nil {
		return err
	}
	ln := s.cfg.listener
	if ln == nil {
		var lc net.ListenConfig
		if ln, err = lc.Listen(ctx, "tcp", s.addr); err != nil {
			return fmt.Errorf("http: listen on %q: %w", s.addr, err)
		}
	}
	if s.cfg.tls != nil {
		ln = tls.NewListener(ln, s.cfg.tls)
	}
	// Requests inherit the values of ctx (trace exporters, loggers) but not
	// its cancellation: Stop, not the end of ctx, decides when calls end.
	base := context.WithoutCancel(ctx)
	logger := srv.Logger()
	hs := &http.Server{
		Handler:           out,
		ReadHeaderTimeout: s.cfg.readHeaderTimeout,
		ReadTimeout:       s.cfg.readTimeout,
		WriteTimeout:      s.cfg.baseWriteTimeout(),
		IdleTimeout:       s.cfg.idleTimeout,
		MaxHeaderBytes:    s.cfg.maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.ErrorContext(base, "http: serve failed", "addr", ln.Addr().String(), "error", err)
		}
	}()
	s.srv, s.ln, s.handler, s.h, s.done = hs, ln, out, h, done
	return nil
}

// stopGrace is how long Stop waits for streams to return once it has cut
// them off: their handlers' contexts are canceled and their connections
// closed, so only a handler that ignores both is still running after it.
const stopGrace = 5 * time.Second

// Stop stops accepting connections and waits for in-flight calls and open
// streams to finish. If ctx ends first, it closes every connection, cancels
// the streams' handlers (their Send and Recv fail with Unavailable) and
// returns ctx's error. Stop before Start does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	hs, h, done := s.srv, s.h, s.done
	s.mu.Unlock()
	if hs == nil {
		return nil
	}
	err := hs.Shutdown(ctx)
	if err == nil {
		// Shutdown does not know hijacked connections: the WebSocket
		// streams are waited for here.
		err = h.streams.wait(ctx)
	}
	if err != nil {
		_ = hs.Close()
		h.streams.cutOff()
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
		if h.streams.wait(gctx) != nil {
			h.logger.WarnContext(ctx, "http: stop: streams still running after they were cut off", "service", h.service)
		}
		cancel()
		err = fmt.Errorf("http: stop: %w", err)
	}
	<-done
	return err
}

// Addr returns the address the server listens on, or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Advertise implements server.Advertiser: "http" and the base URL of the
// bound address, e.g. "http://127.0.0.1:8080". An unspecified host (":8080")
// is reported as is; ferry.Service replaces it with its advertise host.
func (s *Server) Advertise() (transport, address string, ok bool) {
	a := s.Addr()
	if a == nil {
		return "", "", false
	}
	if s.cfg.tls != nil {
		return "http", "https://" + a.String(), true
	}
	return "http", "http://" + a.String(), true
}

// ServesTLS implements server.TLSReporter: true with WithTLS.
func (s *Server) ServesTLS() bool { return s.cfg.tls != nil }

// Handler returns the http.Handler the server serves (filters included), or
// nil before Start.
func (s *Server) Handler() http.Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handler
}

// NewHandler returns an http.Handler serving srv's endpoints, for mounting
// in an http.Server of one's own. Only the options that shape the handler
// apply (body limit, default timeout, filters); the rest configure Server.
//
// Streams are served too; the http.Server's Shutdown does not wait for the
// WebSockets of client and bidirectional streams (it does not track
// hijacked connections), and its WriteTimeout and ReadTimeout are lifted
// for each stream.
func NewHandler(srv *server.Server, opts ...ServerOption) (http.Handler, error) {
	cfg := newServerConfig(opts)
	out, _, err := newHandler(srv, &cfg, 0)
	return out, err
}

// handler routes and serves calls. Everything it holds is built once and
// read-only afterwards.
type handler struct {
	srv        *server.Server
	service    string
	logger     *slog.Logger
	maxBody    int64
	json       codec.Codec // decodes JSON requests (server.WithJSON)
	defTimeout time.Duration
	maxTimeout time.Duration
	// writeAfter is the write time the connection keeps beyond a call's
	// deadline when that is later than the server's write timeout allows;
	// 0 when the handler is mounted elsewhere (NewHandler) or writes are
	// unbounded.
	writeAfter time.Duration
	// byPath finds the default route "POST /{service}/{Endpoint}" without
	// going through the mux.
	byPath map[string]*route
	// mux routes everything else; probe holds the same routes without the
	// catch-all, to tell 405 from 404 on a miss.
	mux, probe *http.ServeMux
	bufs       sync.Pool // *[]byte request bodies

	jsonCT, protoCT []string // Content-Type values, shared read-only

	// streams are the open streams, for Stop.
	streams streamSet
	// wsOrigins are the WebSocket origin patterns (WithWebSocketOrigins).
	wsOrigins []string
	// streamEndTimeout bounds writing the end of a WebSocket stream.
	streamEndTimeout time.Duration
	// streamWindow is a WebSocket stream's window (WithStreamWindow).
	streamWindow int
}

func newHandler(srv *server.Server, cfg *serverConfig, writeAfter time.Duration) (http.Handler, *handler, error) {
	if err := srv.Err(); err != nil {
		return nil, nil, err
	}
	h := &handler{
		srv:        srv,
		service:    srv.Name(),
		logger:     srv.Logger(),
		maxBody:    cfg.maxBodyBytes,
		json:       srv.JSON(),
		defTimeout: cfg.defaultTimeout,
		maxTimeout: cfg.maxTimeout,
		writeAfter: writeAfter,
		byPath:     map[string]*route{},
		mux:        http.NewServeMux(),
		probe:      http.NewServeMux(),
		jsonCT:     []string{codec.JSON.ContentType()},
		protoCT:    []string{codec.Proto.ContentType()},
		wsOrigins:  cfg.wsOrigins,

		streamWindow: cfg.streamWindow,
	}
	h.streamEndTimeout = cfg.writeTimeout
	if h.streamEndTimeout <= 0 {
		h.streamEndTimeout = DefaultWriteTimeout
	}
	var errList []error
	for _, ep := range srv.Endpoints() {
		path := "/" + h.service + "/" + ep.Name
		// Plain structs go through protostruct, which cannot map every Go
		// type: find out now, so such calls get a 415, not a failed reply.
		var noProto error
		if err := protostruct.Check(ep.RequestType); err != nil {
			noProto = err
		} else if err := protostruct.Check(ep.ResponseType); err != nil {
			noProto = err
		}
		switch ep.Kind {
		case transport.Unary:
		case transport.ServerStreaming:
			// POST with the request in the body; GET with it in the query,
			// for EventSource.
			post := &route{h: h, ep: ep, path: path, body: true, noProto: noProto}
			b, err := newBinder(server.Route{Pattern: http.MethodGet + " " + path}, ep.RequestType)
			if err != nil {
				errList = append(errList, err)
				continue
			}
			get := &route{h: h, ep: ep, path: path, bind: b, noProto: noProto}
			errList = appendErr(errList, h.handle("POST "+path, http.HandlerFunc(post.serveServerStream)))
			errList = appendErr(errList, h.handle("GET "+path, http.HandlerFunc(get.serveServerStream)))
			continue
		default:
			rt := &route{h: h, ep: ep, path: path}
			errList = appendErr(errList, h.handle("GET "+path, http.HandlerFunc(rt.serveWebSocket)))
			errList = appendErr(errList, h.handle("POST "+path, http.HandlerFunc(rt.upgradeRequired)))
			continue
		}
		rt := &route{h: h, ep: ep, path: path, body: true, noProto: noProto}
		h.byPath[path] = rt
		if err := h.handle("POST "+path, rt); err != nil {
			errList = append(errList, err)
		}
		routes := ep.Routes
		if ep.Idempotent && !slices.ContainsFunc(routes, func(r server.Route) bool { return r.Method() == http.MethodGet && r.Path() == path }) {
			// Safe to repeat, so safe to serve from GET: the default path
			// with the request's fields as query parameters.
			routes = append(slices.Clip(routes), server.Route{Pattern: http.MethodGet + " " + path})
		}
		for _, r := range routes {
			b, err := newBinder(r, ep.RequestType)
			if err != nil {
				errList = append(errList, err)
				continue
			}
			m := r.Method()
			rr := &route{h: h, ep: ep, path: r.Path(), bind: b, body: m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch, noProto: noProto}
			if err := h.handle(r.Pattern, rr); err != nil {
				errList = append(errList, err)
			}
		}
	}
	if !cfg.noOpenAPI {
		// The service's OpenAPI 3.1 document, built on first request. A
		// service name has no '.', so no endpoint path can take this one.
		errList = appendErr(errList, h.handle("GET "+openapi.Path, openapi.Handler(srv)))
	}
	if len(errList) > 0 {
		return nil, nil, errors.Join(errList...)
	}
	h.mux.Handle("/", http.HandlerFunc(h.miss))
	var out http.Handler = h
	for i := len(cfg.filters) - 1; i >= 0; i-- {
		if out = cfg.filters[i](out); out == nil {
			return nil, nil, fmt.Errorf("http: filter %d returned a nil handler", i)
		}
	}
	return out, h, nil
}

func appendErr(list []error, err error) []error {
	if err != nil {
		return append(list, err)
	}
	return list
}

// handle registers pattern in both muxes. net/http panics on a malformed or
// conflicting pattern; that is a configuration error, returned as such.
func (h *handler) handle(pattern string, rt http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("http: route %q: %v", pattern, p)
		}
	}()
	h.mux.Handle(pattern, rt)
	h.probe.Handle(pattern, rt)
	return nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		if rt := h.byPath[r.URL.Path]; rt != nil {
			rt.ServeHTTP(w, r)
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// miss answers requests no route matched: 405 with an Allow header when
// the path exists for other methods, else 404 naming what was not found.
func (h *handler) miss(w http.ResponseWriter, r *http.Request) {
	ph, pattern := h.probe.Handler(r)
	if pattern != "" { // a trailing-slash redirect the catch-all hid
		ph.ServeHTTP(w, r)
		return
	}
	var c capture
	ph.ServeHTTP(&c, r)
	if c.status == http.StatusMethodNotAllowed {
		allow := c.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeProblem(w, http.StatusMethodNotAllowed, errs.Newf(errs.Unimplemented,
			"method %s is not allowed on %q; allowed: %s", r.Method, r.URL.Path, allow))
		return
	}
	var msg string
	svc, ep, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case !ok || svc == "" || ep == "" || strings.Contains(ep, "/"):
		msg = fmt.Sprintf("no route for %s %q", r.Method, r.URL.Path)
	case svc != h.service:
		msg = fmt.Sprintf("unknown service %q (this server serves %q)", svc, h.service)
	default:
		msg = fmt.Sprintf("unknown endpoint %q of service %q", ep, h.service)
	}
	writeProblem(w, http.StatusNotFound, errs.New(errs.NotFound, msg))
}

// capture records what the probe mux would answer.
type capture struct {
	header http.Header
	status int
}

func (c *capture) Header() http.Header {
	if c.header == nil {
		c.header = http.Header{}
	}
	return c.header
}

func (c *capture) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (c *capture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

// route serves one endpoint on one pattern: the default route (body only)
// or a REST route (path and query binding, body for POST, PUT and PATCH).
type route struct {
	h       *handler
	ep      *server.Endpoint
	path    string  // the path pattern, for Call.Route
	bind    *binder // nil on the default route
	body    bool
	noProto error // why the endpoint cannot speak protobuf, if it cannot
}

// chunkThreshold is the reply size under which net/http computes
// Content-Length itself, for free, when the handler returns.
const chunkThreshold = 2048

func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := rt.h
	cod, ok := rt.bodyCodec(w, r)
	if !ok {
		return
	}

	ctx := r.Context()
	timeout := h.defTimeout
	if v := r.Header[TimeoutHeader]; len(v) > 0 {
		d, ok := timeoutms.Parse(v[0], h.maxTimeout)
		if !ok {
			badTimeout(w, v[0])
			return
		}
		timeout = d
		if h.writeAfter > 0 && timeout > h.defTimeout {
			// The server's write timeout covers the default deadline only.
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout + h.writeAfter))
		}
	}
	// One allocation holds the call's context (its deadline costs nothing
	// until someone waits on it) and its Call.
	cs := new(callctx.Served)
	cs.Init(ctx, time.Now().Add(timeout))
	defer cs.Release()
	ctx = &cs.Ctx // no Call in it until the request is read

	// Admission before the body is read and decoded, weighed by what the
	// body may hold.
	var size int64
	if rt.body {
		size = h.maxBody
		if r.ContentLength >= 0 {
			size = min(r.ContentLength, h.maxBody)
		}
	}
	if err := h.srv.Admit(ctx, size); err != nil {
		writeError(w, err)
		return
	}
	defer h.srv.Release(size)

	req := rt.ep.NewRequest()
	if !rt.readRequest(w, r, cod, req) {
		return
	}

	cs.Call = transport.Call{
		Service:  h.service,
		Endpoint: rt.ep.Name,
		Kind:     transport.HTTP,
		Request:  Header(r.Header),
		Reply:    Header(w.Header()),
		Peer:     r.RemoteAddr,
		Method:   r.Method,
		Route:    rt.path,
		Target:   r.URL.Path,
		TLS:      r.TLS != nil,
	}
	cs.Call.Deadline, _ = ctx.Deadline()
	resp, err := rt.ep.Handler(cs, req)
	if err != nil {
		writeError(w, err)
		return
	}
	out, err := cod.Marshal(resp)
	if err != nil {
		h.logger.ErrorContext(ctx, "http: encoding reply failed", "service", h.service, "endpoint", rt.ep.Name, "error", err)
		writeProblem(w, http.StatusInternalServerError, errs.New(errs.Internal, "encoding the reply failed"))
		return
	}
	hdr := w.Header()
	switch cod {
	case codec.JSON:
		hdr["Content-Type"] = h.jsonCT
	case codec.Proto:
		hdr["Content-Type"] = h.protoCT
	default:
		hdr.Set("Content-Type", cod.ContentType())
	}
	switch {
	case len(cs.Call.Trailer) > 0:
		// HTTP trailers: the reply goes chunked, its trailer after it.
		delete(hdr, "Content-Length")
		setTrailers(hdr, cs.Call.Trailer)
	case len(out) >= chunkThreshold:
		hdr["Content-Length"] = []string{strconv.Itoa(len(out))}
	default:
		delete(hdr, "Content-Length") // net/http fills it in
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// bodyCodec returns the codec r's body is decoded with (JSON when the route
// takes no body). When the body's type or encoding is not one the route
// reads, it answers r and returns false.
func (rt *route) bodyCodec(w http.ResponseWriter, r *http.Request) (codec.Codec, bool) {
	if !rt.body {
		return codec.JSON, true
	}
	cod, ok := requestCodec(r.Header["Content-Type"])
	if !ok {
		ct := r.Header.Get("Content-Type")
		writeProblem(w, http.StatusUnsupportedMediaType, errs.Newf(errs.InvalidArgument,
			"unsupported content type %q: want application/json or application/protobuf", ct).
			WithDetails(errs.Detail{Field: "Content-Type", Reason: "unsupported media type"}))
		return nil, false
	}
	if cod == codec.Proto && rt.noProto != nil {
		writeProblem(w, http.StatusUnsupportedMediaType, errs.Newf(errs.InvalidArgument,
			"endpoint %s/%s cannot be called with protobuf (%v); use application/json", rt.h.service, rt.ep.Name, rt.noProto).
			WithDetails(errs.Detail{Field: "Content-Type", Reason: "unsupported media type"}))
		return nil, false
	}
	if ce := r.Header["Content-Encoding"]; len(ce) > 0 && !strings.EqualFold(ce[0], "identity") {
		writeProblem(w, http.StatusUnsupportedMediaType, errs.Newf(errs.InvalidArgument,
			"unsupported content encoding %q: send the body uncompressed", ce[0]).
			WithDetails(errs.Detail{Field: "Content-Encoding", Reason: "unsupported encoding"}))
		return nil, false
	}
	return cod, true
}

// badTimeout answers a request whose Ferry-Timeout-Ms header v is not a
// timeout.
func badTimeout(w http.ResponseWriter, v string) {
	writeProblem(w, http.StatusBadRequest, errs.Newf(errs.InvalidArgument,
		"header %s: %q is not a whole number of milliseconds greater than 0", TimeoutHeader, errs.Clip(v)).
		WithDetails(errs.Detail{Field: TimeoutHeader, Reason: "want an integer > 0"}))
}

// readRequest decodes r's body with cod (on a route that takes one), then
// sets req's fields from the path and query (on a REST or GET route). On a
// bad request it answers r and returns false.
func (rt *route) readRequest(w http.ResponseWriter, r *http.Request, cod codec.Codec, req any) bool {
	if rt.body {
		if status, e := rt.decode(r, cod, req); e != nil {
			if status == http.StatusRequestEntityTooLarge {
				// The rest of the body is unread: do not reuse the connection.
				w.Header().Set("Connection", "close")
			}
			writeProblem(w, status, e)
			return false
		}
	}
	if rt.bind != nil {
		if e := rt.bind.bind(r, req); e != nil {
			writeProblem(w, http.StatusBadRequest, e)
			return false
		}
	}
	return true
}

// requestCodec picks the codec for a Content-Type header. No type and the
// form type that `curl -d` sends both mean JSON.
func requestCodec(vals []string) (codec.Codec, bool) {
	if len(vals) == 0 {
		return codec.JSON, true
	}
	ct := vals[0]
	mt := ct
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.TrimSpace(mt)
	switch {
	case mt == "", strings.EqualFold(mt, "application/json"), strings.EqualFold(mt, formType):
		return codec.JSON, true
	case strings.EqualFold(mt, "application/protobuf"):
		return codec.Proto, true
	}
	return codec.ForContentType(ct)
}

const formType = "application/x-www-form-urlencoded"

func isForm(vals []string) bool {
	return len(vals) > 0 && strings.HasPrefix(strings.ToLower(strings.TrimSpace(vals[0])), formType)
}

// decode reads the body, within the size limit, and decodes it into req.
// An empty body leaves req zero.
func (rt *route) decode(r *http.Request, cod codec.Codec, req any) (int, *errs.Error) {
	h := rt.h
	if r.ContentLength > h.maxBody {
		return http.StatusRequestEntityTooLarge, tooLarge(h.maxBody)
	}
	// Only codecs known to copy out of their input may decode from a pooled
	// buffer: encoding/json, protojson, proto.Unmarshal and protostruct do.
	pooled := cod == codec.JSON || cod == codec.Proto
	var bp *[]byte
	if pooled {
		bp = h.getBuf()
		defer h.putBuf(bp)
	} else {
		bp = new([]byte)
	}
	body, err := readBody(r.Body, *bp, r.ContentLength, h.maxBody)
	*bp = body
	switch {
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, tooLarge(h.maxBody)
	case err != nil:
		return http.StatusBadRequest, errs.Newf(errs.InvalidArgument, "reading the request body: %v", err)
	}
	if len(body) == 0 {
		return 0, nil
	}
	dec := cod
	if cod == codec.JSON {
		dec = h.json // server.WithJSON's
	}
	if err := dec.Unmarshal(body, req); err != nil {
		e := errs.Newf(errs.InvalidArgument, "decoding the %s request body: %v", cod.Name(), err)
		if isForm(r.Header["Content-Type"]) {
			e = errs.Newf(errs.InvalidArgument, "decoding the request body: %v (form content is read as JSON, as `curl -d` sends JSON with this type)", err)
		}
		return http.StatusBadRequest, e
	}
	return 0, nil
}

func tooLarge(limit int64) *errs.Error {
	return errs.Newf(errs.ResourceExhausted, "request body exceeds the %d-byte limit", limit)
}

var errTooLarge = errors.New("body too large")

// readBody appends all of body to buf. It stops with errTooLarge once more
// than limit bytes have arrived; size, when known, sizes buf up front.
func readBody(body io.Reader, buf []byte, size, limit int64) ([]byte, error) {
	if size > 0 && int64(cap(buf)) < size+1 {
		buf = make([]byte, 0, size+1) // +1 so the final read sees EOF without growing
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// maxPooledBuf keeps rare huge bodies from pinning memory in the pool.
const maxPooledBuf = 64 << 10

func (h *handler) getBuf() *[]byte {
	if bp, _ := h.bufs.Get().(*[]byte); bp != nil {
		return bp
	}
	b := make([]byte, 0, 4<<10)
	return &b
}

func (h *handler) putBuf(bp *[]byte) {
	if cap(*bp) > maxPooledBuf {
		return
	}
	*bp = (*bp)[:0]
	h.bufs.Put(bp)
}
