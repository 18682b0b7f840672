package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/internal/timeoutms"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
)

// Defaults.
const (
	// DefaultMaxBody is the largest request body forwarded.
	DefaultMaxBody = 4 << 20
	// DefaultTimeout is the deadline of a request without Ferry-Timeout-Ms.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxTimeout caps the deadline a request may ask for.
	DefaultMaxTimeout = 5 * time.Minute
)

// TransportHeader is the request header that pins the transport of one
// call — "nats", "http", "grpc", or a plug-in's kind that some instance
// registered — as a developer dashboard's API explorer does. It is read
// by the gateway and never forwarded. An unknown name is a 400 naming it;
// a transport the service's instances do not offer is a 503 naming the
// service and the transport; both without a backend call. The pin reaches
// the gateway's client through client.WithCallTransport (honoured by
// client.Client).
const TransportHeader = "Ferry-Transport"

// Rule changes how the gateway exposes one service or endpoint; see
// WithRules.
type Rule struct {
	// Service names the service; Endpoint one of its endpoints, or "" for
	// the whole service.
	Service, Endpoint string
	// Path exposes the endpoint at this path instead of
	// /<service>/<Endpoint> ("/api/greet"). Endpoint rules only.
	Path string
	// Hide stops routing the service or endpoint.
	Hide bool
	// Pin keeps the route while the service has no instances: callers get
	// Unavailable (503) instead of NotFound (404). Endpoint rules only.
	Pin bool
}

// Option configures a Gateway.
type Option func(*config)

type config struct {
	mws        []middleware.Middleware
	rules      []Rule
	maxBody    int64
	timeout    time.Duration
	maxTimeout time.Duration
	logger     *slog.Logger
	dropHeader map[string]bool
	errs       []error
}

// WithMiddleware sets the edge middleware, outermost first: it runs for
// every routed request before any backend is called — auth, rate limits,
// request ids, tracing, metrics, access logs — and sees a transport.Call
// naming the backend service and endpoint, with the HTTP request's headers
// as Call.Request. An error it returns is answered as problem+json. The
// request is a json.RawMessage whose bytes the gateway reuses once the
// reply is written: middleware that keeps them longer keeps a copy.
func WithMiddleware(mws ...middleware.Middleware) Option {
	return func(c *config) { c.mws = append(c.mws, mws...) }
}

// WithRules pins, renames or hides services and endpoints. A rule naming
// a path that another rule also names is an error of New.
func WithRules(rules ...Rule) Option {
	return func(c *config) { c.rules = append(c.rules, rules...) }
}

// WithMaxBody sets the largest request body forwarded (default
// DefaultMaxBody); larger ones are refused with 413. Negative: no limit.
func WithMaxBody(n int64) Option {
	return func(c *config) {
		if n != 0 {
			c.maxBody = n
		}
	}
}

// WithTimeouts sets the deadline of requests without Ferry-Timeout-Ms
// (default DefaultTimeout) and the longest one a request may ask for
// (default DefaultMaxTimeout); zero keeps a default.
func WithTimeouts(def, max time.Duration) Option {
	return func(c *config) {
		if def < 0 || max < 0 {
			c.errs = append(c.errs, fmt.Errorf("gateway: negative timeout"))
			return
		}
		if def > 0 {
			c.timeout = def
		}
		if max > 0 {
			c.maxTimeout = max
		}
	}
}

// WithLogger sets where the gateway logs (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithoutForwarding names request headers that are not passed on to the
// services (besides the hop-by-hop ones, which never are), such as
// "Authorization" once the edge has checked it.
func WithoutForwarding(headers ...string) Option {
	return func(c *config) {
		for _, h := range headers {
			c.dropHeader[http.CanonicalHeaderKey(h)] = true
		}
	}
}

// Gateway is an HTTP entry point for every service of a registry: a POST
// to /<service>/<Endpoint> with a JSON body is forwarded to a live
// instance through the gateway's client, and its reply or error answered
// as the service's own HTTP transport would. Routes follow the registry:
// they appear when a service registers and disappear when its last
// instance goes. Create it with New, Start it, and serve it with any
// http.Server (it is an http.Handler); Stop ends the catalogue watch.
type Gateway struct {
	cat    registry.Catalog
	client transport.Client
	cfg    config
	chain  middleware.Handler

	table atomic.Pointer[table]

	mu      sync.Mutex
	watcher registry.Watcher
	done    chan struct{}
	first   chan struct{} // closed once the first catalogue is in
}

