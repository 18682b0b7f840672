package traces_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferry-go/ferry/dev/traces"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/telemetry"
)

// dashboard serves a receiver at /v1/traces and the API under /api, as
// ferry dev does, on a loopback port.
func dashboard(t *testing.T, store *traces.Store, opts ...traces.ReceiverOption) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/v1/traces", traces.NewReceiver(store, opts...))
	mux.Handle("/api/", http.StripPrefix("/api", traces.API(store)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// provider is an SDK tracer provider for service, exporting through exp.
func provider(service string, exp sdktrace.SpanExporter) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service), semconv.ServiceVersion("1.2.3"))),
		sdktrace.WithBatcher(exp),
	)
}

func exporter(t *testing.T, ctx context.Context, srv *httptest.Server, opts ...otlptracehttp.Option) sdktrace.SpanExporter {
	t.Helper()
	exp, err := otlptracehttp.New(ctx, append([]otlptracehttp.Option{otlptracehttp.WithEndpointURL(srv.URL + "/v1/traces")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// checkout makes one trace across two services, as a frontend calling a
// backend over the network would: the frontend's server span, its client
// span for the call, then — the trace context carried in a traceparent
// header — the backend's server span and an internal span that fails with
// a recorded error. It returns the spans' ids in that order.
func checkout(frontend, backend trace.TracerProvider) [4]trace.SpanContext {
	ctx, root := frontend.Tracer("shop").Start(context.Background(), "GET /checkout",
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "GET"), attribute.Int("http.response.status_code", 502)))
	cctx, call := frontend.Tracer("shop").Start(ctx, "payments.Charge",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("rpc.system", "nats"),
			attribute.Int64("retries", 2),
			attribute.Bool("idempotent", false),
			attribute.Float64("budget", 0.25),
			attribute.StringSlice("tags", []string{"eu", "card"}),
			attribute.Int64Slice("amounts", []int64{1999, 500}),
			attribute.BoolSlice("flags", []bool{true, false}),
		))

	header := http.Header{}
	propagation.TraceContext{}.Inject(cctx, propagation.HeaderCarrier(header))
	bctx := propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(header))

	bctx, serve := backend.Tracer("payments").Start(bctx, "payments.Charge", trace.WithSpanKind(trace.SpanKindServer))
	_, charge := backend.Tracer("payments").Start(bctx, "charge card", trace.WithAttributes(attribute.String("card.brand", "visa")))
	err := errors.New("card declined")
	charge.RecordError(err, trace.WithAttributes(attribute.String("card.last4", "4242")))
	charge.SetStatus(codes.Error, err.Error())
	charge.End()
	serve.SetStatus(codes.Error, "payment failed")
	serve.End()
	call.End()
	root.End()
	return [4]trace.SpanContext{root.SpanContext(), call.SpanContext(), serve.SpanContext(), charge.SpanContext()}
}

