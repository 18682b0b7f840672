package telemetry_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/broker/memory"
	natsbroker "github.com/ferry-go/ferry/broker/nats"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
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
	chain := []struct {
		name, system string
	}{{"svc-a/Relay", "http"}, {"svc-b/Relay", "nats"}, {"svc-c/Echo", "grpc"}}
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
		svc, method, _ := strings.Cut(h.name, "/")
		for _, s := range []tracetest.SpanStub{cl, sv} {
			at := attrs(s)
			want := map[attribute.Key]string{"rpc.system": h.system, "rpc.service": svc, "rpc.method": method, "ferry.code": "ok"}
			for k, v := range want {
				if got := at[k].AsString(); got != v {
					t.Errorf("%s %s span: %s = %q, want %q", h.name, s.SpanKind, k, got, v)
				}
			}
			if s.Status.Code == codes.Error {
				t.Errorf("%s %s span status Error, want unset", h.name, s.SpanKind)
			}
		}
		if h.system == "grpc" {
			if _, ok := attrs(sv)["rpc.grpc.status_code"]; !ok {
				t.Errorf("gRPC server span lacks rpc.grpc.status_code")
			}
		}
		if h.system != "nats" { // NATS has no peer address
			if attrs(sv)["network.peer.address"].AsString() == "" {
				t.Errorf("%s server span lacks network.peer.address", h.name)
			}
		}
		parent = sv.SpanContext.SpanID()
	}
}

// TestServerFaultStatus: a server span is Error only for server-fault
// codes, a client span for every error; ferry.code is recorded.
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
	cl := must(fhttp.NewClient("http://"+inst.HTTPAddr, fhttp.WithClientMiddleware(tr)))(t)
	t.Cleanup(func() { _ = cl.Close() })
	ctx := testCtx(t)
	_, _ = transport.Invoke[hop, hop](ctx, cl, "faults", "Bad", &hop{})
	_, _ = transport.Invoke[hop, hop](ctx, cl, "faults", "Broken", &hop{})
	spans := exp.GetSpans()
	for _, c := range []struct {
		name   string
		kind   trace.SpanKind
		status codes.Code
		code   string
	}{
		{"faults/Bad", trace.SpanKindServer, codes.Unset, "invalid_argument"},
		{"faults/Bad", trace.SpanKindClient, codes.Error, "invalid_argument"},
		{"faults/Broken", trace.SpanKindServer, codes.Error, "internal"},
		{"faults/Broken", trace.SpanKindClient, codes.Error, "internal"},
	} {
		s := findSpan(t, spans, c.name, c.kind)
		if s.Status.Code != c.status {
			t.Errorf("%s %s status = %v, want %v", c.name, c.kind, s.Status.Code, c.status)
		}
		if got := attrs(s)["ferry.code"].AsString(); got != c.code {
			t.Errorf("%s %s ferry.code = %q, want %q", c.name, c.kind, got, c.code)
		}
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
	s := findSpan(t, exp.GetSpans(), "panics/Boom", trace.SpanKindServer)
	if s.Status.Code != codes.Error || attrs(s)["ferry.code"].AsString() != "internal" {
		t.Errorf("span status %v, ferry.code %q, want an ended error span with code internal", s.Status.Code, attrs(s)["ferry.code"].AsString())
	}
	if out := buf.String(); !strings.Contains(out, `"code":"internal"`) || !strings.Contains(out, `"endpoint":"Boom"`) {
		t.Errorf("access log = %q, want a line for Boom with code internal", out)
	}
}