// New returns a gateway routing to the services cat lists, called through
// c — normally a client.Client on the same registry, which picks the
// instance and the transport, retries idempotent endpoints and breaks
// circuits.
func New(cat registry.Catalog, c transport.Client, opts ...Option) (*Gateway, error) {
	if cat == nil || c == nil {
		return nil, errors.New("gateway: New needs a catalogue and a client")
	}
	cfg := config{maxBody: DefaultMaxBody, timeout: DefaultTimeout, maxTimeout: DefaultMaxTimeout,
		logger: slog.Default(), dropHeader: map[string]bool{}}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := CheckRules(cfg.rules); err != nil {
		cfg.errs = append(cfg.errs, err)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	g := &Gateway{cat: cat, client: c, cfg: cfg, first: make(chan struct{})}
	g.chain = middleware.Chain(cfg.mws...)(g.forward)
	g.table.Store(g.buildTable(nil))
	return g, nil
}

// Start starts following the catalogue and returns once the first set of
// services is in (or ctx ends).
func (g *Gateway) Start(ctx context.Context) error {
	g.mu.Lock()
	if g.done != nil {
		g.mu.Unlock()
		return errors.New("gateway: already started")
	}
	w, err := g.cat.WatchAll(ctx)
	if err != nil {
		g.mu.Unlock()
		return fmt.Errorf("gateway: watch the registry: %w", err)
	}
	g.watcher, g.done = w, make(chan struct{})
	g.mu.Unlock()
	go g.follow(w)
	select {
	case <-g.first:
		return nil
	case <-ctx.Done():
		_ = g.Stop(context.Background())
		return fmt.Errorf("gateway: waiting for the registry: %w", ctx.Err())
	}
}

// follow rebuilds the route table on every change of the catalogue.
func (g *Gateway) follow(w registry.Watcher) {
	defer close(g.done)
	var once sync.Once
	ctx := context.Background()
	for {
		ins, err := w.Next(ctx)
		if errors.Is(err, registry.ErrWatcherStopped) {
			return
		}
		if err != nil {
			g.cfg.logger.Warn("gateway: the registry failed; routes stay as they were", "error", err)
			continue // Next waits for the registry again
		}
		g.table.Store(g.buildTable(ins))
		once.Do(func() { close(g.first) })
	}
}

// Stop ends the catalogue watch. Requests in flight are the http.Server's
// to drain.
func (g *Gateway) Stop(context.Context) error {
	g.mu.Lock()
	w, done := g.watcher, g.done
	g.watcher = nil
	g.mu.Unlock()
	if w == nil {
		return nil
	}
	err := w.Stop()
	<-done
	return err
}

// Route is one route of the gateway.
type Route struct {
	// Path is where it is served: "/greeter/Hello" for POST, or a pattern
	// with its method for a REST route or a GET ("GET /v1/hello/{name}").
	Path string
	// Service and Endpoint are what it calls.
	Service, Endpoint string
	// Instances counts the service's live instances (0 for a pinned route
	// of a service that has none).
	Instances int
}

// Routes returns the current routes, sorted by path. Services whose
// instances do not list their endpoints (registry.MetadataEndpoints) are
// routed for any endpoint name and listed with Endpoint "*".
func (g *Gateway) Routes() []Route {
	t := g.table.Load()
	out := make([]Route, 0, len(t.routes))
	for path, r := range t.routes {
		out = append(out, Route{Path: path, Service: r.service, Endpoint: r.endpoint, Instances: t.instances[r.service]})
	}
	for svc := range t.open {
		out = append(out, Route{Path: "/" + svc + "/*", Service: svc, Endpoint: "*", Instances: t.instances[svc]})
	}
	for _, r := range t.patterns {
		r.Instances = t.instances[r.Service]
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// table is one immutable routing state.
type table struct {
	routes    map[string]route           // path → route
	open      map[string]bool            // services routed for any endpoint name
	hidden    map[string]bool            // "svc" or "svc/Ep" hidden by a rule
	instances map[string]int             // service → live instances
	kinds     map[string]map[string]bool // service → transports its instances offer
	anyKind   map[string]bool            // every transport some instance offers
	rest      *http.ServeMux             // REST routes and GET of idempotent endpoints
	patterns  []Route                    // what rest serves, for Routes
}

type route struct {
	service, endpoint string
	stream            transport.StreamKind // a streaming endpoint (registry.MetadataStreams)
}

func (g *Gateway) buildTable(ins []registry.Instance) *table {
	rules := g.cfg.rules
	t := &table{routes: map[string]route{}, open: map[string]bool{}, hidden: map[string]bool{}, instances: map[string]int{},
		kinds: map[string]map[string]bool{}, anyKind: map[string]bool{}, rest: http.NewServeMux()}
	paths := map[string]string{} // "svc/Ep" → renamed path
	for _, r := range rules {
		key := r.Service
		if r.Endpoint != "" {
			key += "/" + r.Endpoint
		}
		if r.Hide {
			t.hidden[key] = true
		}
		if r.Path != "" {
			paths[key] = r.Path
		}
	}
	pathOf := func(svc, ep string) string {
		if path, ok := paths[svc+"/"+ep]; ok {
			return path
		}
		return "/" + svc + "/" + ep
	}
	add := func(svc, ep string) {
		if t.hidden[svc] || t.hidden[svc+"/"+ep] {
			return
		}
		t.routes[pathOf(svc, ep)] = route{service: svc, endpoint: ep}
	}
	served := map[string]bool{} // REST patterns registered
	addREST := func(svc, ep, pattern string, params map[string]string) {
		if t.hidden[svc] || t.hidden[svc+"/"+ep] || served[pattern] {
			return
		}
		served[pattern] = true
		rt := route{service: svc, endpoint: ep}
		h := g.restHandler(rt, pattern, params)
		if err := handleSafely(t.rest, pattern, h); err != nil {
			g.cfg.logger.Warn("gateway: route not served", "service", svc, "endpoint", ep, "route", pattern, "error", err)
			return
		}
		t.patterns = append(t.patterns, Route{Path: pattern, Service: svc, Endpoint: ep})
	}
	for _, in := range ins {
		t.instances[in.Service]++
		for _, ep := range in.Endpoints {
			if t.kinds[in.Service] == nil {
				t.kinds[in.Service] = map[string]bool{}
			}
			t.kinds[in.Service][ep.Transport] = true
			t.anyKind[ep.Transport] = true
		}
		names, ok := in.EndpointNames()
		if !ok {
			if !t.hidden[in.Service] {
				t.open[in.Service] = true
			}
			continue
		}
		for _, ep := range names {
			add(in.Service, ep)
		}
		for ep, kind := range in.StreamKinds() {
			if rt, ok := t.routes[pathOf(in.Service, ep)]; ok {
				rt.stream = kind
				t.routes[pathOf(in.Service, ep)] = rt
			}
		}
		infos, err := in.RouteInfos()
		if err != nil {
			g.cfg.logger.Warn("gateway: instance routes ignored", "error", err)
		}
		for _, ep := range slices.Sorted(maps.Keys(infos)) {
			info := infos[ep]
			if in.Idempotent(ep) {
				addREST(in.Service, ep, "GET "+pathOf(in.Service, ep), info.Params)
			}
			for _, pattern := range info.Routes {
				addREST(in.Service, ep, pattern, info.Params)
			}
		}
	}
	for _, r := range rules {
		if r.Pin && r.Endpoint != "" {
			add(r.Service, r.Endpoint)
		}
	}
	return t
}

// CheckRules reports what is wrong with rules, as New would: a rule
// without a service, a path or pin without an endpoint, a path not
// starting with /, two rules on one path.
func CheckRules(rules []Rule) error {
	var problems []error
	seen := map[string]string{}
	for i, r := range rules {
		switch {
		case r.Service == "":
			problems = append(problems, fmt.Errorf("gateway: rule %d names no service", i))
		case r.Endpoint == "" && (r.Path != "" || r.Pin):
			problems = append(problems, fmt.Errorf("gateway: rule %d (%s): path and pin need an endpoint", i, r.Service))
		case r.Path != "" && !strings.HasPrefix(r.Path, "/"):
			problems = append(problems, fmt.Errorf("gateway: rule %d (%s/%s): path %q must start with /", i, r.Service, r.Endpoint, r.Path))
		case r.Path != "":
			if prev, dup := seen[r.Path]; dup {
				problems = append(problems, fmt.Errorf("gateway: rules %s and %d both use path %q", prev, i, r.Path))
			}
			seen[r.Path] = fmt.Sprint(i)
		}
	}
	return errors.Join(problems...)
}

// lookup finds the route of path: ok false with the error to answer.
func (t *table) lookup(path string) (route, error) {
	if r, ok := t.routes[path]; ok {
		return r, nil
	}
	svc, ep, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if ok && svc != "" && ep != "" && !strings.Contains(ep, "/") && t.open[svc] && !t.hidden[svc+"/"+ep] {
		return route{service: svc, endpoint: ep}, nil
	}
	switch {
	case !ok || svc == "" || ep == "" || strings.Contains(ep, "/"):
		return route{}, errs.Newf(errs.NotFound, "no route for %q", errs.Clip(path))
	case t.instances[svc] == 0 || t.hidden[svc]:
		return route{}, errs.Newf(errs.NotFound, "no service %q is running", errs.Clip(svc))
	}
	return route{}, errs.Newf(errs.NotFound, "service %q has no endpoint %q", errs.Clip(svc), errs.Clip(ep))
}

// hopHeaders are never forwarded: hop-by-hop ones (RFC 9110 §7.6.1), what
// the transports set themselves, and what clients say of themselves.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Host": true, "Content-Length": true, "Content-Type": true,
	"Accept-Encoding": true, "Content-Encoding": true, "Proxy-Authorization": true, "Proxy-Authenticate": true,
	fhttp.TimeoutHeader: true, TransportHeader: true, "Traceparent": true, "Tracestate": true, "Baggage": true,
	// What browsers and HTTP clients send about themselves, of no use to a
	// service and costly on the wire (a NATS call without headers is much
	// cheaper): the edge middleware still sees them.
	"Accept": true, "Accept-Language": true, "User-Agent": true, "Cache-Control": true, "Pragma": true,
	"Referer": true, "Origin": true, "Dnt": true, "Priority": true, "Upgrade-Insecure-Requests": true,
	"Sec-Fetch-Dest": true, "Sec-Fetch-Mode": true, "Sec-Fetch-Site": true, "Sec-Fetch-User": true,
	"Sec-Ch-Ua": true, "Sec-Ch-Ua-Mobile": true, "Sec-Ch-Ua-Platform": true,
}

// served is what one request needs, in one allocation.
type served struct {
	call  transport.Call
	reply transport.Metadata
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := g.table.Load()
	if r.Method == http.MethodPost {
		if rt, err := t.lookup(r.URL.Path); err == nil {
			g.serve(w, r, rt, nil)
			return
		}
	}
	if _, pattern := t.rest.Handler(r); pattern != "" {
		t.rest.ServeHTTP(w, r) // sets the path values
		return
	}
	_, err := t.lookup(r.URL.Path)
	if err == nil { // a route, but not for this method
		allow := http.MethodPost
		if _, pattern := t.rest.Handler(&http.Request{Method: http.MethodGet, URL: r.URL, Host: r.Host}); pattern != "" {
			allow += ", " + http.MethodGet
		}
		w.Header().Set("Allow", allow)
		fhttp.WriteProblem(w, http.StatusMethodNotAllowed, errs.Newf(errs.Unimplemented,
			"method %s is not allowed on %q; allowed: %s", errs.Clip(r.Method), errs.Clip(r.URL.Path), allow))
		return
	}
	fhttp.WriteError(w, err)
}

// restHandler serves a REST route, or the GET of an idempotent endpoint:
// the path wildcards and query parameters become fields of the JSON
// request, by the kinds the service registered.
func (g *Gateway) restHandler(rt route, pattern string, params map[string]string) http.Handler {
	method, path, _ := strings.Cut(pattern, " ")
	wild := wildcards(path)
	body := method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.serve(w, r, rt, func(in []byte) ([]byte, error) {
			if !body {
				in = nil
			}
			return bindREST(r, wild, params, in)
		})
	})
}

