package telemetry_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/broker/memory"
	natsbroker "github.com/ferry-go/ferry/broker/nats"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

type hop struct {
	Path    string `json:"path"`
	Baggage string `json:"baggage,omitempty"`
}

func newTracer(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func findSpan(t *testing.T, spans tracetest.SpanStubs, name string, kind trace.SpanKind) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.Name == name && s.SpanKind == kind {
			return s
		}
	}
	var have []string
	for _, s := range spans {
		have = append(have, s.Name+"("+s.SpanKind.String()+")")
	}
	t.Fatalf("no %s span %q among %v", kind, name, have)
	return tracetest.SpanStub{}
}

// TestTraceAcrossTransports: caller →HTTP→ A →NATS→ B →gRPC→ C, every hop
// with the tracing middleware on client and server. One trace; each client
// span is the parent of the next server span; semconv attributes present;
// baggage travels to the end.
func TestTraceAcrossTransports(t *testing.T) {
	tp, exp := newTracer(t)
	tr := telemetry.Tracing(tp, nil)

	cSrv := server.New("svc-c", server.WithMiddleware(tr))
	server.Handle(cSrv, "Echo", func(ctx context.Context, h *hop) (*hop, error) {
		return &hop{Path: h.Path + ">c", Baggage: baggage.FromContext(ctx).Member("user").Value()}, nil
	})
	c := ferrytest.Start(t, cSrv)
	cClient := must(fgrpc.NewClient(c.GRPCAddr, fgrpc.WithClientMiddleware(tr)))(t)
	t.Cleanup(func() { _ = cClient.Close() })

	bSrv := server.New("svc-b", server.WithMiddleware(tr))
	server.Handle(bSrv, "Relay", func(ctx context.Context, h *hop) (*hop, error) {
		return transport.Invoke[hop, hop](ctx, cClient, "svc-c", "Echo", &hop{Path: h.Path + ">b"})
	})
	b := ferrytest.Start(t, bSrv)
	bClient := fnats.NewClient(ferrytest.Connect(t, b.NATSURL), fnats.WithClientMiddleware(tr))

	aSrv := server.New("svc-a", server.WithMiddleware(tr))
	server.Handle(aSrv, "Relay", func(ctx context.Context, h *hop) (*hop, error) {
		return transport.Invoke[hop, hop](ctx, bClient, "svc-b", "Relay", &hop{Path: h.Path + ">a"})
	})
	a := ferrytest.Start(t, aSrv)
	aClient := must(fhttp.NewClient("http://"+a.HTTPAddr, fhttp.WithClientMiddleware(tr)))(t)
	t.Cleanup(func() { _ = aClient.Close() })

	ctx, root := tp.Tracer("test").Start(testCtx(t), "caller")
	member, _ := baggage.NewMember("user", "ada")
	bag, _ := baggage.New(member)
	ctx = baggage.ContextWithBaggage(ctx, bag)
	reply, err := transport.Invoke[hop, hop](ctx, aClient, "svc-a", "Relay", &hop{Path: "caller"})
	root.End()
	if err != nil {
		t.Fatalf("call through A→B→C: %v", err)
	}
	if reply.Path != "caller>a>b>c" || reply.Baggage != "ada" {
		t.Errorf("reply = %+v, want path caller>a>b>c and baggage ada", reply)
	}

	spans := exp.GetSpans()
	if len(spans) != 7 {
		t.Errorf("%d spans, want 7 (caller + client and server per hop)", len(spans))
	}
	traceID := root.SpanContext().TraceID()
	for _, s := range spans {
		if s.SpanContext.TraceID() != traceID {
			t.Errorf("span %s in trace %s, want %s", s.Name, s.SpanContext.TraceID(), traceID)
		}
	}
	aPort := a.HTTPAddr[strings.LastIndexByte(a.HTTPAddr, ':')+1:]
	cPort := c.GRPCAddr[strings.LastIndexByte(c.GRPCAddr, ':')+1:]
	chain := []struct {
		name           string
		client, server map[attribute.Key]string // "" means present, any value
	}{{
		name: "POST /svc-a/Relay",
		client: map[attribute.Key]string{"http.request.method": "POST", "url.full": "http://" + a.HTTPAddr + "/svc-a/Relay",
			"url.template": "/svc-a/Relay", "server.address": "127.0.0.1", "server.port": aPort, "http.response.status_code": "200",
			"ferry.endpoint": "svc-a/Relay", "ferry.code": "ok"},
		server: map[attribute.Key]string{"http.request.method": "POST", "http.route": "/svc-a/Relay", "url.path": "/svc-a/Relay",
			"url.scheme": "http", "http.response.status_code": "200", "network.peer.address": "127.0.0.1", "network.peer.port": "",
			"user_agent.original": "", "ferry.endpoint": "svc-a/Relay", "ferry.code": "ok"},
	}, {
		name: "svc-b/Relay",
		client: map[attribute.Key]string{"rpc.system.name": "nats", "rpc.method": "svc-b/Relay", "rpc.response.status_code": "OK",
			"network.peer.address": "127.0.0.1", "ferry.endpoint": "svc-b/Relay", "ferry.code": "ok"},
		server: map[attribute.Key]string{"rpc.system.name": "nats", "rpc.method": "svc-b/Relay", "rpc.response.status_code": "OK",
			"ferry.endpoint": "svc-b/Relay", "ferry.code": "ok"},
	}, {
		name: "svc_c.SvcC/Echo",
		client: map[attribute.Key]string{"rpc.system.name": "grpc", "rpc.method": "svc_c.SvcC/Echo", "rpc.response.status_code": "OK",
			"server.address": "127.0.0.1", "server.port": cPort, "ferry.endpoint": "svc-c/Echo", "ferry.code": "ok"},
		server: map[attribute.Key]string{"rpc.system.name": "grpc", "rpc.method": "svc_c.SvcC/Echo", "rpc.response.status_code": "OK",
			"network.peer.address": "127.0.0.1", "network.peer.port": "", "ferry.endpoint": "svc-c/Echo", "ferry.code": "ok"},
	}}
	parent := root.SpanContext().SpanID()
	for _, h := range chain {
		cl := findSpan(t, spans, h.name, trace.SpanKindClient)
		sv := findSpan(t, spans, h.name, trace.SpanKindServer)
		if cl.Parent.SpanID() != parent {
			t.Errorf("%s client span's parent = %s, want %s", h.name, cl.Parent.SpanID(), parent)
		}
		if sv.Parent.SpanID() != cl.SpanContext.SpanID() || !sv.Parent.IsRemote() {
			t.Errorf("%s server span's parent = %s (remote %v), want the client span %s", h.name, sv.Parent.SpanID(), sv.Parent.IsRemote(), cl.SpanContext.SpanID())
		}
		checkAttrs(t, cl, h.client)
		checkAttrs(t, sv, h.server)
		for _, s := range []tracetest.SpanStub{cl, sv} {
			if s.Status.Code == codes.Error {
				t.Errorf("%s %s span status Error, want unset", h.name, s.SpanKind)
			}
			// The v1.37 RPC attributes are gone; HTTP spans carry none.
			for _, k := range []attribute.Key{"rpc.system", "rpc.service", "rpc.grpc.status_code", "error.type"} {
				if _, ok := attrs(s)[k]; ok {
					t.Errorf("%s %s span has %s", h.name, s.SpanKind, k)
				}
			}
		}
		parent = sv.SpanContext.SpanID()
	}
}