// TestSDKTraceAcrossServices sends one trace from two services through the
// real OpenTelemetry SDK and OTLP/HTTP exporter — the frontend's configured
// by hand, the backend's by Ferry's telemetry.Setup from an otlp_endpoint
// of host:port, as a service's configuration says it — and reads it back
// from the store and through the JSON API.
func TestSDKTraceAcrossServices(t *testing.T) {
	ctx := ferrytest.Context(t)
	store := traces.NewStore(0)
	srv := dashboard(t, store)

	frontend := provider("frontend", exporter(t, ctx, srv))
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName:    "payments",
		OTLPEndpoint:   strings.TrimPrefix(srv.URL, "http://"),
		DisableMetrics: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := checkout(frontend, tel.TracerProvider)
	if err := frontend.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	list := store.List()
	if len(list) != 1 {
		t.Fatalf("List: %d traces, want 1: %+v", len(list), list)
	}
	traceID := ids[0].TraceID().String()
	sum := list[0]
	if sum.TraceID != traceID || sum.Root != "GET /checkout" || sum.RootService != "frontend" ||
		sum.SpanCount != 4 || !sum.Error || !reflect.DeepEqual(sum.Services, []string{"frontend", "payments"}) {
		t.Errorf("summary = %+v, want trace %s rooted at frontend's GET /checkout, 4 spans, frontend and payments, an error", sum, traceID)
	}
	if sum.Duration <= 0 || sum.Start.IsZero() {
		t.Errorf("summary start %v, duration %v", sum.Start, sum.Duration)
	}

	tr, ok := store.Get(strings.ToUpper(traceID))
	if !ok {
		t.Fatalf("Get(%s): not found", traceID)
	}
	want := []struct {
		name, service, kind, status string
		parent, depth               int // parent: index in ids, -1 for none
	}{
		{"GET /checkout", "frontend", "server", traces.StatusUnset, -1, 0},
		{"payments.Charge", "frontend", "client", traces.StatusUnset, 0, 1},
		{"payments.Charge", "payments", "server", traces.StatusError, 1, 2},
		{"charge card", "payments", "internal", traces.StatusError, 2, 3},
	}
	if len(tr.Spans) != len(want) {
		t.Fatalf("Get: %d spans, want %d", len(tr.Spans), len(want))
	}
	for i, w := range want {
		sp := tr.Spans[i]
		parent := ""
		if w.parent >= 0 {
			parent = ids[w.parent].SpanID().String()
		}
		if sp.TraceID != traceID || sp.SpanID != ids[i].SpanID().String() || sp.ParentSpanID != parent ||
			sp.Name != w.name || sp.Service != w.service || sp.Kind != w.kind || sp.Status != w.status || sp.Depth != w.depth {
			t.Errorf("span %d = %s %s/%s parent %q %s %s %s depth %d; want %s %s/%s parent %q %s %s %s depth %d", i,
				sp.TraceID, sp.SpanID, sp.Name, sp.ParentSpanID, sp.Service, sp.Kind, sp.Status, sp.Depth,
				traceID, ids[i].SpanID(), w.name, parent, w.service, w.kind, w.status, w.depth)
		}
		if sp.End.Before(sp.Start) || sp.Start.Before(tr.Start) {
			t.Errorf("span %d: start %v end %v, trace start %v", i, sp.Start, sp.End, tr.Start)
		}
	}
	if got := tr.Spans[1].Attributes; !reflect.DeepEqual(got, map[string]any{
		"rpc.system": "nats",
		"retries":    int64(2),
		"idempotent": false,
		"budget":     0.25,
		"tags":       []any{"eu", "card"},
		"amounts":    []any{int64(1999), int64(500)},
		"flags":      []any{true, false},
	}) {
		t.Errorf("client span attributes = %#v", got)
	}
	if got := tr.Spans[0].Attributes["http.response.status_code"]; got != int64(502) {
		t.Errorf("http.response.status_code = %#v, want int64(502)", got)
	}
	if got := tr.Spans[0].Resource; got["service.name"] != "frontend" || got["service.version"] != "1.2.3" {
		t.Errorf("frontend resource = %v", got)
	}
	if sp := tr.Spans[0]; sp.Scope != "shop" {
		t.Errorf("scope = %q, want shop", sp.Scope)
	}

	charge := tr.Spans[3]
	if charge.StatusMessage != "card declined" {
		t.Errorf("status message = %q", charge.StatusMessage)
	}
	if len(charge.Events) != 1 {
		t.Fatalf("charge card events = %+v, want the exception", charge.Events)
	}
	ev := charge.Events[0]
	if ev.Name != "exception" || ev.Attributes["exception.message"] != "card declined" ||
		ev.Attributes["exception.type"] != "*errors.errorString" || ev.Attributes["card.last4"] != "4242" ||
		ev.Time.Before(charge.Start) || ev.Time.After(charge.End) {
		t.Errorf("exception event = %+v", ev)
	}

	// The JSON API serves the same.
	var apiList traces.List
	getJSON(t, srv.URL+"/api/traces", http.StatusOK, &apiList)
	if apiList.Version != store.Version() || len(apiList.Traces) != 1 || apiList.Traces[0].TraceID != traceID ||
		!apiList.Traces[0].Error || apiList.Traces[0].SpanCount != 4 {
		t.Errorf("GET /traces = %+v", apiList)
	}
	var apiTrace struct {
		TraceID  string   `json:"trace_id"`
		Root     string   `json:"root"`
		Services []string `json:"services"`
		Error    bool     `json:"error"`
		Spans    []struct {
			SpanID       string         `json:"span_id"`
			ParentSpanID string         `json:"parent_span_id"`
			Service      string         `json:"service"`
			Status       string         `json:"status"`
			Depth        int            `json:"depth"`
			Attributes   map[string]any `json:"attributes"`
			Events       []struct {
				Name       string         `json:"name"`
				Attributes map[string]any `json:"attributes"`
			} `json:"events"`
		} `json:"spans"`
	}
	getJSON(t, srv.URL+"/api/traces/"+traceID, http.StatusOK, &apiTrace)
	if apiTrace.TraceID != traceID || apiTrace.Root != "GET /checkout" || !apiTrace.Error || len(apiTrace.Spans) != 4 {
		t.Fatalf("GET /traces/{id} = %+v", apiTrace)
	}
	for i, sp := range apiTrace.Spans {
		if sp.SpanID != tr.Spans[i].SpanID || sp.ParentSpanID != tr.Spans[i].ParentSpanID || sp.Depth != i || sp.Service != tr.Spans[i].Service {
			t.Errorf("API span %d = %+v, want %+v", i, sp, tr.Spans[i])
		}
	}
	if got := apiTrace.Spans[1].Attributes; got["retries"] != 2.0 || got["idempotent"] != false ||
		!reflect.DeepEqual(got["tags"], []any{"eu", "card"}) {
		t.Errorf("API client span attributes = %v", got)
	}
	if ev := apiTrace.Spans[3].Events; len(ev) != 1 || ev[0].Name != "exception" || ev[0].Attributes["exception.message"] != "card declined" {
		t.Errorf("API exception events = %+v", ev)
	}
}