// handleSafely registers h on mux for pattern, turning the panic of a
// malformed or conflicting pattern into an error.
func handleSafely(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// wildcards returns the names of a path pattern's wildcards ("{name}",
// "{rest...}" as "rest").
func wildcards(path string) []string {
	var out []string
	for {
		i := strings.IndexByte(path, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(path[i:], '}')
		if j < 0 {
			return out
		}
		name := strings.TrimSuffix(path[i+1:i+j], "...")
		if name != "" && name != "$" {
			out = append(out, name)
		}
		path = path[i+j+1:]
	}
}

// bindREST makes the JSON request of a REST call: the body's object (if
// any), with the path wildcards and the query parameters set by their
// kinds. An unknown parameter, or a value of the wrong kind, is an
// InvalidArgument naming it.
func bindREST(r *http.Request, wild []string, params map[string]string, body []byte) ([]byte, error) {
	obj := map[string]json.RawMessage{}
	if len(body) > 0 && string(body) != "{}" {
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, errs.New(errs.InvalidArgument, "the request body must be a JSON object").
				WithDetails(errs.Detail{Field: "body", Reason: "want a JSON object"})
		}
	}
	for _, name := range wild {
		kind, ok := params[name]
		if !ok {
			kind = "string"
		}
		v, err := jsonValue(name, kind, []string{r.PathValue(name)})
		if err != nil {
			return nil, err
		}
		obj[name] = v
	}
	query := r.URL.Query()
	for _, name := range slices.Sorted(maps.Keys(query)) {
		kind, ok := params[name]
		if !ok {
			return nil, errs.Newf(errs.InvalidArgument, "unknown query parameter %q", errs.Clip(name)).
				WithDetails(errs.Detail{Field: errs.Clip(name), Reason: "unknown parameter"})
		}
		v, err := jsonValue(name, kind, query[name])
		if err != nil {
			return nil, err
		}
		obj[name] = v
	}
	return json.Marshal(obj)
}

// jsonValue is the JSON of values as kind.
func jsonValue(name, kind string, values []string) (json.RawMessage, error) {
	if elem, ok := strings.CutPrefix(kind, "array:"); ok {
		parts := make([]json.RawMessage, 0, len(values))
		for _, v := range values {
			p, err := jsonValue(name, elem, []string{v})
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
		}
		return json.Marshal(parts)
	}
	if len(values) != 1 {
		return nil, errs.Newf(errs.InvalidArgument, "parameter %q given %d times; it takes one value", name, len(values)).
			WithDetails(errs.Detail{Field: name, Reason: "repeated"})
	}
	v := values[0]
	bad := func(want string) error {
		return errs.Newf(errs.InvalidArgument, "parameter %q: %q is not %s", name, errs.Clip(v), want).
			WithDetails(errs.Detail{Field: name, Reason: "want " + want})
	}
	switch kind {
	case "integer":
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			if _, uerr := strconv.ParseUint(v, 10, 64); uerr != nil {
				return nil, bad("an integer")
			}
		}
		return json.RawMessage(v), nil
	case "number":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, bad("a number")
		}
		return json.RawMessage(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case "boolean":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, bad("true or false")
		}
		return json.RawMessage(strconv.FormatBool(b)), nil
	}
	return json.Marshal(v)
}