// checkAttrs checks that span s has the attributes want ("" for any
// value) and only one value of each.
func checkAttrs(t *testing.T, s tracetest.SpanStub, want map[attribute.Key]string) {
	t.Helper()
	at := attrs(s)
	for k, v := range want {
		got, ok := at[k]
		switch {
		case !ok:
			t.Errorf("%s %s span lacks %s", s.Name, s.SpanKind, k)
		case v != "" && got.Emit() != v:
			t.Errorf("%s %s span: %s = %q, want %q", s.Name, s.SpanKind, k, got.Emit(), v)
		case got.Emit() == "":
			t.Errorf("%s %s span: %s is empty", s.Name, s.SpanKind, k)
		}
	}
}

// TestServerFaultStatus: over each transport, a server span is Error (with
// error.type) only for server faults — a 5xx status over HTTP, internal &
// co over RPC —, a client span for every error; the status code and
// ferry.code are recorded either way.
func TestServerFaultStatus(t *testing.T) {
	tp, exp := newTracer(t)
	tr := telemetry.Tracing(tp, nil)
	srv := server.New("faults", server.WithMiddleware(tr))
	server.Handle(srv, "Bad", func(ctx context.Context, h *hop) (*hop, error) {
		return nil, errsInvalid
	})
	server.Handle(srv, "Broken", func(ctx context.Context, h *hop) (*hop, error) {
		return nil, errsInternal
	})
	inst := ferrytest.Start(t, srv)
	hc := must(fhttp.NewClient("http://"+inst.HTTPAddr, fhttp.WithClientMiddleware(tr)))(t)
	t.Cleanup(func() { _ = hc.Close() })
	gc := must(fgrpc.NewClient(inst.GRPCAddr, fgrpc.WithClientMiddleware(tr)))(t)
	t.Cleanup(func() { _ = gc.Close() })
	nc := fnats.NewClient(ferrytest.Connect(t, inst.NATSURL), fnats.WithClientMiddleware(tr))
	ctx := testCtx(t)
	for _, cl := range []transport.Client{hc, gc, nc} {
		_, _ = transport.Invoke[hop, hop](ctx, cl, "faults", "Bad", &hop{})
		_, _ = transport.Invoke[hop, hop](ctx, cl, "faults", "Broken", &hop{})
	}
	spans := exp.GetSpans()
	for _, c := range []struct {
		name         string
		kind         trace.SpanKind
		status       codes.Code
		code         string
		statusKey    attribute.Key
		statusValue  string
		hasErrorType bool
	}{
		{"POST /faults/Bad", trace.SpanKindServer, codes.Unset, "invalid_argument", "http.response.status_code", "400", false},
		{"POST /faults/Bad", trace.SpanKindClient, codes.Error, "invalid_argument", "http.response.status_code", "400", true},
		{"POST /faults/Broken", trace.SpanKindServer, codes.Error, "internal", "http.response.status_code", "500", true},
		{"POST /faults/Broken", trace.SpanKindClient, codes.Error, "internal", "http.response.status_code", "500", true},
		{"faults.Faults/Bad", trace.SpanKindServer, codes.Unset, "invalid_argument", "rpc.response.status_code", "INVALID_ARGUMENT", false},
		{"faults.Faults/Bad", trace.SpanKindClient, codes.Error, "invalid_argument", "rpc.response.status_code", "INVALID_ARGUMENT", true},
		{"faults.Faults/Broken", trace.SpanKindServer, codes.Error, "internal", "rpc.response.status_code", "INTERNAL", true},
		{"faults.Faults/Broken", trace.SpanKindClient, codes.Error, "internal", "rpc.response.status_code", "INTERNAL", true},
		{"faults/Bad", trace.SpanKindServer, codes.Unset, "invalid_argument", "rpc.response.status_code", "INVALID_ARGUMENT", false},
		{"faults/Bad", trace.SpanKindClient, codes.Error, "invalid_argument", "rpc.response.status_code", "INVALID_ARGUMENT", true},
		{"faults/Broken", trace.SpanKindServer, codes.Error, "internal", "rpc.response.status_code", "INTERNAL", true},
		{"faults/Broken", trace.SpanKindClient, codes.Error, "internal", "rpc.response.status_code", "INTERNAL", true},
	} {
		s := findSpan(t, spans, c.name, c.kind)
		if s.Status.Code != c.status {
			t.Errorf("%s %s status = %v, want %v", c.name, c.kind, s.Status.Code, c.status)
		}
		want := map[attribute.Key]string{"ferry.code": c.code, c.statusKey: c.statusValue}
		if c.hasErrorType {
			want["error.type"] = c.code
		} else if et, ok := attrs(s)["error.type"]; ok {
			t.Errorf("%s %s has error.type %q, want none (not the server's fault)", c.name, c.kind, et.Emit())
		}
		checkAttrs(t, s, want)
	}
}

