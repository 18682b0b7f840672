package ferrytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/gateway"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/middleware/auth"
	"github.com/ferry-go/ferry/middleware/ratelimit"
	"github.com/ferry-go/ferry/middleware/requestid"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"github.com/ferry-go/ferry/transport/http/cors"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// GatewaySetup describes to GatewayConformance one way of fronting
// services with the gateway: the catalogue it follows and the transports
// its client calls over.
type GatewaySetup struct {
	// Transports are the gateway client's transports, most preferred first
	// (client.WithTransports): "nats", "http", "grpc". Every service the
	// suite starts serves exactly these, so a call can only go over them.
	Transports []string
	// Catalog returns the catalogue of one subtest, on the embedded NATS
	// server at natsURL that the suite started for it; t cleans it up. The
	// suite calls it in its child processes too, so given the same natsURL
	// it must reach the same catalogue in any process (a fixed bucket
	// name, no counter).
	Catalog func(t testing.TB, natsURL string) GatewayCatalog
	// Report, if set, receives each figure the suite measures, as
	// testing.B.ReportMetric does (a benchmark passes b.ReportMetric):
	// "route-appear-ms", "route-gone-ms", "route-gone-kill-ms",
	// "kill-calls", "kill-failed", "kill-attempts". The suite logs them
	// with t.Logf either way.
	Report func(n float64, unit string)
}

// GatewayCatalog is a catalogue as GatewayConformance uses it.
type GatewayCatalog struct {
	// Catalog is what the gateway follows.
	Catalog registry.Catalog
	// Discovery is where the gateway's client finds instances; nil means
	// Catalog, which must then also be a registry.Discovery.
	Discovery registry.Discovery
	// Announce returns the options that make a service the suite starts
	// known to the catalogue: ferry.WithRegistry(reg) for a registry. Nil
	// for a catalogue that finds services by itself (NATS $SRV discovery
	// finds every service serving NATS: list "nats" in Transports).
	Announce func() []ferry.Option
	// Shared says that instances announced in other processes reach the
	// catalogue; false for an in-process registry (registry/memory), which
	// skips the cases that need child processes.
	Shared bool
	// TTL is how long the catalogue may go on listing an instance that died
	// without a word (SIGKILL): a registry's TTL, a discovery's poll
	// interval. Zero skips the case that kills a lone instance and waits for
	// its route to go.
	TTL time.Duration
}

// gatewayChildEnv carries a child's spec: "<nats url> <service>".
const gatewayChildEnv = "FERRY_GATEWAY_CONFORMANCE_CHILD"

