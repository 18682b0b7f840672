package traces_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/ferry-go/ferry/dev/traces"
)

// A receiver and the API on one loopback server, and a service exporting
// to it as OTEL_EXPORTER_OTLP_ENDPOINT=<srv.URL> would have it do.
func Example() {
	store := traces.NewStore(200)
	mux := http.NewServeMux()
	mux.Handle("/v1/traces", traces.NewReceiver(store))
	mux.Handle("/api/", http.StripPrefix("/api", traces.API(store)))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"))
	if err != nil {
		panic(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("greeter"))))
	_, span := tp.Tracer("example").Start(ctx, "greeter.Hello")
	span.End()
	if err := tp.Shutdown(ctx); err != nil { // flushes the span to the receiver
		panic(err)
	}

	for _, t := range store.List() {
		fmt.Println(t.RootService, t.Root, t.SpanCount, "span(s), error:", t.Error)
	}
	// Output:
	// greeter greeter.Hello 1 span(s), error: false
}
