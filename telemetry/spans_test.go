package telemetry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/broker/memory"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	dto "github.com/prometheus/client_model/go"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestUnsampledCallIsMeasuredAndLogged: a call whose span is not sampled
// is still counted in the duration histograms and still gets its access
// log line, with the trace and span IDs of its (unsampled) span — with an
// exporter configured (the SDK's non-recording span) and without one
// (spans that carry context only).
func TestUnsampledCallIsMeasuredAndLogged(t *testing.T) {
	for _, exporting := range []bool{false, true} {
		t.Run(fmt.Sprintf("exporter=%v", exporting), func(t *testing.T) {
			var buf ferrytest.Buffer
			cfg := telemetry.Config{ServiceName: "unsampled", Sampler: "always_off",
				Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
			exp := tracetest.NewInMemoryExporter()
			if exporting {
				cfg.TracerOptions = []sdktrace.TracerProviderOption{sdktrace.WithSyncer(exp)}
			}
			tel := must(telemetry.Setup(testCtx(t), cfg))(t)
			t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
			srv := server.New("unsampled", server.WithMiddleware(tel.Middleware()...))
			server.Handle(srv, "Echo", func(_ context.Context, h *hop) (*hop, error) { return h, nil })
			inst := ferrytest.Start(t, srv)
			for _, c := range []transport.Client{inst.HTTP, inst.GRPC, inst.NATS} {
				if _, err := transport.Invoke[hop, hop](testCtx(t), c, "unsampled", "Echo", &hop{Path: "x"}); err != nil {
					t.Fatal(err)
				}
			}

			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 3 {
				t.Fatalf("%d access log lines, want 3 (one per transport):\n%s", len(lines), buf.String())
			}
			for _, l := range lines {
				var rec map[string]any
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				tid, _ := rec["trace_id"].(string)
				sid, _ := rec["span_id"].(string)
				if len(tid) != 32 || len(sid) != 16 || strings.Trim(tid, "0") == "" {
					t.Errorf("trace_id %q span_id %q: want valid IDs of the unsampled span: %s", tid, sid, l)
				}
				if rec["code"] != "ok" || rec["endpoint"] != "Echo" {
					t.Errorf("line %s: want code ok, endpoint Echo", l)
				}
			}

			counts := histogramCounts(t, tel)
			if counts["http_server_request_duration_seconds"] != 1 || counts["rpc_server_call_duration_seconds"] != 2 {
				t.Errorf("duration histogram counts = %v, want 1 HTTP call and 2 RPC calls (gRPC, NATS)", counts)
			}
			if n := len(exp.GetSpans()); n != 0 {
				t.Errorf("%d spans exported, want 0: none was sampled", n)
			}
		})
	}
}

// histogramCounts sums the sample counts of each histogram in tel's
// Prometheus registry.
func histogramCounts(t *testing.T, tel *telemetry.Telemetry) map[string]uint64 {
	t.Helper()
	mfs, err := tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_HISTOGRAM {
			continue
		}
		for _, m := range mf.GetMetric() {
			counts[mf.GetName()] += m.GetHistogram().GetSampleCount()
		}
	}
	return counts
}

// TestContextOnlySpans: without an exporter, the middleware's spans record
// nothing but carry the span context the SDK would give them: for every
// sampler and parent (none, sampled, unsampled, with trace state), the
// handler sees the same trace ID inheritance, sampled flag and trace state
// as with the SDK's spans, and a new valid span ID.
func TestContextOnlySpans(t *testing.T) {
	parents := map[string]string{
		"root":      "",
		"sampled":   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"unsampled": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
	}
	samplers := []struct {
		name  string
		ratio float64
		env   string // OTEL_TRACES_SAMPLER, read when name is empty
	}{
		{name: ""}, {name: "always_on"}, {name: "always_off"}, {name: "parentbased_always_off"},
		{name: "traceidratio", ratio: 0}, {name: "parentbased_traceidratio", ratio: 1},
		{env: "always_off"}, {env: "parentbased_always_off"},
	}
	for _, smp := range samplers {
		for pname, parent := range parents {
			t.Run(fmt.Sprintf("%s%s/%s", smp.name, smp.env, pname), func(t *testing.T) {
				if smp.env != "" {
					t.Setenv("OTEL_TRACES_SAMPLER", smp.env)
				}
				ref := tracetest.NewInMemoryExporter()
				sdk := handlerSpan(t, telemetry.Config{Sampler: smp.name, SamplerRatio: smp.ratio,
					TracerOptions: []sdktrace.TracerProviderOption{sdktrace.WithSyncer(ref)}}, parent)
				got := handlerSpan(t, telemetry.Config{Sampler: smp.name, SamplerRatio: smp.ratio}, parent)
				if !got.IsValid() {
					t.Fatalf("span context %v: want a valid one", got)
				}
				if got.IsSampled() != sdk.IsSampled() {
					t.Errorf("sampled = %v, the SDK's span says %v", got.IsSampled(), sdk.IsSampled())
				}
				if got.TraceState().String() != sdk.TraceState().String() {
					t.Errorf("trace state = %q, the SDK's span says %q", got.TraceState(), sdk.TraceState())
				}
				if parent != "" {
					if got.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || got.SpanID().String() == "b7ad6b7169203331" {
						t.Errorf("span context %s/%s: want the parent's trace ID and a span ID of its own", got.TraceID(), got.SpanID())
					}
				} else if got.TraceID() == sdk.TraceID() {
					t.Errorf("two roots share trace ID %s", got.TraceID())
				}
			})
		}
	}
}