// serve forwards one request to rt: its body as it is, or what bind makes
// of it.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, rt route, bind func([]byte) ([]byte, error)) {
	if rt.stream != transport.Unary {
		fhttp.WriteError(w, errs.Newf(errs.Unimplemented,
			"%s/%s is a %s endpoint: the gateway does not proxy streams; open it on the service's own transports "+
				"(HTTP serves it as Server-Sent Events, NDJSON or a WebSocket)", rt.service, rt.endpoint, rt.stream))
		return
	}
	timeout := g.cfg.timeout
	if v := r.Header[fhttp.TimeoutHeader]; len(v) > 0 {
		d, ok := timeoutms.Parse(v[0], g.cfg.maxTimeout)
		if !ok {
			fhttp.WriteError(w, errs.Newf(errs.InvalidArgument, "header %s: %q is not a whole number of milliseconds greater than 0",
				fhttp.TimeoutHeader, errs.Clip(v[0])).WithDetails(errs.Detail{Field: fhttp.TimeoutHeader, Reason: "want an integer > 0"}))
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	ctx, err := g.pinTransport(ctx, r.Header, rt.service)
	if err != nil {
		fhttp.WriteError(w, err)
		return
	}

	body := r.Body
	if g.cfg.maxBody > 0 {
		body = http.MaxBytesReader(w, r.Body, g.cfg.maxBody)
	}
	bp := getBody()
	defer putBody(bp)
	in, err := readAll(body, *bp)
	*bp = in
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			w.Header().Set("Connection", "close")
			fhttp.WriteProblem(w, http.StatusRequestEntityTooLarge, errs.Newf(errs.ResourceExhausted,
				"request body exceeds the %d-byte limit", g.cfg.maxBody).WithDetails(errs.Detail{Field: "body", Reason: "too large"}))
			return
		}
		fhttp.WriteError(w, errs.Newf(errs.InvalidArgument, "reading the request body: %v", err))
		return
	}
	if len(in) == 0 {
		in = []byte("{}")
	} else if !json.Valid(in) {
		fhttp.WriteError(w, errs.New(errs.InvalidArgument, "the request body is not valid JSON").
			WithDetails(errs.Detail{Field: "body", Reason: "invalid JSON"}))
		return
	}
	if bind != nil {
		if in, err = bind(in); err != nil {
			fhttp.WriteError(w, err)
			return
		}
	}

	s := &served{}
	s.call = transport.Call{
		Service: rt.service, Endpoint: rt.endpoint, Kind: transport.HTTP,
		Request: fhttp.Header(r.Header), Reply: fhttp.Header(w.Header()), Peer: r.RemoteAddr,
		Method: r.Method, Route: r.URL.Path, Target: r.URL.Path, TLS: r.TLS != nil,
	}
	s.call.Deadline, _ = ctx.Deadline()
	ctx = transport.NewCallContext(ctx, &s.call)
	out, err := g.chain(ctx, json.RawMessage(in))
	if err != nil {
		fhttp.WriteError(w, g.edgeError(ctx, rt, err))
		return
	}
	raw, _ := out.(json.RawMessage)
	w.Header()["Content-Type"] = jsonCT
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(raw)
}

