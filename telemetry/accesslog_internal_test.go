package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
	"go.opentelemetry.io/otel/trace"
)

// steady drops the attributes that differ from one line to the next.
func steady(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey || a.Key == "duration" {
		return slog.Attr{}
	}
	return a
}

// TestAccessLogPrefixes: a line whose first attributes come from a cached
// handler (a logger given to AccessLog) is the line formatted whole (the
// default logger, which is never cached), in text and JSON, for every
// transport and side and for a failure; past maxPrefixes endpoints lines
// are still whole, and no more handlers are kept.
func TestAccessLogPrefixes(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	calls := []transport.Call{
		{Service: "svc", Endpoint: "Echo", Kind: transport.HTTP, Peer: "127.0.0.1:1"},
		{Service: "svc", Endpoint: "Echo", Kind: transport.HTTP, Client: true},
		{Service: "svc", Endpoint: "Echo", Kind: transport.GRPC},
		{Service: "svc", Endpoint: "Echo", Kind: transport.NATS},
		{Service: "svc", Endpoint: "orders.placed", Kind: transport.NATS, Request: transport.Metadata{}},
	}
	for _, format := range []string{"text", "json"} {
		newHandler := func(buf *bytes.Buffer) slog.Handler {
			opts := &slog.HandlerOptions{ReplaceAttr: steady}
			if format == "json" {
				return LogHandler(slog.NewJSONHandler(buf, opts))
			}
			return LogHandler(slog.NewTextHandler(buf, opts))
		}
		var cached, whole bytes.Buffer
		viaCache := AccessLog(slog.New(newHandler(&cached)))
		prev := slog.Default()
		slog.SetDefault(slog.New(newHandler(&whole)))
		viaDefault := AccessLog(nil)
		for i, call := range calls {
			for _, fail := range []bool{false, true} {
				h := func(context.Context, any) (any, error) {
					if fail {
						return nil, errs.New(errs.NotFound, "no such thing")
					}
					return "ok", nil
				}
				for range 2 { // the first line makes the handler, the second uses it
					c := call
					ctx := trace.ContextWithSpanContext(transport.NewCallContext(context.Background(), &c), sc)
					_, _ = viaCache(h)(ctx, nil)
					_, _ = viaDefault(h)(ctx, nil)
				}
				if got, want := cached.String(), whole.String(); got != want {
					t.Errorf("%s, call %d, fail %v: cached lines\n%s\nwant\n%s", format, i, fail, got, want)
				}
				cached.Reset()
				whole.Reset()
			}
		}
		slog.SetDefault(prev)
	}

	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: steady}))
	pre := &prefixes{h: l.Handler()}
	mw := AccessLog(l)
	h := mw(func(context.Context, any) (any, error) { return nil, nil })
	for i := range maxPrefixes + 10 {
		buf.Reset()
		c := transport.Call{Service: "svc", Endpoint: fmt.Sprintf("topic.%d", i), Kind: transport.NATS}
		_, _ = h(transport.NewCallContext(context.Background(), &c), nil)
		want := fmt.Sprintf("level=INFO msg=access service=svc endpoint=topic.%d transport=nats side=server code=ok\n", i)
		if buf.String() != want {
			t.Fatalf("line %d: %q, want %q", i, buf.String(), want)
		}
		_ = pre.handler(prefixKey{service: "svc", endpoint: c.Endpoint, kind: c.Kind, side: "server"})
	}
	if n := pre.n.Load(); n != maxPrefixes {
		t.Errorf("%d handlers kept, want %d", n, maxPrefixes)
	}
	n := 0
	pre.m.Range(func(any, any) bool { n++; return true })
	if n != maxPrefixes {
		t.Errorf("%d handlers in the map, want %d", n, maxPrefixes)
	}
	if pre.handler(prefixKey{service: "svc", endpoint: "topic.0", kind: transport.NATS, side: "server"}) == nil {
		t.Error("an endpoint kept before the bound has no handler")
	}
	if pre.handler(prefixKey{service: "svc", endpoint: fmt.Sprint("topic.", maxPrefixes+5), kind: transport.NATS, side: "server"}) != nil {
		t.Error("an endpoint past the bound has a handler")
	}
}
