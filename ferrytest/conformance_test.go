package ferrytest_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	for _, tr := range ferrytest.Transports() {
		t.Run(tr.Name, func(t *testing.T) { ferrytest.Conformance(t, tr) })
	}
}

type ping struct {
	N int `json:"n"`
}

func TestStartServesAllTransports(t *testing.T) {
	srv := server.New("pinger")
	server.Handle(srv, "Ping", func(_ context.Context, p *ping) (*ping, error) { return &ping{N: p.N + 1}, nil })
	inst := ferrytest.Start(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, c := range map[string]transport.Client{"http": inst.HTTP, "grpc": inst.GRPC, "nats": inst.NATS} {
		got, err := transport.Invoke[ping, ping](ctx, c, "pinger", "Ping", &ping{N: 41})
		if err != nil || got.N != 42 {
			t.Errorf("%s: Ping(41) = %v, %v, want 42", name, got, err)
		}
	}
}

func TestStreamConformance(t *testing.T) {
	// The HTTP transport twice: server streams as NDJSON, then as
	// Server-Sent Events.
	for _, tr := range append(ferrytest.Transports(), ferrytest.HTTPSSE()) {
		t.Run(tr.Name, func(t *testing.T) { ferrytest.StreamConformance(t, tr) })
	}
}
