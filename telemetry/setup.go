package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Config configures Setup. The zero value is valid: trace context is
// propagated and trace IDs are logged, but spans are recorded and exported
// only if the standard OTEL_EXPORTER_OTLP_* variables name an endpoint;
// metrics go to a Prometheus registry.
//
// When nothing exports spans (no OTLP endpoint, no Stdout, no
// TracerOptions), the middleware's spans record nothing: each still gets
// its span context as the SDK would make it (trace and span IDs, the
// configured sampler's decision and trace state), which is all that
// propagation and the logs use, and costs a fraction of a recorded span.
type Config struct {
	// ServiceName and ServiceVersion become the resource's service.name and
	// service.version (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are
	// read too; these win).
	ServiceName    string
	ServiceVersion string

	// OTLPEndpoint exports traces over OTLP/HTTP: "host:port" or an
	// http(s):// URL, with or without /v1/traces (see OTLPTracesURL). Empty: only if OTEL_EXPORTER_OTLP_ENDPOINT or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, which the exporter then reads
	// with the other OTEL_EXPORTER_OTLP_* variables (headers, timeout, TLS).
	OTLPEndpoint string
	// OTLPInsecure sends OTLP over plain HTTP to a host:port endpoint that is
	// not loopback (a loopback one is plain HTTP anyway; a URL says so by its
	// scheme).
	OTLPInsecure bool
	// OTLPHeaders are sent with every export (e.g. an API key).
	OTLPHeaders map[string]string
	// OTLPProtocol is "http/protobuf" (the default, port 4318) or "grpc"
	// (OTLP/gRPC, port 4317), as OTEL_EXPORTER_OTLP_PROTOCOL names them. With
	// "grpc" the endpoint is host:port or an http(s):// URL whose scheme says
	// whether to use TLS (host:port: plain on loopback or with OTLPInsecure).
	OTLPProtocol string

	// Stdout writes every span as JSON to StdoutWriter (os.Stdout if nil).
	Stdout       bool
	StdoutWriter io.Writer

	// Sampler is one of "always_on", "always_off", "traceidratio",
	// "parentbased_always_on", "parentbased_always_off",
	// "parentbased_traceidratio" (the OTEL_TRACES_SAMPLER names), with
	// SamplerRatio for the ratio samplers. Empty: OTEL_TRACES_SAMPLER if set,
	// else parentbased_always_on.
	Sampler      string
	SamplerRatio float64

	// TracerOptions are added to the TracerProvider's options after the
	// ones above: another exporter or span processor
	// (sdktrace.WithBatcher(vendorExporter), sdktrace.WithSyncer(
	// tracetest.NewInMemoryExporter()) in a test), span limits, an ID
	// generator.
	TracerOptions []sdktrace.TracerProviderOption

	// DisableMetrics skips the MeterProvider (Metrics then records nothing).
	DisableMetrics bool
	// GoCollectors adds the Go runtime and process collectors to the
	// Prometheus registry.
	GoCollectors bool

	// Logger receives access logs (nil: slog.Default()).
	Logger *slog.Logger
	// SecretHeaders are metadata keys never logged, besides
	// DefaultSecretHeaders.
	SecretHeaders []string
	// LogMetadata logs request metadata (secrets redacted) in access logs.
	LogMetadata bool
}

// Telemetry is what Setup built.
type Telemetry struct {
	// TracerProvider is the SDK's provider with the configured sampler,
	// exporters and TracerOptions. The middleware and Broker start their
	// spans on it when something exports spans; otherwise on spans that
	// carry context only (see Config), so a span processor registered on
	// it after Setup is not given their spans: pass it in
	// Config.TracerOptions instead.
	TracerProvider *sdktrace.TracerProvider
	// MeterProvider is nil with Config.DisableMetrics.
	MeterProvider *sdkmetric.MeterProvider
	Propagator    propagation.TextMapPropagator
	// Registry is the Prometheus registry the OTel exporter is registered
	// on; Admin serves it.
	Registry *prometheus.Registry

	cfg Config
	// spans is what the middleware and Broker start spans with:
	// TracerProvider when something exports spans, else a provider of
	// spans that carry their context but record nothing (contextOnly).
	spans trace.TracerProvider
}

