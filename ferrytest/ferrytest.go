// Package ferrytest is Ferry's test kit: an embedded NATS server per test, a
// way to run a service on HTTP, gRPC and NATS at once on loopback ports, and
// the conformance suites that every transport (Conformance), registry
// (RegistryConformance and its read-only and TTL parts) and broker
// (BrokerConformance) — built in or plug-in — must pass, and the gateway
// suite (GatewayConformance) run on each catalogue the gateway can follow.
//
//	func TestGreeter(t *testing.T) {
//		srv := server.New("greeter")
//		server.Handle(srv, "Hello", Hello)
//		inst := ferrytest.Start(t, srv)
//		reply, err := transport.Invoke[HelloRequest, HelloReply](ctx, inst.GRPC, "greeter", "Hello", &HelloRequest{Name: "Ada"})
//		...
//	}
//
// Everything started here is stopped by t.Cleanup.
package ferrytest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ferry-go/ferry/natsembed"
	"github.com/nats-io/nats.go"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// NATS starts an embedded NATS server (JetStream enabled, on a random
// loopback port) for the rest of the test.
func NATS(t testing.TB) *natsembed.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := natsembed.Start(ctx, natsembed.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("ferrytest: start embedded NATS: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Connect connects to the NATS server at url for the rest of the test.
func Connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("ferrytest: connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}