// GatewayConformance runs the gateway suite — issue #13's "Done when" —
// against one catalogue and one transport preference. It starts an
// embedded NATS server per subtest, the catalogue on it, a gateway.Gateway
// on the catalogue calling through a client.Client, and real Ferry
// services announced in the catalogue, and checks:
//
//   - ErrorCodes: every errs code a handler returns arrives at the edge as
//     the service's own HTTP transport sends it — status, Content-Type and
//     problem+json body byte for byte — unpinned and pinned to each of
//     Transports (gateway.TransportHeader). Unavailable is the one
//     documented exception: the gateway cannot tell a service's
//     Unavailable from its client's own (which may hold internal
//     addresses), so it answers the same status and code with a message
//     naming only the service.
//   - EdgeRejectsBeforeBackend: auth (API key and JWT) and a rate limit
//     running as edge middleware answer 401 and 429 (with Retry-After) and
//     the handler's call counter stays where it was; admitted calls are
//     counted.
//   - CORSPreflight: a preflight is answered at the edge (204 with the
//     allowed origin), with no backend call.
//   - RequestID: the edge's request ID (the caller's, or one it made) is in
//     the reply and is what the service saw.
//   - TransportPin: TransportHeader pins each of Transports; an unknown
//     name is a 400 naming it and a built-in transport the service does not
//     serve a 503 naming both, neither reaching the service; the header is
//     not forwarded.
//   - RouteLifecycle: a route is served once its service is announced and
//     is 404 once the service stopped; in a Shared catalogue with a TTL, a
//     route whose lone instance (a child process) is SIGKILLed goes within
//     the TTL.
//   - KillUnderLoad (Shared catalogues): two instances as child processes,
//     8 workers calling an idempotent endpoint through the gateway, one
//     instance SIGKILLed after 200 calls, 600 more: no call may fail.
//
// Timing. Issue #13 asks for a route within 1 s of a registration and gone
// within the TTL of a kill. Tests here do not assert wall-clock figures
// (see WaitBound): the suite measures the time from the service's Start
// (which returns once it is registered) to the first 200 through the
// gateway, and from Stop or SIGKILL to the route's removal, and reports
// them (t.Logf and Report); it asserts only with generous bounds — served
// within WaitBound, gone within TTL + WaitBound. The figures issue #13
// quotes are those reports.
//
// Child processes. The kill cases run instances as child processes,
// re-running this test binary on the test that called GatewayConformance
// (ferrytest.StartChildTest) with an environment variable set; in the
// child, GatewayConformance sees it and serves one instance — made from the
// same setup, announced through Catalog(…).Announce in the child's own
// process — until its stdin closes, instead of running the suite. So the
// calling package needs no TestMain hook, but the code of the calling test
// before GatewayConformance runs in each child too (keep it to building the
// setup), and its name must be unique.
func GatewayConformance(t *testing.T, setup GatewaySetup) {
	t.Helper()
	if spec := os.Getenv(gatewayChildEnv); spec != "" {
		gatewayChild(t, setup, spec)
		return
	}
	if len(setup.Transports) == 0 || setup.Catalog == nil {
		t.Fatal("ferrytest: GatewaySetup needs Transports and Catalog")
	}
	for _, k := range setup.Transports {
		if k != "http" && k != "grpc" && k != "nats" {
			t.Fatalf("ferrytest: GatewaySetup transport %q: the suite serves http, grpc and nats", k)
		}
	}
	s := &gwSuite{setup: setup, root: t.Name()}
	t.Run("ErrorCodes", s.errorCodes)
	t.Run("EdgeRejectsBeforeBackend", s.edgeRejects)
	t.Run("CORSPreflight", s.corsPreflight)
	t.Run("RequestID", s.requestID)
	t.Run("TransportPin", s.transportPin)
	t.Run("RouteLifecycle", s.routeLifecycle)
	t.Run("KillUnderLoad", s.killUnderLoad)
}

type gwSuite struct {
	setup GatewaySetup
	root  string // the name of the test that called GatewayConformance
}

// report logs a figure and hands it to the setup's Report.
func (s *gwSuite) report(t testing.TB, n float64, unit string) {
	t.Helper()
	t.Logf("%s: %v", unit, n)
	if s.setup.Report != nil {
		s.setup.Report(n, unit)
	}
}

// GatewayReply is the reply of the suite services' Hello.
type GatewayReply struct {
	Message string `json:"message"`
	// Kind is the transport that carried the call to the service.
	Kind string `json:"kind"`
	// RequestID is the request ID the service saw.
	RequestID string `json:"request_id"`
	// Pin is the gateway.TransportHeader the service saw ("" unless
	// forwarded).
	Pin string `json:"pin"`
}

// gwService is a service of the suite: Hello (idempotent, counted) and
// Fail (ErrorRequest's error, counted).
type gwService struct {
	svc   *ferry.Service
	calls atomic.Int64
	ref   string // base URL of a private HTTP transport of the same server
}