// pinTransport pins the call to the transport TransportHeader names, if
// any: an error for a name no instance registered and none of the
// built-in ones, or for a transport svc's instances do not offer.
func (g *Gateway) pinTransport(ctx context.Context, h http.Header, svc string) (context.Context, error) {
	v := h[TransportHeader]
	if len(v) == 0 {
		return ctx, nil
	}
	kind := strings.ToLower(strings.TrimSpace(v[0]))
	t := g.table.Load()
	known := map[string]bool{string(transport.HTTP): true, string(transport.GRPC): true, string(transport.NATS): true}
	maps.Copy(known, t.anyKind)
	if !known[kind] {
		return ctx, errs.Newf(errs.InvalidArgument, "header %s: unknown transport %q; want one of %s",
			TransportHeader, errs.Clip(v[0]), strings.Join(slices.Sorted(maps.Keys(known)), ", ")).
			WithDetails(errs.Detail{Field: TransportHeader, Reason: "unknown transport"})
	}
	if offered := t.kinds[svc]; len(offered) > 0 && !offered[kind] {
		return ctx, errs.Newf(errs.Unavailable, "service %s is not served over %s (its instances offer %s)",
			svc, kind, strings.Join(slices.Sorted(maps.Keys(offered)), ", "))
	}
	return client.WithCallTransport(ctx, transport.Kind(kind)), nil
}

