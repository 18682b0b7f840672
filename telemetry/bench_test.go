package telemetry_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// stack is tracing with a never-sampling sampler, metrics on an SDK meter
// provider and the access log (disabled level), as in production with
// sampling off.
func stack(b *testing.B, withLog bool) []middleware.Middleware {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	mws := []middleware.Middleware{telemetry.Tracing(tp, nil), telemetry.Metrics(mp)}
	if withLog {
		mws = append(mws, telemetry.AccessLog(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	}
	return mws
}

// BenchmarkMiddleware is the stack's own cost per call, no transport.
func BenchmarkMiddleware(b *testing.B) {
	h := func(ctx context.Context, req any) (any, error) { return req, nil }
	for _, c := range []struct {
		name string
		mws  []middleware.Middleware
	}{{"none", nil}, {"tracing+metrics", stack(b, false)}, {"tracing+metrics+log", stack(b, true)}} {
		b.Run(c.name, func(b *testing.B) {
			chain := middleware.Chain(c.mws...)(h)
			call := &transport.Call{Service: "bench", Endpoint: "Echo", Kind: transport.HTTP, Request: transport.Metadata{}, Reply: transport.Metadata{}}
			ctx := transport.NewCallContext(context.Background(), call)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = chain(ctx, call)
			}
		})
	}
}

// BenchmarkHTTPEcho compares an HTTP echo call with and without the stack
// on server and client.
func BenchmarkHTTPEcho(b *testing.B) {
	for _, c := range []struct {
		name string
		mws  []middleware.Middleware
	}{{"none", nil}, {"tracing+metrics+log", stack(b, true)}} {
		b.Run(c.name, func(b *testing.B) {
			srv := server.New("bench", server.WithMiddleware(c.mws...))
			server.Handle(srv, "Echo", func(_ context.Context, h *hop) (*hop, error) { return h, nil })
			srv.Freeze()
			hs := fhttp.NewServer("127.0.0.1:0")
			if err := hs.Start(context.Background(), srv); err != nil {
				b.Fatal(err)
			}
			defer hs.Stop(context.Background())
			cl, err := fhttp.NewClient("http://"+hs.Addr().String(), fhttp.WithClientMiddleware(c.mws...))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := transport.Invoke[hop, hop](ctx, cl, "bench", "Echo", &hop{Path: "x"}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkCallSpans is Tracing and Metrics around one call of each
// transport, server and client side, with a never-sampling sampler
// (unsampled) and an always-sampling one without exporter (sampled: the
// span records and builds its attributes), no transport.
func BenchmarkCallSpans(b *testing.B) {
	h := func(ctx context.Context, req any) (any, error) { return req, nil }
	for _, sampled := range []bool{false, true} {
		sampler := sdktrace.NeverSample()
		mode := "unsampled"
		if sampled {
			sampler, mode = sdktrace.AlwaysSample(), "sampled"
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
		chain := middleware.Chain(telemetry.Tracing(tp, nil), telemetry.Metrics(mp))(h)
		for _, c := range benchCalls() {
			b.Run(mode+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					call := c.call
					call.Request, call.Reply = transport.Metadata{}, transport.Metadata{}
					_, _ = chain(transport.NewCallContext(context.Background(), &call), &call)
				}
			})
		}
	}
}

// BenchmarkAccessLog is the access log's line for one call of each
// transport, as configured by default (text, Info, with a trace ID),
// written to io.Discard: its cost without the write.
func BenchmarkAccessLog(b *testing.B) {
	h := func(ctx context.Context, req any) (any, error) { return req, nil }
	for _, format := range []string{"text", "json"} {
		var lh slog.Handler = slog.NewTextHandler(io.Discard, nil)
		if format == "json" {
			lh = slog.NewJSONHandler(io.Discard, nil)
		}
		chain := telemetry.AccessLog(slog.New(telemetry.LogHandler(lh)))(h)
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
		for _, c := range benchCalls() {
			b.Run(format+"/"+c.name, func(b *testing.B) {
				call := c.call
				ctx := trace.ContextWithSpanContext(transport.NewCallContext(context.Background(), &call), sc)
				b.ReportAllocs()
				for b.Loop() {
					_, _ = chain(ctx, &call)
				}
			})
		}
	}
}