// handlerSpan serves one HTTP call through the tracing middleware of a
// Setup of cfg, with traceparent (and a tracestate) when set, and returns
// the span context the handler saw.
func handlerSpan(t *testing.T, cfg telemetry.Config, traceparent string) trace.SpanContext {
	t.Helper()
	tel := must(telemetry.Setup(testCtx(t), cfg))(t)
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	srv := server.New("spans", server.WithMiddleware(tel.Tracing()))
	seen := make(chan trace.SpanContext, 1)
	server.Handle(srv, "Echo", func(ctx context.Context, h *hop) (*hop, error) {
		seen <- trace.SpanContextFromContext(ctx)
		return h, nil
	})
	inst := ferrytest.Start(t, srv)
	ctx := testCtx(t)
	if traceparent != "" {
		ctx = transport.WithMetadata(ctx, transport.Pairs("traceparent", traceparent, "tracestate", "vendor=abc"))
	}
	if _, err := transport.Invoke[hop, hop](ctx, inst.HTTP, "spans", "Echo", &hop{Path: "x"}); err != nil {
		t.Fatal(err)
	}
	return <-seen
}

// TestActiveCallsObserved: the in-flight counts (observed from the
// middleware's own counters) show a call while its handler runs, on the
// server and on the client, over HTTP and over gRPC, and none once it
// has ended.
func TestActiveCallsObserved(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	entered, release := make(chan struct{}, 1), make(chan struct{})
	srv := server.New("inflight", server.WithMiddleware(telemetry.Metrics(mp)))
	server.Handle(srv, "Wait", func(_ context.Context, h *hop) (*hop, error) {
		entered <- struct{}{}
		<-release
		return h, nil
	})
	inst := ferrytest.Start(t, srv)
	mw := telemetry.Metrics(mp)
	hc := must(fhttp.NewClient("http://"+inst.HTTPAddr, fhttp.WithClientMiddleware(mw)))(t)
	defer hc.Close()
	gc := must(fgrpc.NewClient(inst.GRPCAddr, fgrpc.WithClientMiddleware(mw)))(t)
	defer gc.Close()
	for _, tc := range []struct {
		c              transport.Client
		server, client string
	}{
		{hc, telemetry.HTTPServerActive, telemetry.HTTPClientActive},
		{gc, telemetry.RPCServerActive, telemetry.RPCClientActive},
	} {
		c := tc.c
		done := make(chan error, 1)
		go func() {
			_, err := transport.Invoke[hop, hop](testCtx(t), c, "inflight", "Wait", &hop{Path: "x"})
			done <- err
		}()
		<-entered
		if s, cl := ferrytest.CounterSum(t, reader, tc.server), ferrytest.CounterSum(t, reader, tc.client); s != 1 || cl != 1 {
			t.Errorf("while the call runs: %s = %d, %s = %d; want 1 and 1", tc.server, s, tc.client, cl)
		}
		release <- struct{}{}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if s, cl := ferrytest.CounterSum(t, reader, tc.server), ferrytest.CounterSum(t, reader, tc.client); s != 0 || cl != 0 {
			t.Errorf("after the call: %s = %d, %s = %d; want 0 and 0", tc.server, s, tc.client, cl)
		}
	}
}

// TestContextOnlyThroughBroker: without an exporter, an event published in
// a call's context is handled in that call's trace, in a span of its own
// (the producer's and the consumer's spans carry context only).
func TestContextOnlyThroughBroker(t *testing.T) {
	tel := must(telemetry.Setup(testCtx(t), telemetry.Config{}))(t)
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	b := tel.Broker(must(memory.New())(t))
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	ctx := testCtx(t)
	got := make(chan trace.SpanContext, 1)
	_, err := broker.Subscribe(ctx, b, "events.orders.placed", func(ctx context.Context, _ *broker.Event[hop]) error {
		got <- trace.SpanContextFromContext(ctx)
		return nil
	}, broker.Queue("billing"), broker.WithMiddleware(tel.Tracing()))
	if err != nil {
		t.Fatal(err)
	}
	caller := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled})
	if err := b.Publish(trace.ContextWithSpanContext(ctx, caller), &broker.Message{Topic: "events.orders.placed", Data: []byte(`{"path":"p"}`)}); err != nil {
		t.Fatal(err)
	}
	var handled trace.SpanContext
	select {
	case handled = <-got:
	case <-ctx.Done():
		t.Fatal("the event was not handled")
	}
	if handled.TraceID() != caller.TraceID() || handled.SpanID() == caller.SpanID() || !handled.SpanID().IsValid() || !handled.IsSampled() {
		t.Errorf("handler ran in %s/%s sampled=%v, want trace %s, a span of its own, sampled", handled.TraceID(), handled.SpanID(), handled.IsSampled(), caller.TraceID())
	}
}