// bodies holds request body buffers for reuse; a request's buffer goes
// back once its reply is written (the transport clients copy what they
// send). Buffers past maxPooledBody are dropped, so one large body does not
// stay pinned.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 1<<10); return &b }}

const maxPooledBody = 64 << 10

func getBody() *[]byte { return bodies.Get().(*[]byte) }

func putBody(bp *[]byte) {
	if cap(*bp) <= maxPooledBody {
		*bp = (*bp)[:0]
		bodies.Put(bp)
	}
}

// readAll appends all of r to buf.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// jsonCT is the Content-Type of every reply, shared read-only.
var jsonCT = []string{"application/json"}

// forward calls the backend: the innermost handler of the edge chain.
func (g *Gateway) forward(ctx context.Context, req any) (any, error) {
	call, _ := transport.CallFromContext(ctx)
	in, ok := req.(json.RawMessage)
	if !ok {
		return nil, errs.Newf(errs.Internal, "gateway: edge middleware replaced the request with a %T", req)
	}
	if md := g.metadata(call.Request); md != nil {
		ctx = transport.WithMetadata(ctx, md)
	}
	var reply transport.Metadata
	ctx = transport.CaptureReply(ctx, &reply)
	var out json.RawMessage
	err := g.client.Invoke(ctx, call.Service, call.Endpoint, in, &out)
	hh, direct := call.Reply.(fhttp.Header)
	for k, vs := range reply {
		if ck := http.CanonicalHeaderKey(k); !hopHeaders[ck] && httpSafe(ck, vs) {
			if direct {
				hh[ck] = vs // reply is the gateway's own copy
				continue
			}
			call.Reply.Del(ck)
			for _, v := range vs {
				call.Reply.Add(ck, v)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = json.RawMessage("null")
	}
	return out, nil
}

// metadata is what of the request headers h goes to the service, nil
// when nothing does (a call without metadata costs less, on NATS most).
func (g *Gateway) metadata(h transport.Header) transport.Metadata {
	var md transport.Metadata
	if hh, ok := h.(fhttp.Header); ok {
		// The request's own headers: keys canonical already, read in place.
		for k, vs := range hh {
			if hopHeaders[k] || g.cfg.dropHeader[k] || len(vs) == 0 || !portable(k, vs) {
				continue
			}
			if md == nil {
				md = make(transport.Metadata, len(hh))
			}
			md[strings.ToLower(k)] = vs // read only from here on: the client copies what it sends
		}
		return md
	}
	for _, k := range h.Keys() { // edge middleware replaced the headers
		if ck := http.CanonicalHeaderKey(k); !hopHeaders[ck] && !g.cfg.dropHeader[ck] && portable(k, h.Values(k)) {
			if md == nil {
				md = transport.Metadata{}
			}
			for _, v := range h.Values(k) {
				md.Add(k, v)
			}
		}
	}
	return md
}

// portable reports whether a request header can travel as metadata on
// every transport, gRPC's being the narrowest: a name of [0-9A-Za-z-_.],
// and values of printable ASCII unless the name ends in "-bin". Others
// are not forwarded, over any transport, so a call reads the same whichever
// the client picks (over gRPC they would fail it).
func portable(key string, vals []string) bool {
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	if len(key) > 4 && strings.EqualFold(key[len(key)-4:], "-bin") {
		return true
	}
	for _, v := range vals {
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return false
			}
		}
	}
	return true
}