// TestSDKEncodings sends a trace through the real exporter in each encoding
// it speaks — protobuf and OTLP/JSON (whose ids are hex), each plain and
// gzipped — and finds the SDK's ids in the store.
func TestSDKEncodings(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []otlptracehttp.Option
	}{
		{"protobuf", nil},
		{"protobuf+gzip", []otlptracehttp.Option{otlptracehttp.WithCompression(otlptracehttp.GzipCompression)}},
		{"json", []otlptracehttp.Option{otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON)}},
		{"json+gzip", []otlptracehttp.Option{otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON), otlptracehttp.WithCompression(otlptracehttp.GzipCompression)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ferrytest.Context(t)
			store := traces.NewStore(0)
			srv := dashboard(t, store)
			exp := exporter(t, ctx, srv, tc.opts...)
			frontend, backend := provider("frontend", exp), provider("payments", exp)
			ids := checkout(frontend, backend)
			for _, tp := range []*sdktrace.TracerProvider{frontend, backend} {
				if err := tp.ForceFlush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			tr, ok := store.Get(ids[0].TraceID().String())
			if !ok {
				t.Fatalf("trace %s not in the store; it has %+v", ids[0].TraceID(), store.List())
			}
			if len(tr.Spans) != 4 || !tr.Error || !reflect.DeepEqual(tr.Services, []string{"frontend", "payments"}) {
				t.Fatalf("trace = %+v", tr.Summary)
			}
			for i, sp := range tr.Spans {
				if sp.SpanID != ids[i].SpanID().String() || sp.Depth != i || (i > 0 && sp.ParentSpanID != ids[i-1].SpanID().String()) {
					t.Errorf("span %d: id %s parent %q depth %d; want id %s, parent the span before", i, sp.SpanID, sp.ParentSpanID, sp.Depth, ids[i].SpanID())
				}
			}
			if got := tr.Spans[1].Attributes["amounts"]; !reflect.DeepEqual(got, []any{int64(1999), int64(500)}) {
				t.Errorf("amounts = %#v", got)
			}
			for _, tp := range []*sdktrace.TracerProvider{frontend, backend} {
				if err := tp.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestSDKEndpointVariable points the exporter at the receiver the way
// ferry dev points services: OTEL_EXPORTER_OTLP_ENDPOINT with the base URL,
// to which the exporter adds /v1/traces.
func TestSDKEndpointVariable(t *testing.T) {
	ctx := ferrytest.Context(t)
	store := traces.NewStore(0)
	srv := dashboard(t, store)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tp := provider("env", exp)
	_, span := tp.Tracer("t").Start(ctx, "op")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if list := store.List(); len(list) != 1 || list[0].TraceID != span.SpanContext().TraceID().String() || list[0].RootService != "env" {
		t.Fatalf("List = %+v, want the one trace of service env", list)
	}
}

// TestSDKSpansPerTraceCap exports a trace of 10 spans, the root last as the
// SDK ends it, into a store keeping 4 per trace: it keeps the first 4 and
// the root, the exporter reports the 5 others as rejected, from the
// response's partial_success, and the summary counts them as dropped.
func TestSDKSpansPerTraceCap(t *testing.T) {
	ctx := ferrytest.Context(t)
	store := traces.NewStore(0, traces.WithMaxSpans(4))
	srv := dashboard(t, store)

	rec := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(rec))
	ctx2, root := tp.Tracer("t").Start(ctx, "root")
	for range 9 {
		_, sp := tp.Tracer("t").Start(ctx2, "child")
		sp.End()
	}
	root.End()
	spans := rec.GetSpans().Snapshots() // before Shutdown, which empties rec
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	exp := exporter(t, ctx, srv)
	err := exp.ExportSpans(ctx, spans)
	if err == nil || !strings.Contains(err.Error(), "(5 spans rejected)") || !strings.Contains(err.Error(), "5 over the limit of 4 spans per trace") {
		t.Errorf("ExportSpans: %v, want the partial success rejecting 5 spans over the limit of 4", err)
	}
	// The exporter's retry of the same batch replaces what was kept.
	_ = exp.ExportSpans(ctx, spans)
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	list := store.List()
	if len(list) != 1 || list[0].SpanCount != 5 || list[0].Dropped != 10 || list[0].Root != "root" {
		t.Fatalf("List = %+v, want one trace of 5 spans with its root, 10 dropped", list)
	}
}

// getJSON GETs u, wants status and decodes the body into v.
func getJSON(t *testing.T, u string, status int, v any) http.Header {
	t.Helper()
	if _, err := url.Parse(u); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %s %s, want %d", u, resp.Status, body, status)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", u, err, body)
		}
	}
	return resp.Header
}
