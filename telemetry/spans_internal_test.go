package telemetry

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// askedSampler samples everything and keeps what it was asked.
type askedSampler struct{ asked []sdktrace.SamplingParameters }

func (s *askedSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	s.asked = append(s.asked, p)
	return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
}

func (s *askedSampler) Description() string { return "asked" }

// TestContextTracerAsksAsTheSDK: a context-only span asks its sampler what
// the SDK's tracer asks — the same name, kind, attributes and links —
// whether the options are one of the middleware's span-kind lists (read
// without applying them) or any others, and honours WithNewRoot.
func TestContextTracerAsksAsTheSDK(t *testing.T) {
	parent := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled}))
	link := trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{3}, SpanID: trace.SpanID{4}})}
	optionSets := map[string][]trace.SpanStartOption{
		"server": serverKind, "client": clientKind, "consumer": consumerKind, "producer": producerKind,
		"none":       nil,
		"kind+attrs": {trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attribute.String("k", "v"))},
		"kind only":  {trace.WithSpanKind(trace.SpanKindServer)}, // not the middleware's list: applied
		"links":      {trace.WithLinks(link)},
		"new root":   {trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindInternal)},
	}
	for name, opts := range optionSets {
		t.Run(name, func(t *testing.T) {
			ours, sdks := &askedSampler{}, &askedSampler{}
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdks))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			ctxOurs, _ := newContextOnly(ours).tracer.Start(parent, "op", opts...)
			ctxSDK, _ := tp.Tracer("t").Start(parent, "op", opts...)
			if len(ours.asked) != 1 || len(sdks.asked) != 1 {
				t.Fatalf("asked %d and %d times, want once each", len(ours.asked), len(sdks.asked))
			}
			o, s := ours.asked[0], sdks.asked[0]
			if o.Name != s.Name || o.Kind != s.Kind || fmt.Sprint(o.Attributes) != fmt.Sprint(s.Attributes) || fmt.Sprint(o.Links) != fmt.Sprint(s.Links) {
				t.Errorf("asked %s %v %v %v, the SDK asked %s %v %v %v", o.Name, o.Kind, o.Attributes, o.Links, s.Name, s.Kind, s.Attributes, s.Links)
			}
			if o.TraceID == (trace.TraceID{}) {
				t.Error("asked with no trace ID")
			}
			gotRoot := trace.SpanContextFromContext(ctxOurs).TraceID() != (trace.TraceID{1})
			wantRoot := trace.SpanContextFromContext(ctxSDK).TraceID() != (trace.TraceID{1})
			if gotRoot != wantRoot {
				t.Errorf("new trace = %v, the SDK's span says %v", gotRoot, wantRoot)
			}
		})
	}
}