// httpSafe reports whether a reply header can go out over HTTP: not a
// binary gRPC header ("-bin": grpc-status-details-bin, whose content the
// error already carries, or a service's own), no control characters.
func httpSafe(key string, vals []string) bool {
	if strings.HasSuffix(key, "-Bin") {
		return false
	}
	for _, v := range vals {
		for i := 0; i < len(v); i++ {
			if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
				return false
			}
		}
	}
	return true
}

// edgeError is what the public caller sees of err: what the service said,
// code, message and details, as the service's own HTTP transport would
// send it — except Unavailable, which the gateway's client also makes
// itself (no instances, a refused dial) with internal addresses in its
// message: that one says only which service is unavailable, and the
// original goes to the log.
func (g *Gateway) edgeError(ctx context.Context, rt route, err error) error {
	e := errs.FromError(err)
	if e.Code() != errs.Unavailable {
		return e
	}
	g.cfg.logger.WarnContext(ctx, "gateway: backend unavailable", "service", rt.service, "endpoint", rt.endpoint, "error", err)
	if kind, ok := client.CallTransport(ctx); ok {
		return errs.Newf(errs.Unavailable, "service %s is unavailable over %s; try again later", rt.service, kind)
	}
	return errs.Newf(errs.Unavailable, "service %s is unavailable; try again later", rt.service)
}