// TestHTTPConventions: a REST route's server span is named after the
// route pattern, with the URL path as sent and the request's User-Agent;
// a client call that gets no response has no status code.
func TestHTTPConventions(t *testing.T) {
	tp, exp := newTracer(t)
	tr := telemetry.Tracing(tp, nil)
	srv := server.New("rest", server.WithMiddleware(tr))
	server.Handle(srv, "Get", func(ctx context.Context, h *hop) (*hop, error) { return h, nil },
		server.WithRoute("GET /v1/things/{path}"))
	inst := ferrytest.Start(t, srv)
	ctx := testCtx(t)
	req := must(http.NewRequestWithContext(ctx, http.MethodGet, "http://"+inst.HTTPAddr+"/v1/things/t-17", nil))(t)
	req.Header.Set("User-Agent", "conventions-test/1")
	resp := must(http.DefaultClient.Do(req))(t)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET = %d", resp.StatusCode)
	}
	s := findSpan(t, exp.GetSpans(), "GET /v1/things/{path}", trace.SpanKindServer)
	checkAttrs(t, s, map[attribute.Key]string{"http.request.method": "GET", "http.route": "/v1/things/{path}",
		"url.path": "/v1/things/t-17", "url.scheme": "http", "user_agent.original": "conventions-test/1",
		"http.response.status_code": "200", "ferry.endpoint": "rest/Get", "ferry.code": "ok"})

	// Nothing listens at a closed listener's address.
	ln := must(net.Listen("tcp", "127.0.0.1:0"))(t)
	addr := ln.Addr().String()
	_ = ln.Close()
	cl := must(fhttp.NewClient("http://"+addr, fhttp.WithClientMiddleware(tr)))(t)
	t.Cleanup(func() { _ = cl.Close() })
	if _, err := transport.Invoke[hop, hop](ctx, cl, "rest", "Get", &hop{}); errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("call to a closed port = %v, want unavailable", err)
	}
	s = findSpan(t, exp.GetSpans(), "POST /rest/Get", trace.SpanKindClient)
	checkAttrs(t, s, map[attribute.Key]string{"error.type": "unavailable", "ferry.code": "unavailable", "url.full": "http://" + addr + "/rest/Get"})
	if sc, ok := attrs(s)["http.response.status_code"]; ok {
		t.Errorf("client span of a call without response has http.response.status_code %s", sc.Emit())
	}
	if s.Status.Code != codes.Error {
		t.Errorf("client span of a failed call has status %v, want Error", s.Status.Code)
	}
}

