package bench_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The stream workload: one server stream of b.N small messages (the
// request says how many), received in order by one reader. ns/op is per
// message; msgs/s is reported beside it.

// rawStreamDesc is a server-streaming method as protoc-gen-go-grpc would
// describe it, sending wrapperspb.StringValue messages.
var rawStreamDesc = grpc.ServiceDesc{
	ServiceName: "bench.Raw",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Count",
		ServerStreams: true,
		Handler: func(_ any, ss grpc.ServerStream) error {
			var n wrapperspb.Int64Value
			if err := ss.RecvMsg(&n); err != nil {
				return err
			}
			m := wrapperspb.String(payload.Text)
			for range n.GetValue() {
				if err := ss.SendMsg(m); err != nil {
					return err
				}
			}
			return nil
		},
	}},
}

func streamServer() *server.Server {
	s := server.New("bench")
	server.HandleServerStream(s, "Count", func(_ context.Context, n *wrapperspb.Int64Value, out server.Sender[wrapperspb.StringValue]) error {
		m := wrapperspb.String(payload.Text)
		for range n.GetValue() {
			if err := out.Send(m); err != nil {
				return err
			}
		}
		return nil
	})
	server.HandleServerStream(s, "CountStruct", func(_ context.Context, n *Msg, out server.Sender[Msg]) error {
		for range n.Num {
			if err := out.Send(payload); err != nil {
				return err
			}
		}
		return nil
	})
	return s
}

// receive runs one stream of b.N messages and reports msgs/s.
func receive(b *testing.B, recv func(n int) error) {
	b.ReportAllocs()
	b.ResetTimer()
	if err := recv(b.N); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkStreamGRPC(b *testing.B) {
	b.Run("raw", func(b *testing.B) {
		cc := serveRawGRPC(b, &rawStreamDesc)
		receive(b, func(n int) error {
			cs, err := cc.NewStream(context.Background(), &rawStreamDesc.Streams[0], "/bench.Raw/Count")
			if err != nil {
				return err
			}
			if err := cs.SendMsg(wrapperspb.Int64(int64(n))); err != nil {
				return err
			}
			if err := cs.CloseSend(); err != nil {
				return err
			}
			return drain(n, func() error {
				var m wrapperspb.StringValue
				return cs.RecvMsg(&m)
			})
		})
	})
	b.Run("ferry", func(b *testing.B) {
		c := startStreamGRPC(b)
		ep := transport.StreamEndpoint[wrapperspb.Int64Value, wrapperspb.StringValue]{Service: "bench", Name: "Count", Kind: transport.ServerStreaming}
		receive(b, func(n int) error {
			rs, err := ep.OpenServer(context.Background(), c, wrapperspb.Int64(int64(n)))
			if err != nil {
				return err
			}
			return drain(n, func() error { _, err := rs.Recv(); return err })
		})
	})
	b.Run("ferry-struct", func(b *testing.B) {
		c := startStreamGRPC(b)
		ep := transport.StreamEndpoint[Msg, Msg]{Service: "bench", Name: "CountStruct", Kind: transport.ServerStreaming}
		receive(b, func(n int) error {
			rs, err := ep.OpenServer(context.Background(), c, &Msg{Num: int64(n)})
			if err != nil {
				return err
			}
			return drain(n, func() error { _, err := rs.Recv(); return err })
		})
	})
}

func startStreamGRPC(b *testing.B) *fgrpc.Client {
	t := fgrpc.NewServer("127.0.0.1:0")
	serve(b, t, streamServer())
	c, err := fgrpc.NewClient(t.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// drain receives n messages with recv and then the clean end.
func drain(n int, recv func() error) error {
	for i := range n {
		if err := recv(); err != nil {
			return fmt.Errorf("message %d of %d: %w", i, n, err)
		}
	}
	if err := recv(); err != io.EOF {
		return fmt.Errorf("end of stream = %v, want io.EOF", err)
	}
	return nil
}

// BenchmarkStreamNATS and BenchmarkStreamHTTP: the same server stream over
// Ferry's NATS stream protocol (credits, an embedded nats-server in the
// process) and over HTTP as Server-Sent Events and as NDJSON. There is no
// raw library row: neither nats.go nor net/http has streams of its own.
func BenchmarkStreamNATS(b *testing.B) {
	url := startNATS(b)
	t := fnats.NewServer(connect(b, url))
	serve(b, t, streamServer())
	c := fnats.NewClient(connect(b, url))
	b.Cleanup(func() { _ = c.Close() })
	benchFerryStream(b, c)
}

func BenchmarkStreamHTTP(b *testing.B) {
	for _, f := range []struct {
		name   string
		format fhttp.StreamFormat
	}{{"sse", fhttp.SSE}, {"ndjson", fhttp.NDJSON}} {
		b.Run(f.name, func(b *testing.B) {
			t := fhttp.NewServer("127.0.0.1:0")
			serve(b, t, streamServer())
			c, err := fhttp.NewClient("http://"+t.Addr().String(), fhttp.WithStreamFormat(f.format))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = c.Close() })
			benchFerryStream(b, c)
		})
	}
}

// benchFerryStream receives one stream of b.N JSON messages (Msg) through c.
func benchFerryStream(b *testing.B, c transport.Client) {
	ep := transport.StreamEndpoint[Msg, Msg]{Service: "bench", Name: "CountStruct", Kind: transport.ServerStreaming}
	receive(b, func(n int) error {
		rs, err := ep.OpenServer(context.Background(), c, &Msg{Num: int64(n)})
		if err != nil {
			return err
		}
		return drain(n, func() error { _, err := rs.Recv(); return err })
	})
}
