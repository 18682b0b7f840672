package bench_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferry-go/ferry/middleware/validate"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BenchmarkMiddleware measures the default middleware stack on the HTTP
// echo: recovery (always on), tracing with a never-sampling sampler (the
// trace context is still extracted and a non-recording span started),
// metrics into a real meter provider (a manual reader: aggregation happens,
// export does not), and validation of the request's struct tags — against
// the same server with recovery only. Client side plain in both rows.
func BenchmarkMiddleware(b *testing.B) {
	for _, p := range parallelism {
		for _, stack := range []string{"none", "default"} {
			b.Run(fmt.Sprintf("http/%s/p%d", stack, p), func(b *testing.B) {
				var opts []server.Option
				if stack == "default" {
					tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
					mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
					b.Cleanup(func() {
						_ = tp.Shutdown(context.Background())
						_ = mp.Shutdown(context.Background())
					})
					prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
					opts = append(opts, server.WithMiddleware(telemetry.Tracing(tp, prop), telemetry.Metrics(mp), validate.New()))
				}
				s := server.New("bench", opts...)
				server.Handle(s, "Echo", func(_ context.Context, m *Msg) (*Msg, error) { return m, nil })
				benchClient(b, p, startHTTP(b, s), "Echo")
			})
		}
	}
}
