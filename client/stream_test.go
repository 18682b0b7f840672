package client_test

import (
	"context"
	"testing"

	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry/memory"
	"github.com/ferry-go/ferry/transport"
)

var count = transport.StreamEndpoint[EchoRequest, EchoReply]{Service: "echo", Name: "Count", Kind: transport.ServerStreaming}

func TestStreamThroughClient(t *testing.T) {
	reg := memory.New()
	a := start(t, reg, "echo", "grpc", &backend{id: "a"})
	c := newClient(t, reg, client.WithTransports("grpc"))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	rs, err := count.OpenServer(ctx, c, &EchoRequest{N: 5})
	if err != nil {
		t.Fatalf("open Count: %v", err)
	}
	n := 0
	for m, err := range rs.All() {
		if err != nil || m.N != n || m.Instance != "a" {
			t.Fatalf("message %d = %+v, %v", n, m, err)
		}
		n++
	}
	if n != 5 || a.hits.Load() != 1 {
		t.Errorf("got %d messages from %d stream(s), want 5 from 1", n, a.hits.Load())
	}
}

// Opening picks again when the instance picked is gone; every stream opens
// on the live one.
func TestStreamOpenSkipsDeadInstance(t *testing.T) {
	reg := memory.New()
	dead := start(t, reg, "echo", "grpc", &backend{id: "dead"})
	dead.stop()
	live := start(t, reg, "echo", "grpc", &backend{id: "live"})
	c := newClient(t, reg, client.WithTransports("grpc"))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for i := range 20 {
		rs, err := count.OpenServer(ctx, c, &EchoRequest{N: 1})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		m, err := rs.Recv()
		if err != nil {
			// gRPC reports an unreachable instance at the first Recv, after
			// the open: that stream fails; the instance is ejected for the
			// next ones.
			if errs.CodeOf(err) != errs.Unavailable {
				t.Fatalf("stream %d: %v, want unavailable if anything", i, err)
			}
			continue
		}
		if m.Instance != "live" {
			t.Fatalf("stream %d answered by %q", i, m.Instance)
		}
		_ = rs.Close()
	}
	if live.hits.Load() < 15 {
		t.Errorf("the live instance served %d of 20 streams; the dead one was not ejected", live.hits.Load())
	}
}

func TestStreamRefusesGRPCFullName(t *testing.T) {
	c := newClient(t, memory.New())
	_, err := c.NewStream(context.Background(), "grpc.health.v1.Health", "Watch", transport.ServerStreaming)
	if errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("NewStream(full gRPC name) = %v, want invalid_argument", err)
	}
}