// TestBrokerPublishConsume: a publish through TraceBroker makes a PRODUCER
// span; the subscription's tracing middleware makes a CONSUMER span whose
// parent is the producer span, in the caller's trace. The caller's headers
// are not modified.
func TestBrokerPublishConsume(t *testing.T) {
	tp, exp := newTracer(t)
	mb := must(memory.New())(t)
	b := telemetry.TraceBroker(mb, telemetry.WithTracerProvider(tp))
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	ctx := testCtx(t)

	got := make(chan trace.SpanContext, 1)
	_, err := broker.Subscribe(ctx, b, "events.orders.placed", func(ctx context.Context, e *broker.Event[hop]) error {
		got <- trace.SpanContextFromContext(ctx)
		return nil
	}, broker.Queue("billing"), broker.WithMiddleware(telemetry.Tracing(tp, nil)))
	if err != nil {
		t.Fatal(err)
	}

	ctx, root := tp.Tracer("test").Start(ctx, "caller")
	hdr := transport.Metadata{"x-kept": {"1"}}
	if err := b.Publish(ctx, &broker.Message{Topic: "events.orders.placed", Header: hdr, Data: []byte(`{"path":"p"}`)}); err != nil {
		t.Fatal(err)
	}
	root.End()
	var handled trace.SpanContext
	select {
	case handled = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
	}
	if len(hdr) != 1 {
		t.Errorf("Publish modified the caller's header: %v", hdr)
	}
	// The consumer span ends after the handler returns.
	deadline := time.Now().Add(5 * time.Second)
	for len(exp.GetSpans()) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	spans := exp.GetSpans()
	prod := findSpan(t, spans, "send events.orders.placed", trace.SpanKindProducer)
	cons := findSpan(t, spans, "process events.orders.placed", trace.SpanKindConsumer)
	if prod.Parent.SpanID() != root.SpanContext().SpanID() {
		t.Errorf("producer span's parent = %s, want the caller %s", prod.Parent.SpanID(), root.SpanContext().SpanID())
	}
	if cons.Parent.SpanID() != prod.SpanContext.SpanID() {
		t.Errorf("consumer span's parent = %s, want the producer span %s", cons.Parent.SpanID(), prod.SpanContext.SpanID())
	}
	if cons.SpanContext.TraceID() != root.SpanContext().TraceID() || handled.SpanID() != cons.SpanContext.SpanID() {
		t.Errorf("handler ran in %s/%s, want the consumer span %s/%s", handled.TraceID(), handled.SpanID(), cons.SpanContext.TraceID(), cons.SpanContext.SpanID())
	}
	pa, ca := attrs(prod), attrs(cons)
	for k, v := range map[attribute.Key]string{"messaging.system": "memory", "messaging.operation.type": "send", "messaging.destination.name": "events.orders.placed"} {
		if pa[k].AsString() != v {
			t.Errorf("producer %s = %q, want %q", k, pa[k].AsString(), v)
		}
	}
	for k, v := range map[attribute.Key]string{"messaging.system": "memory", "messaging.operation.type": "process", "messaging.destination.name": "events.orders.placed", "messaging.consumer.group.name": "billing", "ferry.code": "ok"} {
		if ca[k].AsString() != v {
			t.Errorf("consumer %s = %q, want %q", k, ca[k].AsString(), v)
		}
	}
}

