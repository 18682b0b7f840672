package telemetry_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/telemetry"
	"go.opentelemetry.io/otel/trace"
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
