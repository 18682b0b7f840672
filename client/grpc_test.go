package client_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	"google.golang.org/grpc"
)

// recvCompress is the grpc-encoding of the request being served in ctx,
// as grpc-go's server stream knows it ("" for none).
func recvCompress(ctx context.Context) string {
	if s, ok := grpc.ServerTransportStreamFromContext(ctx).(interface{ RecvCompress() string }); ok {
		return s.RecvCompress()
	}
	return "unknown"
}

// WithGRPCOptions reaches the gRPC client of every instance: with
// fgrpc.WithCompression the requests arrive gzip-compressed.
func TestGRPCOptions(t *testing.T) {
	reg := newMemory()
	seen := make(chan string, 4)
	srv := server.New("zip", server.WithLogger(slog.New(slog.DiscardHandler)))
	server.Handle(srv, "Echo", func(ctx context.Context, r *EchoRequest) (*EchoReply, error) {
		seen <- recvCompress(ctx)
		return &EchoReply{N: r.N}, nil
	})
	tr := fgrpc.NewServer("127.0.0.1:0")
	ctx := ctxT(t)
	if err := tr.Start(ctx, srv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Stop(context.Background()) })
	_, addr, _ := tr.Advertise()
	if err := reg.Register(ctx, registry.Instance{ID: "z1", Service: "zip", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: addr}}}); err != nil {
		t.Fatal(err)
	}
	call := transport.Endpoint[EchoRequest, EchoReply]{Service: "zip", Name: "Echo"}
	for _, tc := range []struct {
		name string
		opts []client.Option
		want string
	}{
		{"gzip", []client.Option{client.WithGRPCOptions(fgrpc.WithCompression("gzip"))}, "gzip"},
		{"none", nil, ""},
	} {
		c := newClient(t, reg, append(tc.opts, client.WithTransports("grpc"))...)
		if r, err := call.Call(ctx, c, &EchoRequest{N: 3}); err != nil || r.N != 3 {
			t.Fatalf("%s: Call() = %+v, %v", tc.name, r, err)
		}
		if got := <-seen; got != tc.want {
			t.Errorf("%s: the server received a request in grpc-encoding %q, want %q", tc.name, got, tc.want)
		}
	}
	_, err := client.New(reg, client.WithGRPCOptions(fgrpc.WithCompression("nope")))
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("client.New(WithGRPCOptions(WithCompression(nope))) = %v, want an error naming it", err)
	}
}

// A fully qualified gRPC service name, which transport/grpc's Client
// calls, is no registry's: InvalidArgument saying so, without a look-up.
func TestFullGRPCNameRefused(t *testing.T) {
	d := &counting{Discovery: newMemory()}
	c := newClient(t, d)
	_, err := echo(ctxT(t), c, "grpc.health.v1.Health", 1)
	if errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), `"grpc.health.v1.Health" is a fully qualified gRPC service name`) {
		t.Errorf("Call(grpc.health.v1.Health) = %v, want invalid_argument naming it a gRPC service name", err)
	}
	if n, m := d.lookups.Load(), d.watches.Load(); n+m != 0 {
		t.Errorf("the registry was asked %d times, want never", n+m)
	}
}
