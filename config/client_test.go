package config_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

var backEcho = transport.Endpoint[echoMsg, echoMsg]{Service: "back", Name: "Echo"}

// backRegister registers back's Echo, which appends ">back" and calls
// seen (if not nil) with its context.
func backRegister(seen func(context.Context)) func(*ferry.Service, *server.Server) {
	return func(_ *ferry.Service, srv *server.Server) {
		server.Register(srv, backEcho, func(ctx context.Context, m *echoMsg) (*echoMsg, error) {
			if seen != nil {
				seen(ctx)
			}
			return &echoMsg{Text: m.Text + ">back"}, nil
		})
	}
}

// startNATS starts a NATS server with JetStream for the test and returns
// its URL.
func startNATS(t *testing.T) string {
	t.Helper()
	ns, err := natsembed.Start(ferrytest.Context(t), natsembed.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

// Issue #12: a service built from configuration calls another through
// config.Client — found in the NATS registry, over the transport the
// configuration prefers — and the trace goes on across the hop; when the
// callee turns gRPC off by configuration alone, calls go on over NATS.
func TestClientFromConfig(t *testing.T) {
	natsURL := startNATS(t)
	traces := make(chan string, 4)
	backRegister := backRegister(func(ctx context.Context) {
		traces <- trace.SpanContextFromContext(ctx).TraceID().String()
	})
	// back: gRPC only.
	back := startConfigured(t, backRegister, "FERRY_SERVICE_NAME", "back", "FERRY_ADMIN_ENABLED", "false",
		"FERRY_TRANSPORTS_HTTP_ENABLED", "false", "FERRY_TRANSPORTS_NATS_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ADDR", "127.0.0.1:0",
		"FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats", "FERRY_REGISTRY_NATS_TTL", "2s",
		"FERRY_TELEMETRY_SAMPLER", "always_on")

	front := startConfigured(t, func(svc *ferry.Service, srv *server.Server) {
		calls := config.Client(svc)
		server.Handle(srv, "Relay", func(ctx context.Context, m *echoMsg) (*echoMsg, error) {
			traces <- trace.SpanContextFromContext(ctx).TraceID().String()
			return backEcho.Call(ctx, calls, m)
		})
	}, "FERRY_SERVICE_NAME", "front", "FERRY_ADMIN_ENABLED", "false",
		"FERRY_TRANSPORTS_GRPC_ENABLED", "false", "FERRY_TRANSPORTS_NATS_ENABLED", "false", "FERRY_TRANSPORTS_HTTP_ADDR", "127.0.0.1:0",
		"FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats", "FERRY_REGISTRY_NATS_TTL", "2s",
		"FERRY_CLIENT_TRANSPORTS", "grpc,nats", "FERRY_TELEMETRY_SAMPLER", "always_on")

	addr, _ := front.Addr("http")
	c, err := fhttp.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ferrytest.Context(t)
	relay := transport.Endpoint[echoMsg, echoMsg]{Service: "front", Name: "Relay"}
	got, err := relay.Call(ctx, c, &echoMsg{Text: "hi"})
	if err != nil || got.Text != "hi>back" {
		t.Fatalf("Relay over config.Client = %v, %v", got, err)
	}
	if f, b := <-traces, <-traces; f != b || f == (trace.TraceID{}).String() {
		t.Errorf("front's trace %s, back's %s: want one trace across the hop", f, b)
	}

	// The callee turns gRPC off and serves over NATS instead: configuration
	// only, no code changes on either side.
	if err := back.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	_ = back
	startConfigured(t, backRegister, "FERRY_SERVICE_NAME", "back", "FERRY_ADMIN_ENABLED", "false",
		"FERRY_TRANSPORTS_HTTP_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ENABLED", "false",
		"FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats", "FERRY_REGISTRY_NATS_TTL", "2s")
	ferrytest.Eventually(t, "calls go on over NATS", func() bool {
		got, err := relay.Call(ctx, c, &echoMsg{Text: "again"})
		for len(traces) > 0 {
			<-traces
		}
		return err == nil && got.Text == "again>back"
	})
}

// TestPerServiceClients (issue #12): clients.<service> replaces client's
// settings for calls to that service only — here its transport and its
// default deadline.
func TestPerServiceClients(t *testing.T) {
	natsURL := startNATS(t)
	type seen struct {
		kind transport.Kind
		left time.Duration
	}
	calls := make(chan seen, 4)
	startConfigured(t, backRegister(func(ctx context.Context) {
		call, _ := transport.CallFromContext(ctx)
		d, _ := ctx.Deadline()
		calls <- seen{call.Kind, time.Until(d)}
	}), "FERRY_SERVICE_NAME", "back", "FERRY_ADMIN_ENABLED", "false", "FERRY_TRANSPORTS_HTTP_ENABLED", "false",
		"FERRY_TRANSPORTS_GRPC_ADDR", "127.0.0.1:0", "FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats")
	front := func(kv ...string) transport.Client {
		return config.Client(startConfigured(t, register, append([]string{"FERRY_SERVICE_NAME", "front", "FERRY_ADMIN_ENABLED", "false",
			"FERRY_TRANSPORTS_GRPC_ENABLED", "false", "FERRY_TRANSPORTS_NATS_ENABLED", "false", "FERRY_TRANSPORTS_HTTP_ADDR", "127.0.0.1:0",
			"FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats", "FERRY_CLIENT_TRANSPORTS", "grpc",
			"FERRY_CLIENT_TIMEOUT", "50s"}, kv...)...))
	}
	// No deadline of its own, so the client's default timeout applies.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	call := func(c transport.Client) seen {
		t.Helper()
		ferrytest.Eventually(t, "back called", func() bool {
			_, err := backEcho.Call(ctx, c, &echoMsg{Text: "x"})
			return err == nil
		})
		var s seen
		for len(calls) > 0 {
			s = <-calls
		}
		return s
	}
	// Timeouts far apart and long, so that a busy machine cannot blur them.
	if s := call(front()); s.kind != transport.GRPC || s.left <= 20*time.Second || s.left > 50*time.Second {
		t.Errorf("with client: only, back was called over %s with %v left, want grpc and client.timeout (50s)", s.kind, s.left)
	}
	if s := call(front("FERRY_CLIENTS", `{"back": {"transports": ["nats"], "timeout": "20s"}}`)); s.kind != transport.NATS || s.left > 20*time.Second || s.left <= 0 {
		t.Errorf("with clients.back, back was called over %s with %v left, want nats and at most clients.back.timeout (20s)", s.kind, s.left)
	}
}

// client.grpc_compression compresses the requests of the service's gRPC
// calls, and clients.<service>.grpc_compression overrides it (identity:
// none).
func TestClientGRPCCompression(t *testing.T) {
	natsURL := startNATS(t)
	seen := make(chan string, 4)
	startConfigured(t, backRegister(func(ctx context.Context) {
		enc := "unknown"
		if s, ok := grpc.ServerTransportStreamFromContext(ctx).(interface{ RecvCompress() string }); ok {
			enc = s.RecvCompress()
		}
		seen <- enc
	}), "FERRY_SERVICE_NAME", "back", "FERRY_ADMIN_ENABLED", "false", "FERRY_TRANSPORTS_HTTP_ENABLED", "false",
		"FERRY_TRANSPORTS_NATS_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ADDR", "127.0.0.1:0", "FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats")
	front := func(kv ...string) transport.Client {
		return config.Client(startConfigured(t, register, append([]string{"FERRY_SERVICE_NAME", "front", "FERRY_ADMIN_ENABLED", "false",
			"FERRY_TRANSPORTS_GRPC_ENABLED", "false", "FERRY_TRANSPORTS_NATS_ENABLED", "false", "FERRY_TRANSPORTS_HTTP_ADDR", "127.0.0.1:0",
			"FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats", "FERRY_CLIENT_TRANSPORTS", "grpc"}, kv...)...))
	}
	ctx := ferrytest.Context(t)
	call := func(c transport.Client) string {
		t.Helper()
		ferrytest.Eventually(t, "back called", func() bool {
			_, err := backEcho.Call(ctx, c, &echoMsg{Text: "x"})
			return err == nil
		})
		var enc string
		for len(seen) > 0 {
			enc = <-seen
		}
		return enc
	}
	for _, tc := range []struct {
		name string
		kv   []string
		want string
	}{
		{"default", nil, ""},
		{"client.grpc_compression", []string{"FERRY_CLIENT_GRPC_COMPRESSION", "gzip"}, "gzip"},
		{"clients.back.grpc_compression", []string{"FERRY_CLIENTS", `{"back": {"grpc_compression": "gzip"}}`}, "gzip"},
		{"clients.back overrides client", []string{"FERRY_CLIENT_GRPC_COMPRESSION", "gzip", "FERRY_CLIENTS", `{"back": {"grpc_compression": "identity"}}`}, ""},
	} {
		if got := call(front(tc.kv...)); got != tc.want {
			t.Errorf("%s: back received a request in grpc-encoding %q, want %q", tc.name, got, tc.want)
		}
	}
}
