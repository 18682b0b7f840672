package telemetry_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/telemetry"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// TestSetupStdout: Setup with the stdout exporter writes ended spans with
// the service name; the sampler is honoured; Shutdown stops everything.
func TestSetupStdout(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	var buf bytes.Buffer
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "setup-test", Stdout: true, StdoutWriter: &buf})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "hello")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"Name":"hello"`) || !strings.Contains(buf.String(), "setup-test") {
		t.Errorf("stdout export = %s, want the span with the service name", buf.String())
	}
	if len(tel.Middleware()) != 3 || tel.MeterProvider == nil || tel.Registry == nil {
		t.Error("Setup did not build middleware, meter provider and registry")
	}

	off, err := telemetry.Setup(context.Background(), telemetry.Config{Sampler: "always_off", DisableMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Shutdown(context.Background())
	_, span = off.TracerProvider.Tracer("t").Start(context.Background(), "x")
	if span.SpanContext().IsSampled() || span.SpanContext().TraceFlags() != trace.TraceFlags(0) {
		t.Error("always_off sampled a span")
	}
	span.End()

	if _, err := telemetry.Setup(context.Background(), telemetry.Config{Sampler: "sometimes"}); err == nil {
		t.Error("an unknown sampler was accepted")
	}
}

// TestSetupOTLPFromEnv: the standard variable alone selects the OTLP
// exporter (nothing listens; Shutdown must still return).
func TestSetupOTLPFromEnv(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "otlp-test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*1e6)
	defer cancel()
	_ = tel.Shutdown(ctx) // the export fails: nothing listens
}

// The OTLP endpoint forms users write all reach /v1/traces (issue #12:
// "localhost:4318" exported over HTTPS and failed; "http://host:4318"
// posted to / and got 404).
func TestOTLPTracesURL(t *testing.T) {
	for _, c := range []struct {
		in       string
		insecure bool
		want     string
	}{
		{"localhost:4318", false, "http://localhost:4318/v1/traces"},
		{"127.0.0.1:4318", false, "http://127.0.0.1:4318/v1/traces"},
		{"collector:4318", false, "https://collector:4318/v1/traces"},
		{"collector:4318", true, "http://collector:4318/v1/traces"},
		{"http://collector:4318", false, "http://collector:4318/v1/traces"},
		{"http://collector:4318/", false, "http://collector:4318/v1/traces"},
		{"https://otlp.example.com/otlp", false, "https://otlp.example.com/otlp/v1/traces"},
		{"http://collector:4318/v1/traces", false, "http://collector:4318/v1/traces"},
	} {
		got, err := telemetry.OTLPTracesURL(c.in, c.insecure)
		if err != nil || got != c.want {
			t.Errorf("OTLPTracesURL(%q, %v) = %q, %v; want %q", c.in, c.insecure, got, err, c.want)
		}
	}
	for _, bad := range []string{"collector", "ftp://x:1", "http://"} {
		if _, err := telemetry.OTLPTracesURL(bad, false); err == nil {
			t.Errorf("OTLPTracesURL(%q) = nil error, want one", bad)
		}
	}
}

// Spans reach a plain-HTTP collector on loopback given as host:port or as
// a URL without a path.
func TestOTLPExportsToLocalCollector(t *testing.T) {
	for _, form := range []string{"hostport", "url"} {
		t.Run(form, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
			paths := make(chan string, 16)
			col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				paths <- r.URL.Path
				w.WriteHeader(http.StatusOK)
			}))
			defer col.Close()
			endpoint := strings.TrimPrefix(col.URL, "http://")
			if form == "url" {
				endpoint = col.URL
			}
			exportOneSpan(t, telemetry.Config{ServiceName: "otlp-test", OTLPEndpoint: endpoint, Sampler: "always_on"})
			select {
			case p := <-paths:
				if p != "/v1/traces" {
					t.Errorf("the exporter posted to %q, want /v1/traces", p)
				}
			default:
				t.Error("nothing reached the collector")
			}
		})
	}
}

// LogHandler puts the span's IDs on records logged with its context, once.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewTextHandler(&buf, nil)))
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "logs", Sampler: "always_on", DisableMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	ctx, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "op")
	defer span.End()
	id := span.SpanContext().TraceID().String()
	log.InfoContext(ctx, "in a handler")
	log.With("k", "v").InfoContext(ctx, "derived logger")
	log.InfoContext(ctx, "already has it", "trace_id", id)
	log.Info("no context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for i, want := range []int{1, 1, 1, 0} {
		if got := strings.Count(lines[i], "trace_id="+id); got != want {
			t.Errorf("line %q has the trace id %d times, want %d", lines[i], got, want)
		}
	}
}

// traceCollector is an OTLP/gRPC collector that counts the spans it gets.
type traceCollector struct {
	coltrace.UnimplementedTraceServiceServer
	spans chan int
}

func (c *traceCollector) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	c.spans <- n
	return &coltrace.ExportTraceServiceResponse{}, nil
}

// OTLP/gRPC (otlp_protocol: grpc) exports to a real gRPC collector on
// loopback, given as host:port.
func TestOTLPOverGRPC(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	col := &traceCollector{spans: make(chan int, 16)}
	coltrace.RegisterTraceServiceServer(gs, col)
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	exportOneSpan(t, telemetry.Config{ServiceName: "otlp-grpc", OTLPEndpoint: lis.Addr().String(), OTLPProtocol: "grpc", Sampler: "always_on", DisableMetrics: true})
	select {
	case n := <-col.spans:
		if n != 1 {
			t.Errorf("the collector got %d spans, want 1", n)
		}
	default:
		t.Error("nothing reached the OTLP/gRPC collector")
	}
	if _, err := telemetry.Setup(context.Background(), telemetry.Config{OTLPEndpoint: "x:1", OTLPProtocol: "thrift"}); err == nil {
		t.Error("an unknown OTLP protocol was accepted")
	}
}

// exportOneSpan sets telemetry up with cfg, ends one span and shuts down,
// which flushes the export.
func exportOneSpan(t *testing.T, cfg telemetry.Config) {
	t.Helper()
	tel, err := telemetry.Setup(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "op")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown (flushes the export) = %v", err)
	}
}
