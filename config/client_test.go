package config_test

import (
	"context"
	"testing"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"go.opentelemetry.io/otel/trace"
)

var backEcho = transport.Endpoint[echoMsg, echoMsg]{Service: "back", Name: "Echo"}

// Issue #12: a service built from configuration calls another through
// config.Client — found in the NATS registry, over the transport the
// configuration prefers — and the trace goes on across the hop; when the
// callee turns gRPC off by configuration alone, calls go on over NATS.
func TestClientFromConfig(t *testing.T) {
	ns, err := natsembed.Start(ferrytest.Context(t), natsembed.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	natsURL := ns.ClientURL()
	traces := make(chan string, 4)
	backRegister := func(_ *ferry.Service, srv *server.Server) {
		server.Register(srv, backEcho, func(ctx context.Context, m *echoMsg) (*echoMsg, error) {
			traces <- trace.SpanContextFromContext(ctx).TraceID().String()
			return &echoMsg{Text: m.Text + ">back"}, nil
		})
	}
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