// Setup builds the tracer and meter providers of cfg. It does not set the
// OTel globals (call otel.SetTracerProvider etc. for libraries that use
// them). Shutdown flushes and stops both.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(serviceAttrs(cfg)...))
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	var smp sdktrace.Sampler
	if cfg.Sampler != "" {
		s, err := sampler(cfg.Sampler, cfg.SamplerRatio)
		if err != nil {
			return nil, err
		}
		smp = s
		topts = append(topts, sdktrace.WithSampler(s))
	}
	if otlpWanted(cfg) {
		exp, err := otlpExporter(ctx, cfg)
		if err != nil {
			return nil, err
		}
		topts = append(topts, sdktrace.WithBatcher(exp))
	}
	if cfg.Stdout {
		w := cfg.StdoutWriter
		if w == nil {
			w = os.Stdout
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(w))
		if err != nil {
			return nil, fmt.Errorf("telemetry: stdout exporter: %w", err)
		}
		// Synchronous: a demo's spans appear as they end, in order.
		topts = append(topts, sdktrace.WithSyncer(exp))
	}
	topts = append(topts, cfg.TracerOptions...)
	t := &Telemetry{
		TracerProvider: sdktrace.NewTracerProvider(topts...),
		Propagator:     defaultPropagator(),
		Registry:       prometheus.NewRegistry(),
		cfg:            cfg,
	}
	t.spans = t.TracerProvider
	if !otlpWanted(cfg) && !cfg.Stdout && len(cfg.TracerOptions) == 0 {
		// Nothing exports: the middleware's spans carry context only.
		t.spans = newContextOnly(smp)
	}
	if cfg.GoCollectors {
		t.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if !cfg.DisableMetrics {
		exp, err := otelprom.New(otelprom.WithRegisterer(t.Registry))
		if err != nil {
			_ = t.TracerProvider.Shutdown(ctx)
			return nil, fmt.Errorf("telemetry: Prometheus exporter: %w", err)
		}
		t.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	}
	return t, nil
}

func serviceAttrs(cfg Config) []attribute.KeyValue {
	var kvs []attribute.KeyValue
	if cfg.ServiceName != "" {
		kvs = append(kvs, semconv.ServiceName(cfg.ServiceName))
	}
	if cfg.ServiceVersion != "" {
		kvs = append(kvs, semconv.ServiceVersion(cfg.ServiceVersion))
	}
	return kvs
}

func otlpWanted(cfg Config) bool {
	return cfg.OTLPEndpoint != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// otlpExporter makes the OTLP trace exporter cfg asks for.
func otlpExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	switch cfg.OTLPProtocol {
	case "", "http/protobuf":
		opts, err := otlpOptions(cfg)
		if err != nil {
			return nil, fmt.Errorf("telemetry: %w", err)
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
		}
		return exp, nil
	case "grpc":
		var opts []otlptracegrpc.Option
		if cfg.OTLPEndpoint != "" {
			u, err := OTLPTracesURL(cfg.OTLPEndpoint, cfg.OTLPInsecure)
			if err != nil {
				return nil, fmt.Errorf("telemetry: %w", err)
			}
			pu, _ := url.Parse(u)
			opts = append(opts, otlptracegrpc.WithEndpoint(pu.Host))
			if pu.Scheme == "http" {
				opts = append(opts, otlptracegrpc.WithInsecure())
			}
		}
		if len(cfg.OTLPHeaders) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(cfg.OTLPHeaders))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP/gRPC exporter: %w", err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("telemetry: OTLP protocol %q: want http/protobuf or grpc", cfg.OTLPProtocol)
}

func otlpOptions(cfg Config) ([]otlptracehttp.Option, error) {
	var opts []otlptracehttp.Option
	if cfg.OTLPEndpoint != "" {
		u, err := OTLPTracesURL(cfg.OTLPEndpoint, cfg.OTLPInsecure)
		if err != nil {
			return nil, err
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(u))
	}
	if len(cfg.OTLPHeaders) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.OTLPHeaders))
	}
	return opts, nil
}

