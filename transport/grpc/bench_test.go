package grpc_test

import (
	"context"
	"net"
	"runtime"
	"testing"

	"github.com/ferry-go/ferry/server"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// parallel64 runs body from about 64 goroutines, the load the project's
// throughput target is stated for.
func parallel64(b *testing.B, body func()) {
	b.ReportAllocs()
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body()
		}
	})
}

func echo(_ context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	return wrapperspb.String("Hello, " + req.GetValue() + "!"), nil
}

// BenchmarkRawGRPC is the baseline: grpc-go alone serving the same handler.
func BenchmarkRawGRPC(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	gs.RegisterService(&grpc.ServiceDesc{
		ServiceName: "greeter.Greeter",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Echo", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			req := new(wrapperspb.StringValue)
			if err := dec(req); err != nil {
				return nil, err
			}
			return echo(ctx, req)
		}}},
	}, nil)
	go gs.Serve(lis)
	defer gs.Stop()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	ctx := context.Background()
	parallel64(b, func() {
		if err := cc.Invoke(ctx, "/greeter.Greeter/Echo", wrapperspb.String("Ada"), new(wrapperspb.StringValue)); err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkFerry is the same workload through the Ferry server and client.
func BenchmarkFerry(b *testing.B) {
	s := server.New("greeter", server.WithLogger(quietLogger()))
	server.Handle(s, "Echo", echo)
	tr := fgrpc.NewServer("127.0.0.1:0")
	if err := tr.Start(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	defer tr.Stop(context.Background())
	c, err := fgrpc.NewClient(tr.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	parallel64(b, func() {
		if err := c.Invoke(ctx, "greeter", "Echo", wrapperspb.String("Ada"), new(wrapperspb.StringValue)); err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkFerryPlainStructs is BenchmarkFerry with plain Go structs, which
// travel through codec/protostruct.
func BenchmarkFerryPlainStructs(b *testing.B) {
	s := server.New("greeter", server.WithLogger(quietLogger()))
	server.Handle(s, "Hello", func(_ context.Context, req *HelloRequest) (*HelloReply, error) {
		return &HelloReply{Message: "Hello, " + req.Name + "!"}, nil
	})
	tr := fgrpc.NewServer("127.0.0.1:0")
	if err := tr.Start(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	defer tr.Stop(context.Background())
	c, err := fgrpc.NewClient(tr.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	parallel64(b, func() {
		if err := c.Invoke(ctx, "greeter", "Hello", &HelloRequest{Name: "Ada"}, new(HelloReply)); err != nil {
			b.Error(err)
		}
	})
}
