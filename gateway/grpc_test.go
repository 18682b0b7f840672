package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/registry"
	regmemory "github.com/ferry-go/ferry/registry/memory"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"google.golang.org/grpc"
)

// grpcBackend serves name ONLY over gRPC, registered in reg, with Hello,
// Fail, Echo (metadata and deadline) and a REST-routed Search. The same
// handlers also run over HTTP in an unregistered twin, whose answers are
// what the gateway must reproduce; its base URL is returned.
func grpcBackend(t *testing.T, reg registry.Registry, name string) (calls *atomic.Int64, twin string) {
	t.Helper()
	calls = new(atomic.Int64)
	build := func(calls *atomic.Int64) *server.Server {
		srv := server.New(name, server.WithLogger(quiet()), server.WithErrorPassThrough())
		server.Handle(srv, "Hello", func(_ context.Context, r *helloReq) (*helloReply, error) {
			calls.Add(1)
			return &helloReply{Message: "hello " + r.Name}, nil
		}, server.WithIdempotent())
		server.Handle(srv, "Fail", func(_ context.Context, r *failReq) (*helloReply, error) {
			calls.Add(1)
			var c errs.Code
			if err := c.UnmarshalText([]byte(r.Code)); err != nil {
				return nil, errs.Newf(errs.InvalidArgument, "code %q: %v", r.Code, err)
			}
			return nil, errs.Newf(c, "failed with %s <&>", r.Code).WithReason("TEST_"+strings.ToUpper(r.Code)).
				WithDomain("test.ferry").WithMetadata("b", "2").WithMetadata("a", "1").
				WithDetails(errs.Detail{Field: "code", Reason: "asked for"}, errs.Detail{Reason: "é"})
		})
		server.Handle(srv, "Echo", func(ctx context.Context, _ *helloReq) (*helloReply, error) {
			calls.Add(1)
			call, _ := transport.CallFromContext(ctx)
			d, _ := ctx.Deadline()
			call.Reply.Set("x-seen-tenant", call.Request.Get("x-tenant"))
			call.Reply.Set("x-left-ms", strconv.FormatInt(time.Until(d).Milliseconds(), 10))
			return &helloReply{Message: call.Kind.String()}, nil
		})
		server.Handle(srv, "Search", func(_ context.Context, r *searchReq) (*searchReq, error) {
			calls.Add(1)
			return r, nil
		}, server.WithIdempotent(), server.WithRoute("GET /v1/"+name+"/{name}"))
		return srv
	}
	start := func(svc *ferry.Service) {
		if err := svc.Start(ferrytest.Context(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	}
	start(ferry.New(build(calls), ferry.WithTransport(fgrpc.NewServer("127.0.0.1:0")), ferry.WithRegistry(reg), ferry.WithLogger(quiet())))
	h := ferry.New(build(new(atomic.Int64)), ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")), ferry.WithLogger(quiet()))
	start(h)
	twin, _ = h.Addr("http")
	return calls, twin
}

// Issue #13: a service served only over gRPC is reached through the
// gateway — the JSON bytes travel as application/grpc+json, no Go types at
// the edge — for POST, REST routes and the GET of idempotent endpoints.
func TestGRPCForwards(t *testing.T) {
	reg := regmemory.New()
	calls, twin := grpcBackend(t, reg, "greeter")
	url := startGateway(t, reg, "", []string{"grpc"})

	before := calls.Load()
	status, hdr, body := post(t, url+"/greeter/Hello", `{"name": "edge"}`)
	if status != 200 || body != `{"message":"hello edge"}` || hdr.Get("Content-Type") != "application/json" {
		t.Errorf("POST /greeter/Hello = %d %s %q", status, body, hdr.Get("Content-Type"))
	}
	if status, _, body := post(t, url+"/greeter/Echo", `{}`); status != 200 || body != `{"message":"grpc"}` {
		t.Errorf("POST /greeter/Echo = %d %s, want the call served over grpc", status, body)
	}
	get := func(base, path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/v1/greeter/ada?limit=3&exact=true&tags=a&tags=b", "/greeter/Search?name=bo&limit=1", "/greeter/Hello?name=cy"} {
		status, body := get(url, path)
		wantStatus, want := get(twin, path)
		if status != 200 || status != wantStatus || body != want {
			t.Errorf("GET %s = %d %s; the service over HTTP answers %d %s", path, status, body, wantStatus, want)
		}
	}
	if n := calls.Load() - before; n != 5 {
		t.Errorf("backend saw %d calls through the gateway, want 5", n)
	}
}

// Issue #13: over gRPC too, every error code reaches the public caller
// byte for byte as the service's own HTTP transport answers it — status,
// code, message, reason, domain, metadata, details.
func TestGRPCErrorCodes(t *testing.T) {
	reg := regmemory.New()
	_, twin := grpcBackend(t, reg, "greeter")
	url := startGateway(t, reg, "", []string{"grpc"})
	for c := errs.Code(1); c <= errs.Unauthenticated; c++ {
		body := `{"code": "` + c.String() + `"}`
		wantStatus, wantHdr, wantBody := post(t, twin+"/greeter/Fail", body)
		status, hdr, got := post(t, url+"/greeter/Fail", body)
		if status != wantStatus || status != errs.HTTPStatus(c) || hdr.Get("Content-Type") != wantHdr.Get("Content-Type") {
			t.Errorf("%s through the gateway = %d %q, the service answers %d %q", c, status, hdr.Get("Content-Type"), wantStatus, wantHdr.Get("Content-Type"))
		}
		var p struct{ Code, Detail string }
		if err := json.Unmarshal([]byte(got), &p); err != nil || p.Code != c.String() {
			t.Fatalf("%s: body %s: %v", c, got, err)
		}
		if c == errs.Unavailable {
			if strings.Contains(got, "127.0.0.1") || !strings.Contains(p.Detail, "greeter") {
				t.Errorf("Unavailable detail %q: want the service named, no address", p.Detail)
			}
			continue
		}
		if c != errs.Canceled && got != wantBody {
			t.Errorf("%s through the gateway:\n%s\nthe service answers:\n%s", c, got, wantBody)
		}
	}
	// A bad request the service refuses reads the same as well.
	wantStatus, _, wantBody := post(t, twin+"/greeter/Fail", `{"code": 5}`)
	if status, _, got := post(t, url+"/greeter/Fail", `{"code": 5}`); status != wantStatus || status != 400 || !strings.Contains(got, "code") {
		t.Errorf("a request of the wrong kind = %d %s; over HTTP %d %s", status, got, wantStatus, wantBody)
	}
}

// Over gRPC the caller's deadline and metadata travel on, and the
// service's reply metadata comes back as headers.
func TestGRPCMetadataAndDeadline(t *testing.T) {
	reg := regmemory.New()
	grpcBackend(t, reg, "echo")
	url := startGateway(t, reg, "", []string{"grpc"})
	// 20 s: below the gateway's default 30 s, so the bound seen is the
	// caller's, and ample on a busy machine.
	status, hdr, body := post(t, url+"/echo/Echo", `{}`, "X-Tenant", "acme", fhttp.TimeoutHeader, "20000")
	if status != 200 || hdr.Get("X-Seen-Tenant") != "acme" {
		t.Errorf("= %d %s, X-Seen-Tenant %q; want the tenant header forwarded and the reply header back", status, body, hdr.Get("X-Seen-Tenant"))
	}
	if left, err := strconv.Atoi(hdr.Get("X-Left-Ms")); err != nil || left > 20000 || left <= 0 {
		t.Errorf("the service had %q ms left, want at most the 20000 the caller gave", hdr.Get("X-Left-Ms"))
	}
	// A deadline already too short for the service: DeadlineExceeded, 504.
	if status, _, body := post(t, url+"/echo/Echo", `{}`, fhttp.TimeoutHeader, "1"); status != http.StatusGatewayTimeout && status != 200 {
		t.Errorf("with 1 ms = %d %s, want 504 (or 200 on a fast machine)", status, body)
	}
}

// Headers gRPC metadata cannot carry are not forwarded — over gRPC they
// would fail the call — and not over NATS either, so a call reads the same
// whichever transport carries it.
func TestUnportableHeadersDropped(t *testing.T) {
	ns := ferrytest.NATS(t)
	reg := regmemory.New()
	grpcBackend(t, reg, "echo") // gRPC only
	srv := server.New("necho", server.WithLogger(quiet()))
	server.Handle(srv, "Echo", func(ctx context.Context, _ *helloReq) (*helloReply, error) {
		call, _ := transport.CallFromContext(ctx)
		call.Reply.Set("x-seen-tenant", call.Request.Get("x-tenant"))
		call.Reply.Set("x-seen-ok", call.Request.Get("x-ok"))
		return &helloReply{}, nil
	})
	nc := fnats.ConnectTo(func() string { return ns.ClientURL() })
	svc := ferry.New(srv, ferry.WithConnection(nc), ferry.WithTransport(nc.Serve()), ferry.WithRegistry(reg), ferry.WithLogger(quiet()))
	if err := svc.Start(ferrytest.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	for _, c := range []struct{ tr, svc string }{{"grpc", "echo"}, {"nats", "necho"}} {
		url := startGateway(t, reg, ns.ClientURL(), []string{c.tr})
		ferrytest.Eventually(t, c.svc+" routed", func() bool {
			status, _, _ := post(t, url+"/"+c.svc+"/Echo", `{}`)
			return status == 200
		})
		status, hdr, body := post(t, url+"/"+c.svc+"/Echo", `{}`, "X-Tenant", "Jos\xc3\xa9", "X-A+b", "1")
		if status != 200 || hdr.Get("X-Seen-Tenant") != "" {
			t.Errorf("%s: with unportable headers = %d %s, X-Seen-Tenant %q; want 200 without them", c.tr, status, body, hdr.Get("X-Seen-Tenant"))
		}
		if status, hdr, body := post(t, url+"/"+c.svc+"/Echo", `{}`, "X-Tenant", "acme"); status != 200 || hdr.Get("X-Seen-Tenant") != "acme" {
			t.Errorf("%s: with a portable header = %d %s, X-Seen-Tenant %q; want acme", c.tr, status, body, hdr.Get("X-Seen-Tenant"))
		}
	}
}

// An unknown endpoint is the gateway's own 404 when the registry lists the
// service's endpoints: it knows its routes, and no backend is called. A
// service whose instances list none is routed for any name, and then the
// backend answers: over gRPC Unimplemented, which is 501 as for any
// Unimplemented (the standard mapping of grpc-gateway, Envoy and Connect),
// naming the method; over HTTP (and NATS) NotFound, 404.
func TestGRPCUnknownEndpoint(t *testing.T) {
	reg := regmemory.New()
	var rpcs atomic.Int64 // every call the gRPC backends see, unknown methods included
	count := fgrpc.WithServerOptions(
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			rpcs.Add(1)
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			rpcs.Add(1)
			return h(srv, ss)
		}))
	build := func(name string) *server.Server {
		srv := server.New(name, server.WithLogger(quiet()))
		server.Handle(srv, "Hello", func(_ context.Context, r *helloReq) (*helloReply, error) {
			return &helloReply{Message: "hello " + r.Name}, nil
		})
		return srv
	}
	start := func(svc *ferry.Service) {
		t.Helper()
		if err := svc.Start(ferrytest.Context(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	}
	// "listed" registers its endpoints; "open" (gRPC) and "openh" (HTTP)
	// are registered by hand, without them.
	start(ferry.New(build("listed"), ferry.WithTransport(fgrpc.NewServer("127.0.0.1:0", count)), ferry.WithRegistry(reg), ferry.WithLogger(quiet())))
	open := ferry.New(build("open"), ferry.WithTransport(fgrpc.NewServer("127.0.0.1:0", count)), ferry.WithLogger(quiet()))
	start(open)
	openh := ferry.New(build("openh"), ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")), ferry.WithLogger(quiet()))
	start(openh)
	grpcAddr, _ := open.Addr("grpc")
	httpAddr, _ := openh.Addr("http")
	for _, in := range []registry.Instance{
		{Service: "open", ID: "o1", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: grpcAddr}}},
		{Service: "openh", ID: "h1", Endpoints: []registry.Endpoint{{Transport: "http", Address: httpAddr}}},
	} {
		if err := reg.Register(ferrytest.Context(t), in); err != nil {
			t.Fatal(err)
		}
	}
	url := startGateway(t, reg, "", []string{"grpc", "http"})
	ferrytest.Eventually(t, "every service routed", func() bool {
		for _, svc := range []string{"listed", "open", "openh"} {
			if status, _, _ := post(t, url+"/"+svc+"/Hello", `{}`); status != 200 {
				return false
			}
		}
		return true
	})

	problem := func(body string) (p struct{ Code, Detail string }) {
		t.Helper()
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("problem body %s: %v", body, err)
		}
		return p
	}
	before := rpcs.Load()
	status, _, body := post(t, url+"/listed/Nope", `{}`)
	if p := problem(body); status != http.StatusNotFound || p.Code != "not_found" || !strings.Contains(p.Detail, `"Nope"`) {
		t.Errorf("POST /listed/Nope = %d %s, want the gateway's 404 not_found naming Nope", status, body)
	}
	if n := rpcs.Load() - before; n != 0 {
		t.Errorf("POST /listed/Nope reached the gRPC backends %d times, want 0: the gateway knows its routes", n)
	}

	status, hdr, body := post(t, url+"/open/Nope", `{}`)
	if p := problem(body); status != http.StatusNotImplemented || p.Code != "unimplemented" || !strings.Contains(p.Detail, "/open.Open/Nope") ||
		hdr.Get("Content-Type") != "application/problem+json" {
		t.Errorf("POST /open/Nope (over gRPC) = %d %q %s, want 501 problem+json unimplemented naming /open.Open/Nope", status, hdr.Get("Content-Type"), body)
	}
	if rpcs.Load() == before {
		t.Errorf("the gRPC backend's counter missed POST /open/Nope: it proves nothing for /listed/Nope")
	}
	status, _, body = post(t, url+"/openh/Nope", `{}`)
	if p := problem(body); status != http.StatusNotFound || p.Code != "not_found" || !strings.Contains(p.Detail, `"Nope"`) {
		t.Errorf("POST /openh/Nope (over HTTP) = %d %s, want 404 not_found naming Nope", status, body)
	}
}
