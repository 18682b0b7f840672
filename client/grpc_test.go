package client_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
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

// A service implementing a protobuf contract is served over gRPC under the
// contract's name; its registry entry says so, and client.Client calls it
// there by its Ferry name.
func TestContractServiceThroughClient(t *testing.T) {
	reg := newMemory()
	sd := testpb.File_grpc_testing_test_proto.Services().ByName("TestService")
	srv := server.New("testing", server.WithLogger(slog.New(slog.DiscardHandler)), server.WithProtoService(sd))
	server.Handle(srv, "UnaryCall", func(_ context.Context, r *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		return &testpb.SimpleResponse{Username: "n=" + strconv.Itoa(int(r.GetResponseSize()))}, nil
	})
	server.HandleServerStream(srv, "StreamingOutputCall", func(_ context.Context, r *testpb.StreamingOutputCallRequest, out server.Sender[testpb.StreamingOutputCallResponse]) error {
		for range r.GetResponseParameters() {
			if err := out.Send(&testpb.StreamingOutputCallResponse{}); err != nil {
				return err
			}
		}
		return nil
	})
	tr := fgrpc.NewServer("127.0.0.1:0")
	ctx := ctxT(t)
	if err := tr.Start(ctx, srv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Stop(context.Background()) })
	md, err := registry.Describe(srv)
	if err != nil || md[registry.MetadataGRPCService] != "grpc.testing.TestService" {
		t.Fatalf("Describe = %v, %v; want %s set", md, err, registry.MetadataGRPCService)
	}
	_, addr, _ := tr.Advertise()
	if err := reg.Register(ctx, registry.Instance{ID: "t1", Service: "testing", Metadata: md,
		Endpoints: []registry.Endpoint{{Transport: "grpc", Address: addr}}}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, reg, client.WithTransports("grpc"))
	got, err := transport.Invoke[testpb.SimpleRequest, testpb.SimpleResponse](ctx, c, "testing", "UnaryCall", &testpb.SimpleRequest{ResponseSize: 4})
	if err != nil || got.GetUsername() != "n=4" {
		t.Fatalf("UnaryCall through client.Client = %v, %v", got, err)
	}
	st := transport.StreamEndpoint[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]{Service: "testing", Name: "StreamingOutputCall", Kind: transport.ServerStreaming}
	rs, err := st.OpenServer(ctx, c, &testpb.StreamingOutputCallRequest{ResponseParameters: make([]*testpb.ResponseParameters, 3)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range rs.All() {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		n++
	}
	if n != 3 {
		t.Errorf("stream gave %d replies, want 3", n)
	}
}
