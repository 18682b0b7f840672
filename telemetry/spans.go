package telemetry

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// contextOnly is the TracerProvider Setup gives the middleware when no
// exporter is configured: nothing would ever read a recorded span, so its
// spans record nothing, but they carry a span context exactly as the SDK's
// would — a new trace ID for a root, the parent's trace ID for a child, a
// new span ID, and the sampled flag and trace state the configured sampler
// decides — so trace IDs still reach the logs and the sampling decision
// still reaches the services called (which may export). It saves what a
// recorded span costs and nobody reads: the span, its attributes, its
// events.
type contextOnly struct {
	embedded.TracerProvider
	tracer *contextTracer
}

// contextTracer is contextOnly's one Tracer.
type contextTracer struct {
	embedded.Tracer
	sampler sdktrace.Sampler
}

var (
	_ trace.TracerProvider = (*contextOnly)(nil)
	_ trace.Tracer         = (*contextTracer)(nil)
)

// newContextOnly returns a contextOnly provider whose sampler is s, or,
// when s is nil, the one OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// name, as the SDK reads them (parentbased_always_on when unset or
// unknown).
func newContextOnly(s sdktrace.Sampler) *contextOnly {
	if s == nil {
		s = envSampler()
	}
	return &contextOnly{tracer: &contextTracer{sampler: s}}
}

// envSampler is the sampler the SDK's NewTracerProvider takes from the
// environment.
func envSampler() sdktrace.Sampler {
	name, ok := os.LookupEnv("OTEL_TRACES_SAMPLER")
	if !ok || name == "" {
		return sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	ratio := 1.0
	if arg, ok := os.LookupEnv("OTEL_TRACES_SAMPLER_ARG"); ok {
		if r, err := strconv.ParseFloat(arg, 64); err == nil && r >= 0 && r <= 1 {
			ratio = r
		}
	}
	s, err := sampler(name, ratio)
	if err != nil {
		return sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	return s
}

func (c *contextOnly) Tracer(string, ...trace.TracerOption) trace.Tracer { return c.tracer }

// Start returns ctx with a non-recording span whose span context is what
// the SDK would have given the span.
func (c *contextTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanContextFromContext(ctx)
	var cfg trace.SpanConfig
	kind, known := kindOf(opts)
	if !known && len(opts) > 0 {
		cfg = trace.NewSpanStartConfig(opts...)
		kind = cfg.SpanKind()
	}
	if cfg.NewRoot() {
		parent = trace.SpanContext{}
		ctx = trace.ContextWithSpanContext(ctx, parent)
	}
	var scc trace.SpanContextConfig
	if parent.IsValid() {
		scc.TraceID = parent.TraceID()
	} else {
		scc.TraceID = newTraceID()
	}
	scc.SpanID = newSpanID()
	// The named samplers read the parent's span context from ParentContext
	// and nothing else: without a parent, an empty context spares them a
	// second walk up the whole context chain (long on gRPC).
	sctx := ctx
	if !parent.IsValid() {
		sctx = context.Background()
	}
	res := c.sampler.ShouldSample(sdktrace.SamplingParameters{
		ParentContext: sctx, TraceID: scc.TraceID, Name: name,
		Kind: kind, Attributes: cfg.Attributes(), Links: cfg.Links(),
	})
	scc.TraceState = res.Tracestate
	if res.Decision == sdktrace.RecordAndSample {
		scc.TraceFlags = parent.TraceFlags() | trace.FlagsSampled
	} else {
		scc.TraceFlags = parent.TraceFlags() &^ trace.FlagsSampled
	}
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(scc))
	return ctx, trace.SpanFromContext(ctx)
}

// kindOf returns the kind opts set when opts is one of the span-kind
// option lists of this package (clientKind, ...), which the middleware
// passes on every call: the options need not be applied to a SpanConfig.
func kindOf(opts []trace.SpanStartOption) (trace.SpanKind, bool) {
	if len(opts) != 1 {
		return trace.SpanKindUnspecified, false
	}
	switch &opts[0] {
	case &serverKind[0]:
		return trace.SpanKindServer, true
	case &clientKind[0]:
		return trace.SpanKindClient, true
	case &consumerKind[0]:
		return trace.SpanKindConsumer, true
	case &producerKind[0]:
		return trace.SpanKindProducer, true
	}
	return trace.SpanKindUnspecified, false
}

// newTraceID returns a random, valid (non-zero) trace ID.
func newTraceID() (id trace.TraceID) {
	for !id.IsValid() {
		hi, lo := rand.Uint64(), rand.Uint64()
		for i := range 8 {
			id[i] = byte(hi >> (56 - 8*i))
			id[8+i] = byte(lo >> (56 - 8*i))
		}
	}
	return id
}

// newSpanID returns a random, valid (non-zero) span ID.
func newSpanID() (id trace.SpanID) {
	for !id.IsValid() {
		v := rand.Uint64()
		for i := range 8 {
			id[i] = byte(v >> (56 - 8*i))
		}
	}
	return id
}