// TestCarrierCase: the carrier writes lower-case keys and reads any case.
func TestCarrierCase(t *testing.T) {
	md := transport.Metadata{}
	c := telemetry.HeaderCarrier{H: md}
	c.Set("Traceparent", "v")
	if _, ok := md["traceparent"]; !ok || c.Get("TRACEPARENT") != "v" {
		t.Errorf("carrier stored %v; Get(TRACEPARENT) = %q", md, c.Get("TRACEPARENT"))
	}
}

// TestBrokerOverNATS: the same over core NATS, where the context travels
// in NATS headers: the consumer span is the producer span's child.
func TestBrokerOverNATS(t *testing.T) {
	tp, exp := newTracer(t)
	ns := ferrytest.NATS(t)
	nb := must(natsbroker.New(ferrytest.Connect(t, ns.ClientURL())))(t)
	b := telemetry.TraceBroker(nb, telemetry.WithTracerProvider(tp))
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	ctx := testCtx(t)
	got := make(chan struct{}, 1)
	if _, err := broker.Subscribe(ctx, b, "events.nats", func(ctx context.Context, e *broker.Event[hop]) error {
		got <- struct{}{}
		return nil
	}, broker.WithMiddleware(telemetry.Tracing(tp, nil))); err != nil {
		t.Fatal(err)
	}
	if err := broker.Publish(ctx, b, "events.nats", &hop{Path: "p"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(exp.GetSpans()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	spans := exp.GetSpans()
	prod := findSpan(t, spans, "send events.nats", trace.SpanKindProducer)
	cons := findSpan(t, spans, "process events.nats", trace.SpanKindConsumer)
	if cons.Parent.SpanID() != prod.SpanContext.SpanID() || cons.SpanContext.TraceID() != prod.SpanContext.TraceID() {
		t.Errorf("consumer span's parent = %s, want the producer span %s", cons.Parent.SpanID(), prod.SpanContext.SpanID())
	}
	if s := attrs(cons)["messaging.system"].AsString(); s != "nats" {
		t.Errorf("consumer messaging.system = %q, want nats", s)
	}
}

// TestPanicIsObserved is issue #11's defect 18: recovery ran outside the
// telemetry middleware, so a panicking handler left its span unended, no
// access-log line and no duration sample. Recovery now also wraps the
// handler itself: the middleware see an Internal error like any other.
func TestPanicIsObserved(t *testing.T) {
	tp, exp := newTracer(t)
	var buf ferrytest.Buffer
	srv := server.New("panics", server.WithLogger(slog.New(slog.DiscardHandler)), server.WithMiddleware(
		telemetry.Tracing(tp, nil),
		telemetry.AccessLog(slog.New(slog.NewJSONHandler(&buf, nil))),
	))
	server.Handle(srv, "Boom", func(context.Context, *hop) (*hop, error) { panic("boom") })
	inst := ferrytest.Start(t, srv)
	if _, err := transport.Invoke[hop, hop](testCtx(t), inst.HTTP, "panics", "Boom", &hop{}); errs.CodeOf(err) != errs.Internal {
		t.Fatalf("Boom = %v, want internal", err)
	}
	s := findSpan(t, exp.GetSpans(), "POST /panics/Boom", trace.SpanKindServer)
	if s.Status.Code != codes.Error || attrs(s)["ferry.code"].AsString() != "internal" {
		t.Errorf("span status %v, ferry.code %q, want an ended error span with code internal", s.Status.Code, attrs(s)["ferry.code"].AsString())
	}
	if out := buf.String(); !strings.Contains(out, `"code":"internal"`) || !strings.Contains(out, `"endpoint":"Boom"`) {
		t.Errorf("access log = %q, want a line for Boom with code internal", out)
	}
}

// TestSemconvVersion pins the semantic conventions version: the schema URL
// of the package's spans and metrics. Changing it changes names users
// query by; do it deliberately, with a CHANGELOG entry.
func TestSemconvVersion(t *testing.T) {
	const want = "https://opentelemetry.io/schemas/1.43.0"
	if telemetry.SemconvSchemaURL != want {
		t.Fatalf("SemconvSchemaURL = %q, want %q", telemetry.SemconvSchemaURL, want)
	}
	tp, exp := newTracer(t)
	call := &transport.Call{Service: "s", Endpoint: "E", Kind: transport.NATS, Request: transport.Metadata{}}
	h := telemetry.Tracing(tp, nil)(func(context.Context, any) (any, error) { return nil, nil })
	_, _ = h(transport.NewCallContext(testCtx(t), call), nil)
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].InstrumentationScope.SchemaURL != want {
		t.Fatalf("spans %v, want one with schema URL %s", spans, want)
	}
}

// TestTLSConventions: over HTTPS the server span's url.scheme is https and
// the client's url.full an https URL; the transports set Call.TLS on both
// sides over HTTPS and gRPC with TLS.
func TestTLSConventions(t *testing.T) {
	tp, exp := newTracer(t)
	tr := telemetry.Tracing(tp, nil)
	f := ferrytest.TLS(t)
	var mu sync.Mutex
	sawTLS := map[string]bool{} // "http server" → Call.TLS
	observe := func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			if c, ok := transport.CallFromContext(ctx); ok {
				side := "server"
				if c.Client {
					side = "client"
				}
				mu.Lock()
				sawTLS[c.Kind.String()+" "+side] = c.TLS
				mu.Unlock()
			}
			return next(ctx, req)
		}
	}
	srv := server.New("secure", server.WithMiddleware(tr, observe))
	server.Handle(srv, "Echo", func(ctx context.Context, h *hop) (*hop, error) { return h, nil })
	srv.Freeze()
	ctx := testCtx(t)
	hs := fhttp.NewServer("127.0.0.1:0", fhttp.WithTLS(f.Server(false)))
	gs := fgrpc.NewServer("127.0.0.1:0", fgrpc.WithTLS(f.Server(false)))
	for _, s := range []server.Transport{hs, gs} {
		if err := s.Start(ctx, srv); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
	}
	hc := must(fhttp.NewClient("https://"+hs.Addr().String(), fhttp.WithClientTLS(f.Client(false)), fhttp.WithClientMiddleware(tr, observe)))(t)
	t.Cleanup(func() { _ = hc.Close() })
	gc := must(fgrpc.NewClient(gs.Addr().String(), fgrpc.WithClientTLS(f.Client(false)), fgrpc.WithClientMiddleware(observe)))(t)
	t.Cleanup(func() { _ = gc.Close() })
	for _, c := range []transport.Client{hc, gc} {
		if _, err := transport.Invoke[hop, hop](ctx, c, "secure", "Echo", &hop{}); err != nil {
			t.Fatal(err)
		}
	}
	spans := exp.GetSpans()
	checkAttrs(t, findSpan(t, spans, "POST /secure/Echo", trace.SpanKindServer), map[attribute.Key]string{"url.scheme": "https"})
	checkAttrs(t, findSpan(t, spans, "POST /secure/Echo", trace.SpanKindClient),
		map[attribute.Key]string{"url.full": "https://" + hs.Addr().String() + "/secure/Echo"})
	mu.Lock()
	defer mu.Unlock()
	for _, k := range []string{"http server", "http client", "grpc server", "grpc client"} {
		if tls, ok := sawTLS[k]; !ok || !tls {
			t.Errorf("%s call: TLS %v (seen %v), want true", k, tls, ok)
		}
	}
}