// OTLPTracesURL is the URL traces are posted to for an endpoint written the
// ways users write it, as the OTEL_EXPORTER_OTLP_ENDPOINT variable reads:
//
//   - "collector:4318": https://collector:4318/v1/traces — http:// when
//     insecure, or when the host is loopback ("localhost:4318", what a local
//     collector or Jaeger listens on without TLS);
//   - "http://collector:4318" or ".../": /v1/traces is appended;
//   - "https://otlp.example.com/otlp": /v1/traces is appended to the path;
//   - a URL already ending in /v1/traces is used as it is.
func OTLPTracesURL(endpoint string, insecure bool) (string, error) {
	const path = "/v1/traces"
	if !strings.Contains(endpoint, "://") {
		host, _, err := net.SplitHostPort(endpoint)
		if err != nil {
			return "", fmt.Errorf("OTLP endpoint %q: want host:port or an http(s):// URL", endpoint)
		}
		scheme := "https"
		if ip := net.ParseIP(host); insecure || host == "localhost" || (ip != nil && ip.IsLoopback()) {
			scheme = "http"
		}
		return scheme + "://" + endpoint + path, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("OTLP endpoint %q: want host:port or an http(s):// URL", endpoint)
	}
	if !strings.HasSuffix(u.Path, path) {
		u.Path = strings.TrimSuffix(u.Path, "/") + path
	}
	return u.String(), nil
}

func sampler(name string, ratio float64) (sdktrace.Sampler, error) {
	switch strings.ToLower(name) {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("telemetry: unknown sampler %q", name)
}

// Tracing returns the tracing middleware on t's providers.
func (t *Telemetry) Tracing() middleware.Middleware { return Tracing(t.spans, t.Propagator) }

// Metrics returns the metrics middleware on t's meter provider (a no-op
// without one).
func (t *Telemetry) Metrics() middleware.Middleware {
	if t.MeterProvider == nil {
		return func(next middleware.Handler) middleware.Handler { return next }
	}
	return Metrics(t.MeterProvider)
}

// AccessLog returns the access log middleware as configured, plus opts.
func (t *Telemetry) AccessLog(opts ...AccessLogOption) middleware.Middleware {
	base := []AccessLogOption{WithSecretHeaders(t.cfg.SecretHeaders...)}
	if t.cfg.LogMetadata {
		base = append(base, WithLoggedMetadata())
	}
	return AccessLog(t.cfg.Logger, append(base, opts...)...)
}

// Middleware returns tracing, metrics and the access log, in the order
// they must run (tracing outermost, so the others see its span), for
// server.WithMiddleware, a client's WithClientMiddleware or
// broker.WithMiddleware.
func (t *Telemetry) Middleware() []middleware.Middleware {
	return []middleware.Middleware{t.Tracing(), t.Metrics(), t.AccessLog()}
}

// Broker decorates b with producer spans and broker counters (TraceBroker).
func (t *Telemetry) Broker(b broker.Broker, opts ...BrokerOption) broker.Broker {
	base := []BrokerOption{WithTracerProvider(t.spans), WithPropagator(t.Propagator)}
	if t.MeterProvider != nil {
		base = append(base, WithMeterProvider(t.MeterProvider))
	}
	return TraceBroker(b, append(base, opts...)...)
}

// Admin returns an admin server on addr serving t's registry.
func (t *Telemetry) Admin(addr string, opts ...AdminOption) *Admin {
	return NewAdmin(addr, append([]AdminOption{WithGatherer(t.Registry)}, opts...)...)
}

// Shutdown flushes pending spans and stops both providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errsOut []error
	if err := t.TracerProvider.Shutdown(ctx); err != nil {
		errsOut = append(errsOut, err)
	}
	if t.MeterProvider != nil {
		if err := t.MeterProvider.Shutdown(ctx); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	return errors.Join(errsOut...)
}
