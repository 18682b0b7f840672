package dashboard_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/dev/dashboard"
	"github.com/ferry-go/ferry/dev/traces"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/gateway"
	"github.com/ferry-go/ferry/registry"
	regmemory "github.com/ferry-go/ferry/registry/memory"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// The greeter's types, as the test service declares them.
type helloRequest struct {
	Name string `json:"name" validate:"required,max=100"`
}

type helloReply struct {
	Message string `json:"message"`
}

type failRequest struct {
	Reason string `json:"reason"`
}

// greeterSchemas replaces what registry.Describe publishes under
// registry.MetadataSchemas for the greeter (JSON Schema 2020-12 with the
// validator rules in x-validate), so that the pages are tested on a known
// document with a description, and Fail publishes none.
const greeterSchemas = `{"Hello": {
  "request": {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": "#/$defs/HelloRequest",
    "$defs": {"HelloRequest": {"type": "object", "required": ["name"],
      "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100, "x-validate": "required,max=100", "description": "who to greet"},
                     "lang": {"type": "string", "enum": ["en", "fr"]}}}}},
  "response": {"type": "object", "title": "HelloReply", "properties": {"message": {"type": "string"}}}
}}`

// schemaRegistry adds the greeter's schemas to its registration, as a
// service publishing them will.
type schemaRegistry struct{ *regmemory.Registry }

func (r schemaRegistry) Register(ctx context.Context, in registry.Instance) error {
	if in.Service == "greeter" {
		in.Metadata[registry.MetadataSchemas] = greeterSchemas
	}
	return r.Registry.Register(ctx, in)
}

// stack is a real development set-up on loopback: an embedded NATS, a
// memory registry, a trace store fed over OTLP/HTTP by the OpenTelemetry
// SDK, a greeter service on HTTP and NATS, and a gateway serving the
// dashboard under /_ferry/ beside its routes.
type stack struct {
	URL       string // the gateway's (and dashboard's) base URL
	NATSURL   string
	Registry  *regmemory.Registry
	Store     *traces.Store
	Dashboard *dashboard.Dashboard
	Greeter   *ferry.Service
}

// tracerProvider exports service's spans to the receiver at url in
// batches of at most 50ms, shut down (flushed) at the end of the test.
func tracerProvider(t *testing.T, url, service string) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(url+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(50*time.Millisecond)),
	)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	})
	return tp
}

func startStack(t *testing.T, opts ...func(*dashboard.Options)) *stack {
	t.Helper()
	ctx := ferrytest.Context(t)
	ns := ferrytest.NATS(t)
	reg := regmemory.New()
	store := traces.NewStore(0)
	recv := httptest.NewServer(traces.NewReceiver(store))
	t.Cleanup(recv.Close)

	// The greeter.
	srv := server.New("greeter", server.WithVersion("1.4.0"), server.WithLogger(quiet()),
		server.WithMiddleware(telemetry.Tracing(tracerProvider(t, recv.URL, "greeter"), nil)))
	server.Handle(srv, "Hello", func(_ context.Context, r *helloRequest) (*helloReply, error) {
		if strings.TrimSpace(r.Name) == "" {
			return nil, errs.New(errs.InvalidArgument, "name is required").WithDetails(errs.Detail{Field: "name", Reason: "must not be empty"})
		}
		return &helloReply{Message: "Hello, " + r.Name + "!"}, nil
	}, server.WithIdempotent(), server.WithRoute("GET /v1/hello/{name}"))
	server.Handle(srv, "Fail", func(_ context.Context, r *failRequest) (*helloReply, error) {
		return nil, errs.New(errs.FailedPrecondition, "failing as asked: "+r.Reason)
	})
	nc := fnats.ConnectTo(func() string { return ns.ClientURL() })
	svc := ferry.New(srv, ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")), ferry.WithConnection(nc), ferry.WithTransport(nc.Serve()),
		ferry.WithRegistry(schemaRegistry{reg}), ferry.WithLogger(quiet()))
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })

	// The gateway, traced as service "gateway".
	gtp := tracerProvider(t, recv.URL, "gateway")
	c, err := client.New(reg, client.WithNATS(ferrytest.Connect(t, ns.ClientURL())), client.WithTransports("nats", "http"),
		client.WithMiddleware(telemetry.Tracing(gtp, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	gw, err := gateway.New(reg, c, gateway.WithLogger(quiet()), gateway.WithMiddleware(telemetry.Tracing(gtp, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Stop(context.Background()) })

	// The dashboard, served by the gateway's HTTP server under /_ferry/.
	o := dashboard.Options{Catalog: reg, Traces: store, Stats: dashboard.NATSStats(ferrytest.Connect(t, ns.ClientURL())),
		StatsInterval: 250 * time.Millisecond, Logger: quiet()}
	for _, f := range opts {
		f(&o)
	}
	d, err := dashboard.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/", gw)
	mux.Handle("/_ferry/", d)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	st := &stack{URL: hs.URL, NATSURL: ns.ClientURL(), Registry: reg, Store: store, Dashboard: d, Greeter: svc}
	// The catalogue lists the greeter once the dashboard has seen it.
	ferrytest.Eventually(t, "the dashboard lists the greeter", func() bool {
		_, body := get(t, hs.URL+"/_ferry/")
		return strings.Contains(body, `data-testid="service-greeter"`)
	})
	return st
}

// get GETs u and returns the status and body.
func get(t testing.TB, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// post POSTs body to u with headers and returns the status and body.
func post(t testing.TB, u, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
