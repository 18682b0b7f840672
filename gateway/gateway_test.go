package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/gateway"
	"github.com/ferry-go/ferry/registry"
	regmemory "github.com/ferry-go/ferry/registry/memory"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

type helloReq struct {
	Name string `json:"name"`
}

type helloReply struct {
	Message string `json:"message"`
}

type failReq struct {
	Code string `json:"code"`
}

// backend is a greeter service on HTTP and NATS, registered in reg, that
// counts the calls its handlers see.
type backend struct {
	svc   *ferry.Service
	calls atomic.Int64
}

func startBackend(t *testing.T, reg registry.Registry, natsURL, name string) *backend {
	t.Helper()
	b := &backend{}
	srv := server.New(name, server.WithLogger(quiet()), server.WithErrorPassThrough())
	server.Handle(srv, "Hello", func(_ context.Context, r *helloReq) (*helloReply, error) {
		b.calls.Add(1)
		return &helloReply{Message: "hello " + r.Name}, nil
	}, server.WithIdempotent())
	server.Handle(srv, "Fail", func(_ context.Context, r *failReq) (*helloReply, error) {
		b.calls.Add(1)
		var c errs.Code
		if err := c.UnmarshalText([]byte(r.Code)); err != nil {
			return nil, errs.Newf(errs.InvalidArgument, "code %q: %v", r.Code, err)
		}
		return nil, errs.Newf(c, "failed with %s", r.Code).WithReason("TEST_" + strings.ToUpper(r.Code)).
			WithDetails(errs.Detail{Field: "code", Reason: "asked for"})
	})
	server.HandleServerStream(srv, "Watch", func(_ context.Context, r *helloReq, out server.Sender[helloReply]) error {
		b.calls.Add(1)
		return out.Send(&helloReply{Message: "hello " + r.Name})
	})
	nc := fnats.ConnectTo(func() string { return natsURL })
	b.svc = ferry.New(srv, ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")), ferry.WithConnection(nc), ferry.WithTransport(nc.Serve()),
		ferry.WithRegistry(reg), ferry.WithLogger(quiet()))
	ctx := ferrytest.Context(t)
	if err := b.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.svc.Stop(context.Background()) })
	return b
}