// TestStreamSpans: a stream is one server span and one client span, from
// open to end, with a message event per message and the stream's error.
func TestStreamSpans(t *testing.T) {
	tp, exp := newTracer(t)
	var buf ferrytest.Buffer
	srv := server.New("streams", server.WithLogger(slog.New(slog.DiscardHandler)), server.WithMiddleware(
		telemetry.Tracing(tp, nil),
		telemetry.AccessLog(slog.New(slog.NewJSONHandler(&buf, nil))),
	))
	server.HandleBidiStream(srv, "Chat", func(_ context.Context, st server.Stream[hop, hop]) error {
		for m, err := range st.All() {
			if err != nil {
				return err
			}
			if m.Path == "stop" {
				return errs.New(errs.Aborted, "stopped")
			}
			if err := st.Send(m); err != nil {
				return err
			}
		}
		return nil
	})
	tr := fgrpc.NewServer("127.0.0.1:0")
	ctx := testCtx(t)
	if err := tr.Start(ctx, srv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Stop(context.Background()) })
	c, err := fgrpc.NewClient(tr.Addr().String(), fgrpc.WithClientMiddleware(telemetry.Tracing(tp, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	st, err := transport.StreamEndpoint[hop, hop]{Service: "streams", Name: "Chat", Kind: transport.BidiStreaming}.Open(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "b"} {
		if err := st.Send(&hop{Path: p}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Send(&hop{Path: "stop"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); errs.CodeOf(err) != errs.Aborted {
		t.Fatalf("end = %v, want aborted", err)
	}
	ferrytest.Eventually(t, "both spans ended", func() bool { return len(exp.GetSpans()) == 2 })
	srvSpan := findSpan(t, exp.GetSpans(), "streams.Streams/Chat", trace.SpanKindServer)
	cliSpan := findSpan(t, exp.GetSpans(), "streams.Streams/Chat", trace.SpanKindClient)
	if srvSpan.Parent.SpanID() != cliSpan.SpanContext.SpanID() {
		t.Errorf("server span's parent = %v, want the client span %v", srvSpan.Parent.SpanID(), cliSpan.SpanContext.SpanID())
	}
	var recvd, sent int
	for _, ev := range srvSpan.Events {
		for _, kv := range ev.Attributes {
			if kv.Key == "rpc.message.type" {
				if kv.Value.AsString() == "RECEIVED" {
					recvd++
				} else {
					sent++
				}
			}
		}
	}
	if recvd != 3 || sent != 2 {
		t.Errorf("server span has %d received and %d sent message events, want 3 and 2", recvd, sent)
	}
	if attrs(srvSpan)["ferry.code"].AsString() != "aborted" || attrs(cliSpan)["ferry.code"].AsString() != "aborted" {
		t.Errorf("span codes = %q (server), %q (client); want aborted on both", attrs(srvSpan)["ferry.code"].AsString(), attrs(cliSpan)["ferry.code"].AsString())
	}
	if out := buf.String(); strings.Count(out, `"endpoint":"Chat"`) != 1 || !strings.Contains(out, `"code":"aborted"`) {
		t.Errorf("access log = %q, want one line for the stream, code aborted", out)
	}
}