// startGWService starts service name on the setup's transports, announced
// through cat, until the end of the test; withRef adds a private,
// unannounced HTTP transport to compare the gateway's answers with. Hello
// sleeps for delay, to keep calls in flight.
func startGWService(t testing.TB, setup GatewaySetup, cat GatewayCatalog, natsURL, name string, delay time.Duration, withRef bool) *gwService {
	t.Helper()
	b := &gwService{}
	srv := server.New(name, server.WithLogger(quietLogger()))
	server.Handle(srv, "Hello", func(ctx context.Context, r *Echo) (*GatewayReply, error) {
		b.calls.Add(1)
		if delay > 0 {
			time.Sleep(delay)
		}
		out := &GatewayReply{Message: "hello " + r.Text}
		if c, ok := transport.CallFromContext(ctx); ok {
			out.Kind, out.RequestID, out.Pin = c.Kind.String(), c.Request.Get(requestid.Key), c.Request.Get(gateway.TransportHeader)
		}
		return out, nil
	}, server.WithIdempotent())
	server.Handle(srv, "Fail", func(_ context.Context, r *ErrorRequest) (*Empty, error) {
		b.calls.Add(1)
		code, ok := errs.ParseCode(r.Code)
		if !ok {
			return nil, errs.Newf(errs.InvalidArgument, "unknown code %q", r.Code)
		}
		e := errs.New(code, r.Message).WithDetails(errs.Detail{Field: r.Field, Reason: "is wrong"})
		if r.Reason != "" {
			e = e.WithReason(r.Reason).WithDomain(r.Domain)
		}
		for k, v := range r.Metadata {
			e = e.WithMetadata(k, v)
		}
		return nil, e
	})
	opts := []ferry.Option{ferry.WithLogger(quietLogger())}
	for _, k := range setup.Transports {
		switch k {
		case "http":
			opts = append(opts, ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")))
		case "grpc":
			opts = append(opts, ferry.WithTransport(fgrpc.NewServer("127.0.0.1:0")))
		case "nats":
			nc := fnats.ConnectTo(func() string { return natsURL })
			opts = append(opts, ferry.WithConnection(nc), ferry.WithTransport(nc.Serve()))
		}
	}
	if cat.Announce != nil {
		opts = append(opts, cat.Announce()...)
	}
	b.svc = ferry.New(srv, opts...)
	if err := b.svc.Start(Context(t)); err != nil {
		t.Fatalf("ferrytest: start %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.svc.Stop(ctx) // a second Stop, after the test's own, is a no-op
	})
	if withRef {
		ref := fhttp.NewServer("127.0.0.1:0")
		serve(t, srv, ref)
		b.ref = "http://" + ref.Addr().String()
	}
	return b
}

// gwEnv is one subtest's system: NATS, the catalogue, the gateway.
type gwEnv struct {
	setup   GatewaySetup
	natsURL string
	cat     GatewayCatalog
	g       *gateway.Gateway
	url     string // the gateway's base URL
	hc      *http.Client
}

type gwOptions struct {
	gateway []gateway.Option
	client  []client.Option
	wrap    func(http.Handler) http.Handler
}

func (s *gwSuite) env(t *testing.T, o gwOptions) *gwEnv {
	t.Helper()
	e := &gwEnv{setup: s.setup, natsURL: NATS(t).ClientURL()}
	e.cat = s.setup.Catalog(t, e.natsURL)
	d := e.cat.Discovery
	if d == nil {
		var ok bool
		if d, ok = e.cat.Catalog.(registry.Discovery); !ok {
			t.Fatalf("ferrytest: the catalogue %T is no registry.Discovery and GatewayCatalog.Discovery is nil", e.cat.Catalog)
		}
	}
	copts := []client.Option{client.WithTransports(s.setup.Transports...)}
	if slices.Contains(s.setup.Transports, "nats") {
		copts = append(copts, client.WithNATS(Connect(t, e.natsURL)))
	}
	c := must(client.New(d, append(copts, o.client...)...))(t)
	t.Cleanup(func() { _ = c.Close() })
	e.g = must(gateway.New(e.cat.Catalog, c, append([]gateway.Option{gateway.WithLogger(quietLogger())}, o.gateway...)...))(t)
	if err := e.g.Start(Context(t)); err != nil {
		t.Fatalf("ferrytest: start the gateway: %v", err)
	}
	t.Cleanup(func() { _ = e.g.Stop(context.Background()) })
	var h http.Handler = e.g
	if o.wrap != nil {
		h = o.wrap(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	e.hc = &http.Client{Transport: &http.Transport{}, Timeout: WaitBound}
	t.Cleanup(e.hc.CloseIdleConnections)
	return e
}

// do sends a request to the gateway (or to base+path when path is a
// full URL) and returns the status, headers and body.
func (e *gwEnv) do(t testing.TB, method, path, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	url := path
	if !strings.HasPrefix(path, "http") {
		url = e.url + path
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (e *gwEnv) post(t testing.TB, path, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	return e.do(t, http.MethodPost, path, body, hdr...)
}

// service starts a service of the suite in this process.
func (e *gwEnv) service(t testing.TB, name string, withRef bool) *gwService {
	t.Helper()
	return startGWService(t, e.setup, e.cat, e.natsURL, name, 0, withRef)
}

// routed waits until a call of name's Hello through the gateway succeeds.
func (e *gwEnv) routed(t testing.TB, name string) {
	t.Helper()
	Eventually(t, name+" routed by the gateway", func() bool {
		status, _, _ := e.post(t, "/"+name+"/Hello", `{}`)
		return status == http.StatusOK
	})
}

// instances returns the live instances the gateway routes path to.
func (e *gwEnv) instances(path string) int {
	for _, r := range e.g.Routes() {
		if r.Path == path {
			return r.Instances
		}
	}
	return 0
}

// problem is the problem+json body the suite reads.
type problem struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

func decodeProblem(t testing.TB, what, body string) problem {
	t.Helper()
	var p problem
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("%s: body %q is no problem+json: %v", what, body, err)
	}
	return p
}

func (s *gwSuite) errorCodes(t *testing.T) {
	e := s.env(t, gwOptions{})
	b := e.service(t, "failing", true)
	e.routed(t, "failing")
	pins := append([]string{""}, s.setup.Transports...)
	for _, c := range errs.Codes() {
		req := fmt.Sprintf(`{"code":%q,"message":"failed with %s","field":"f.%s","reason":"TEST_%s","domain":"test.ferry","metadata":{"k":"v"}}`,
			c, c, c, strings.ToUpper(c.String()))
		wantStatus, wantHdr, want := e.post(t, b.ref+"/failing/Fail", req)
		if wantStatus != errs.HTTPStatus(c) || wantHdr.Get("Content-Type") != fhttp.ProblemContentType {
			t.Fatalf("%s from the service's own HTTP transport = %d %q, want %d %s", c, wantStatus, wantHdr.Get("Content-Type"),
				errs.HTTPStatus(c), fhttp.ProblemContentType)
		}
		for _, pin := range pins {
			what := fmt.Sprintf("%s through the gateway", c)
			var hdr []string
			if pin != "" {
				what += " pinned to " + pin
				hdr = []string{gateway.TransportHeader, pin}
			}
			status, h, got := e.post(t, "/failing/Fail", req, hdr...)
			if status != wantStatus || h.Get("Content-Type") != wantHdr.Get("Content-Type") {
				t.Errorf("%s = %d %q, the service answers %d %q", what, status, h.Get("Content-Type"), wantStatus, wantHdr.Get("Content-Type"))
			}
			if c == errs.Unavailable {
				p := decodeProblem(t, what, got)
				if p.Code != c.String() || p.Status != wantStatus || !strings.Contains(p.Detail, "failing") || strings.Contains(got, "127.0.0.1") {
					t.Errorf("%s = %s; want code %s, the service named and no address", what, got, c)
				}
				continue
			}
			if got != want {
				t.Errorf("%s:\n%s\nthe service answers:\n%s", what, got, want)
			}
		}
	}
}

// jwtSecret signs the suite's tokens.
const jwtSecret = "ferrytest-gateway-conformance-secret-32b"

func signJWT(t testing.TB, key []byte, sub string, exp time.Time) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": exp.Unix()}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *gwSuite) edgeRejects(t *testing.T) {
	const key = "ferrytest-api-key-0123456789"
	authn := must(auth.New(auth.WithAPIKeys(map[string]string{key: "tester"}), auth.WithHMACKey([]byte(jwtSecret))))(t)
	// Two calls per caller per hour: the third is refused however slow the
	// machine.
	limit := must(ratelimit.New(rate.Every(time.Hour), 2, ratelimit.WithKey(ratelimit.ByPrincipal())))(t)
	e := s.env(t, gwOptions{gateway: []gateway.Option{gateway.WithMiddleware(authn.Require(), limit.Middleware())}})
	b := e.service(t, "guarded", false)
	Eventually(t, "guarded routed by the gateway", func() bool { return e.instances("/guarded/Hello") > 0 })

	now := time.Now()
	for _, c := range []struct {
		name string
		hdr  []string
	}{
		{"no credentials", nil},
		{"a wrong API key", []string{"X-Api-Key", "not-the-key-0123456789"}},
		{"a JWT signed with another key", []string{"Authorization", "Bearer " + signJWT(t, []byte("another-secret-of-at-least-32-bytes!"), "mallory", now.Add(time.Hour))}},
		{"an expired JWT", []string{"Authorization", "Bearer " + signJWT(t, []byte(jwtSecret), "ada", now.Add(-time.Hour))}},
		{"a malformed JWT", []string{"Authorization", "Bearer not.a.token"}},
	} {
		status, h, body := e.post(t, "/guarded/Hello", `{"text":"x"}`, c.hdr...)
		if p := decodeProblem(t, c.name, body); status != http.StatusUnauthorized || p.Code != "unauthenticated" ||
			h.Get("Content-Type") != fhttp.ProblemContentType {
			t.Errorf("with %s = %d %s, want 401 unauthenticated problem+json", c.name, status, body)
		}
	}
	if n := b.calls.Load(); n != 0 {
		t.Errorf("the service saw %d calls of unauthenticated requests, want 0", n)
	}
	token := signJWT(t, []byte(jwtSecret), "ada", now.Add(time.Hour))
	for _, cred := range [][]string{{"X-Api-Key", key}, {"Authorization", "Bearer " + token}} {
		for i := range 2 {
			if status, _, body := e.post(t, "/guarded/Hello", `{"text":"k"}`, cred...); status != http.StatusOK {
				t.Errorf("%s call %d = %d %s, want 200", cred[0], i+1, status, body)
			}
		}
		status, h, body := e.post(t, "/guarded/Hello", `{}`, cred...)
		p := decodeProblem(t, "over the limit", body)
		if secs, err := strconv.Atoi(h.Get("Retry-After")); status != http.StatusTooManyRequests || p.Code != "resource_exhausted" || err != nil || secs < 1 {
			t.Errorf("%s: third call within a burst of 2 = %d %s, Retry-After %q; want 429 resource_exhausted with Retry-After ≥ 1",
				cred[0], status, body, h.Get("Retry-After"))
		}
	}
	if n := b.calls.Load(); n != 4 {
		t.Errorf("the service saw %d calls, want the 4 admitted", n)
	}
}

func (s *gwSuite) corsPreflight(t *testing.T) {
	const origin = "https://app.example.com"
	filter := must(cors.New(cors.Options{AllowedOrigins: []string{origin}}))(t)
	e := s.env(t, gwOptions{wrap: filter})
	b := e.service(t, "browsed", false)
	e.routed(t, "browsed")
	before := b.calls.Load()
	for _, c := range []struct {
		origin, allow string
	}{{origin, origin}, {"https://evil.example.org", ""}} {
		status, h, body := e.do(t, http.MethodOptions, "/browsed/Hello", "", "Origin", c.origin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")
		if status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != c.allow {
			t.Errorf("preflight from %s = %d %s, Access-Control-Allow-Origin %q; want 204 and %q", c.origin, status, body,
				h.Get("Access-Control-Allow-Origin"), c.allow)
		}
	}
	if n := b.calls.Load() - before; n != 0 {
		t.Errorf("the service saw %d calls of preflights, want 0", n)
	}
	status, h, body := e.post(t, "/browsed/Hello", `{"text":"cors"}`, "Origin", origin)
	if status != http.StatusOK || h.Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("cross-origin POST = %d %s, Access-Control-Allow-Origin %q; want 200 and %q", status, body,
			h.Get("Access-Control-Allow-Origin"), origin)
	}
	if n := b.calls.Load() - before; n != 1 {
		t.Errorf("the service saw %d calls, want the 1 cross-origin POST", n)
	}
}

func (s *gwSuite) requestID(t *testing.T) {
	e := s.env(t, gwOptions{gateway: []gateway.Option{gateway.WithMiddleware(requestid.New())},
		client: []client.Option{client.WithMiddleware(requestid.Client())}})
	e.service(t, "traced", false)
	e.routed(t, "traced")
	for _, given := range []string{"", "req-0123456789"} {
		var hdr []string
		if given != "" {
			hdr = []string{"X-Request-Id", given}
		}
		status, h, body := e.post(t, "/traced/Hello", `{}`, hdr...)
		var r GatewayReply
		_ = json.Unmarshal([]byte(body), &r)
		id := h.Get("X-Request-Id")
		if status != http.StatusOK || id == "" || (given != "" && id != given) || r.RequestID != id {
			t.Errorf("request ID %q given: = %d %s, X-Request-Id %q; want 200, the ID (the given one if any) in the reply and seen by the service",
				given, status, body, id)
		}
	}
}

func (s *gwSuite) transportPin(t *testing.T) {
	e := s.env(t, gwOptions{})
	b := e.service(t, "pinned", false)
	e.routed(t, "pinned")
	for _, k := range s.setup.Transports {
		status, h, body := e.post(t, "/pinned/Hello", `{"text":"pin"}`, gateway.TransportHeader, k)
		var r GatewayReply
		_ = json.Unmarshal([]byte(body), &r)
		if status != http.StatusOK || h.Get("Content-Type") != "application/json" || r.Message != "hello pin" || r.Kind != k || r.Pin != "" {
			t.Errorf("%s: %s = %d %q %s; want 200 application/json, carried by %s, the header not forwarded",
				gateway.TransportHeader, k, status, h.Get("Content-Type"), body, k)
		}
	}
	before := b.calls.Load()
	status, _, body := e.post(t, "/pinned/Hello", `{}`, gateway.TransportHeader, "pigeon")
	if p := decodeProblem(t, "unknown transport", body); status != http.StatusBadRequest || p.Code != "invalid_argument" || !strings.Contains(p.Detail, "pigeon") {
		t.Errorf("%s: pigeon = %d %s; want 400 naming pigeon", gateway.TransportHeader, status, body)
	}
	for _, k := range []string{"http", "grpc", "nats"} {
		if slices.Contains(s.setup.Transports, k) {
			continue
		}
		status, _, body := e.post(t, "/pinned/Hello", `{}`, gateway.TransportHeader, k)
		p := decodeProblem(t, "transport not offered", body)
		if status != http.StatusServiceUnavailable || p.Code != "unavailable" || !strings.Contains(p.Detail, "pinned") || !strings.Contains(p.Detail, k) {
			t.Errorf("%s: %s, which the service does not serve, = %d %s; want 503 naming the service and %s", gateway.TransportHeader, k, status, body, k)
		}
	}
	if n := b.calls.Load() - before; n != 0 {
		t.Errorf("the service saw %d calls of refused pins, want 0", n)
	}
}

func (s *gwSuite) routeLifecycle(t *testing.T) {
	e := s.env(t, gwOptions{})
	if status, _, body := e.post(t, "/appearing/Hello", `{}`); status != http.StatusNotFound {
		t.Fatalf("before the service started = %d %s, want 404", status, body)
	}
	svc := e.service(t, "appearing", false)
	announced := time.Now() // Start returns once the service is registered
	e.routed(t, "appearing")
	s.report(t, ms(time.Since(announced)), "route-appear-ms")

	if err := svc.svc.Stop(Context(t)); err != nil {
		t.Fatalf("stop: %v", err)
	}
	stopped := time.Now()
	Eventually(t, "the route gone once the service stopped", func() bool {
		status, _, _ := e.post(t, "/appearing/Hello", `{}`)
		return status == http.StatusNotFound
	})
	s.report(t, ms(time.Since(stopped)), "route-gone-ms")

	switch {
	case !e.cat.Shared || e.cat.TTL <= 0:
		t.Logf("a route after a SIGKILL: skipped (the catalogue is not shared between processes, or has no TTL)")
		return
	case testing.Short():
		t.Logf("a route after a SIGKILL: skipped in -short mode (starts a process)")
		return
	}
	child := s.child(t, e, "killed")
	e.routed(t, "killed")
	if err := child.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	ctx, cancel := context.WithTimeout(Context(t), e.cat.TTL+WaitBound)
	defer cancel()
	if err := Poll(ctx, func() bool { return e.instances("/killed/Hello") == 0 }); err != nil {
		t.Fatalf("the route of a SIGKILLed instance, TTL %v: %v", e.cat.TTL, err)
	}
	gone := time.Since(killed)
	s.report(t, ms(gone), "route-gone-kill-ms")
	t.Logf("route gone %v after SIGKILL, catalogue TTL %v", gone.Round(time.Millisecond), e.cat.TTL)
	if status, _, body := e.post(t, "/killed/Hello", `{}`); status != http.StatusNotFound {
		t.Errorf("after the route went = %d %s, want 404", status, body)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// child starts an instance of service name as a child process (see
// GatewayConformance) and returns once it is announced.
func (s *gwSuite) child(t *testing.T, e *gwEnv, name string) *Child {
	t.Helper()
	return StartChildTest(t, s.root, gatewayChildEnv, e.natsURL+" "+name)
}

// gatewayChild is GatewayConformance in a child process: it serves one
// instance until its stdin closes.
func gatewayChild(t *testing.T, setup GatewaySetup, spec string) {
	var url, name string
	if _, err := fmt.Sscan(spec, &url, &name); err != nil {
		t.Fatalf("ferrytest: child spec %q: %v", spec, err)
	}
	cat := setup.Catalog(t, url)
	b := startGWService(t, setup, cat, url, name, time.Millisecond, false) // calls stay in flight when the kill comes
	fmt.Printf("ready %s\n", b.svc.Instance().ID)
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it, or dies
}

func (s *gwSuite) killUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	var attempts, attemptTimeouts atomic.Int64
	policy := middleware.RetryPolicy{
		// Over NATS a request the killed member had taken is never
		// answered: only a per-attempt timeout recovers it. Long enough that
		// no live instance answers later on a loaded machine.
		AttemptTimeout: 2 * time.Second,
		OnAttempt: func(_ context.Context, _ int, err error) {
			attempts.Add(1)
			if errs.CodeOf(err) == errs.DeadlineExceeded {
				attemptTimeouts.Add(1)
			}
		},
	}
	e := s.env(t, gwOptions{client: []client.Option{client.WithRetry(policy)}})
	if !e.cat.Shared {
		t.Skip("the catalogue is not shared between processes")
	}
	victim := s.child(t, e, "loaded")
	s.child(t, e, "loaded")
	Eventually(t, "two instances routed", func() bool { return e.instances("/loaded/Hello") == 2 })

	const workers, before, after, maxFailed = 8, 200, 600, 20
	var ok, failed atomic.Int64
	var killOnce sync.Once
	var firstErr sync.Once
	ctx := Context(t)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ok.Load()+failed.Load() < before+after && failed.Load() < maxFailed && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/loaded/Hello", strings.NewReader(`{"text":"load"}`))
				resp, err := e.hc.Do(req)
				status := 0
				var body []byte
				if err == nil {
					status = resp.StatusCode
					body, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err != nil || status != http.StatusOK {
					failed.Add(1)
					firstErr.Do(func() { t.Errorf("a call through the gateway failed: %v %d %s", err, status, body) })
					continue
				}
				if ok.Add(1) >= before {
					killOnce.Do(func() {
						if err := victim.Cmd.Process.Kill(); err != nil { // SIGKILL
							t.Errorf("kill: %v", err)
						}
					})
				}
			}
		})
	}
	wg.Wait()
	victim.Wait()
	s.report(t, float64(ok.Load()+failed.Load()), "kill-calls")
	s.report(t, float64(failed.Load()), "kill-failed")
	s.report(t, float64(attempts.Load()), "kill-attempts")
	t.Logf("%d calls through the gateway, %d failed, %d attempts (%d timed out); one of two instances SIGKILLed after %d",
		ok.Load()+failed.Load(), failed.Load(), attempts.Load(), attemptTimeouts.Load(), before)
	if failed.Load() != 0 {
		t.Errorf("%d idempotent calls failed through the gateway, want 0", failed.Load())
	}
	if ok.Load()+failed.Load() < before+after {
		t.Errorf("the load stopped after %d calls: %v", ok.Load()+failed.Load(), ctx.Err())
	}
}