// startGateway serves a gateway on reg over transports through httptest.
func startGateway(t *testing.T, reg registry.Registry, natsURL string, transports []string, opts ...gateway.Option) string {
	t.Helper()
	copts := []client.Option{client.WithTransports(transports...)}
	if natsURL != "" {
		copts = append(copts, client.WithNATS(ferrytest.Connect(t, natsURL)))
	}
	c, err := client.New(reg, copts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	g, err := gateway.New(reg.(registry.Catalog), c, append([]gateway.Option{gateway.WithLogger(quiet())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ferrytest.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Stop(context.Background()) })
	hs := httptest.NewServer(g)
	t.Cleanup(hs.Close)
	return hs.URL
}

func post(t *testing.T, url, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// Rules: a pinned route stays without instances (503), a hidden one never
// appears, a renamed one is served at its path only. (Routes following the
// registry are GatewayConformance's RouteLifecycle.)
func TestRules(t *testing.T) {
	ns := ferrytest.NATS(t)
	reg := regmemory.New()
	startBackend(t, reg, ns.ClientURL(), "greeter")
	url := startGateway(t, reg, ns.ClientURL(), []string{"nats"}, gateway.WithRules(
		gateway.Rule{Service: "greeter", Endpoint: "Fail", Hide: true},
		gateway.Rule{Service: "greeter", Endpoint: "Hello", Path: "/api/hello"},
		gateway.Rule{Service: "late", Endpoint: "Hello", Pin: true},
	))
	if status, _, body := post(t, url+"/api/hello", `{"name":"r"}`); status != 200 {
		t.Errorf("renamed route = %d %s", status, body)
	}
	for _, p := range []string{"/greeter/Hello", "/greeter/Fail", "/nosuch/Hello", "/x"} {
		if status, _, body := post(t, url+p, `{}`); status != http.StatusNotFound {
			t.Errorf("%s = %d %s, want 404", p, status, body)
		}
	}
	if status, _, body := post(t, url+"/late/Hello", `{}`); status != http.StatusServiceUnavailable {
		t.Errorf("pinned route of a service not running = %d %s, want 503", status, body)
	}
}

// Bad requests get a clear error without a backend call.
func TestBadRequests(t *testing.T) {
	ns := ferrytest.NATS(t)
	reg := regmemory.New()
	b := startBackend(t, reg, ns.ClientURL(), "greeter")
	url := startGateway(t, reg, ns.ClientURL(), []string{"nats"}, gateway.WithMaxBody(64))
	before := b.calls.Load()
	cases := []struct {
		name, body string
		hdr        []string
		status     int
		want       string
	}{
		{"not JSON", `{"name":`, nil, 400, "not valid JSON"},
		{"too large", `{"name": "` + strings.Repeat("x", 100) + `"}`, nil, 413, "exceeds the 64-byte limit"},
		{"bad timeout", `{}`, []string{fhttp.TimeoutHeader, "soon"}, 400, fhttp.TimeoutHeader},
	}
	for _, c := range cases {
		status, hdr, body := post(t, url+"/greeter/Hello", c.body, c.hdr...)
		if status != c.status || !strings.Contains(body, c.want) || hdr.Get("Content-Type") != fhttp.ProblemContentType {
			t.Errorf("%s = %d %s, want %d naming %q", c.name, status, body, c.status, c.want)
		}
	}
	resp, err := http.Get(url + "/greeter/Fail") // not idempotent: POST only
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET of a non-idempotent endpoint = %d Allow %q, want 405 Allow POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	req, _ := http.NewRequest(http.MethodDelete, url+"/greeter/Hello", nil)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST, GET" {
		t.Errorf("DELETE of an idempotent endpoint = %d Allow %q, want 405 Allow POST, GET", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if n := b.calls.Load() - before; n != 0 {
		t.Errorf("the backend saw %d calls of bad requests, want 0", n)
	}
}

// The caller's deadline and metadata travel on; the service's reply
// metadata comes back.
func TestMetadataAndDeadline(t *testing.T) {
	ns := ferrytest.NATS(t)
	reg := regmemory.New()
	srv := server.New("echo", server.WithLogger(quiet()))
	server.Handle(srv, "Echo", func(ctx context.Context, _ *helloReq) (*helloReply, error) {
		call, _ := transport.CallFromContext(ctx)
		d, _ := ctx.Deadline()
		call.Reply.Set("x-seen-tenant", call.Request.Get("x-tenant"))
		call.Reply.Set("x-left-ms", strconv.FormatInt(time.Until(d).Milliseconds(), 10))
		return &helloReply{}, nil
	})
	nc := fnats.ConnectTo(func() string { return ns.ClientURL() })
	svc := ferry.New(srv, ferry.WithConnection(nc), ferry.WithTransport(nc.Serve()), ferry.WithRegistry(reg), ferry.WithLogger(quiet()))
	if err := svc.Start(ferrytest.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	url := startGateway(t, reg, ns.ClientURL(), []string{"nats"})
	ferrytest.Eventually(t, "echo routed", func() bool {
		status, _, _ := post(t, url+"/echo/Echo", `{}`)
		return status == 200
	})
	// 20 s: below the gateway's default 30 s, so the bound seen is the
	// caller's, and ample on a busy machine.
	status, hdr, body := post(t, url+"/echo/Echo", `{}`, "X-Tenant", "acme", fhttp.TimeoutHeader, "20000")
	if status != 200 || hdr.Get("X-Seen-Tenant") != "acme" {
		t.Errorf("= %d %s, X-Seen-Tenant %q; want the tenant header forwarded and the reply header back", status, body, hdr.Get("X-Seen-Tenant"))
	}
	if left, err := strconv.Atoi(hdr.Get("X-Left-Ms")); err != nil || left > 20000 || left <= 0 {
		t.Errorf("the service had %q ms left, want at most the 20000 the caller gave", hdr.Get("X-Left-Ms"))
	}
}

type searchReq struct {
	Name  string   `json:"name"`
	Limit int      `json:"limit"`
	Exact bool     `json:"exact"`
	Tags  []string `json:"tags"`
	Note  string   `json:"note"`
}

// REST routes and the GET of idempotent endpoints are served by the
// gateway over any transport: path wildcards and query parameters become
// the JSON request by the kinds the service registered; a wrong kind or an
// unknown parameter is a 400 naming it, before any backend call.
func TestRESTRoutes(t *testing.T) {
	ns := ferrytest.NATS(t)
	reg := regmemory.New()
	var calls atomic.Int64
	srv := server.New("catalog", server.WithLogger(quiet()))
	server.Handle(srv, "Search", func(_ context.Context, r *searchReq) (*searchReq, error) {
		calls.Add(1)
		return r, nil
	}, server.WithIdempotent(), server.WithRoute("GET /v1/search/{name}"), server.WithRoute("PUT /v1/notes/{name}"))
	nc := fnats.ConnectTo(func() string { return ns.ClientURL() })
	svc := ferry.New(srv, ferry.WithConnection(nc), ferry.WithTransport(nc.Serve()), ferry.WithRegistry(reg), ferry.WithLogger(quiet()))
	if err := svc.Start(ferrytest.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	url := startGateway(t, reg, ns.ClientURL(), []string{"nats"})

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if status, body := get("/v1/search/ada?limit=3&exact=true&tags=a&tags=b"); status != 200 ||
		body != `{"name":"ada","limit":3,"exact":true,"tags":["a","b"],"note":""}` {
		t.Errorf("GET REST route = %d %s", status, body)
	}
	if status, body := get("/catalog/Search?name=bo&limit=1"); status != 200 || !strings.Contains(body, `"name":"bo","limit":1`) {
		t.Errorf("GET of the idempotent endpoint = %d %s", status, body)
	}
	req, _ := http.NewRequest(http.MethodPut, url+"/v1/notes/cy?limit=2", strings.NewReader(`{"note": "hi"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"name":"cy","limit":2`) || !strings.Contains(string(b), `"note":"hi"`) {
		t.Errorf("PUT REST route with a body = %d %s", resp.StatusCode, b)
	}
	before := calls.Load()
	for path, want := range map[string]string{
		"/v1/search/ada?limit=many":      `parameter \"limit\": \"many\" is not an integer`,
		"/v1/search/ada?exact=maybe":     `is not true or false`,
		"/v1/search/ada?colour=red":      `unknown query parameter \"colour\"`,
		"/v1/search/ada?limit=1&limit=2": `given 2 times`,
	} {
		if status, body := get(path); status != 400 || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d %s, want 400 with %s", path, status, body, want)
		}
	}
	if n := calls.Load() - before; n != 0 {
		t.Errorf("the backend saw %d calls of bad requests, want 0", n)
	}
}

// A streaming endpoint is routed, but not proxied: 501 saying where to
// open it, and the backend never sees a call.
func TestStreamNotProxied(t *testing.T) {
	url := ferrytest.NATS(t).ClientURL()
	reg := regmemory.New()
	b := startBackend(t, reg, url, "greeter")
	gw := startGateway(t, reg, url, []string{"nats", "http"})
	var code int
	var body string
	ferrytest.Eventually(t, "the gateway routes greeter/Watch", func() bool {
		code, _, body = post(t, gw+"/greeter/Watch", `{"name":"x"}`)
		return code != http.StatusNotFound
	})
	if code != http.StatusNotImplemented || !strings.Contains(body, "server_streaming") || !strings.Contains(body, "does not proxy streams") {
		t.Errorf("POST /greeter/Watch = %d %s, want 501 saying the gateway does not proxy streams", code, body)
	}
	if n := b.calls.Load(); n != 0 {
		t.Errorf("the backend saw %d calls", n)
	}
}
