package grpc_test

import (
	"context"
	"io"
	"testing"

	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type tick struct {
	N int64 `json:"n"`
}

func streamServer(t *testing.T) *fgrpc.Server {
	s := server.New("ticker", server.WithLogger(quietLogger()))
	server.HandleServerStream(s, "Ticks", func(_ context.Context, r *tick, out server.Sender[tick]) error {
		for i := range r.N {
			if err := out.Send(&tick{N: i}); err != nil {
				return err
			}
		}
		return nil
	})
	server.HandleClientStream(s, "Total", func(_ context.Context, in server.Receiver[tick]) (*tick, error) {
		var sum tick
		for m, err := range in.All() {
			if err != nil {
				return nil, err
			}
			sum.N += m.N
		}
		return &sum, nil
	})
	// Shout takes generated messages, as a handler of a .proto contract
	// does, and sets a trailer.
	server.HandleBidiStream(s, "Shout", func(ctx context.Context, st server.Stream[wrapperspb.StringValue, wrapperspb.StringValue]) error {
		n := 0
		for m, err := range st.All() {
			if err != nil {
				return err
			}
			n++
			if err := st.Send(wrapperspb.String(m.GetValue() + "!")); err != nil {
				return err
			}
		}
		c, _ := transport.CallFromContext(ctx)
		c.SetTrailer("x-count", string(rune('0'+n)))
		return nil
	})
	server.Handle(s, "Once", func(ctx context.Context, r *wrapperspb.Int64Value) (*wrapperspb.Int64Value, error) {
		c, _ := transport.CallFromContext(ctx)
		c.SetTrailer("x-unary-trailer", "yes")
		return r, nil
	})
	return start(t, s)
}

// Reflection describes each method with its streaming flags, so grpcurl
// and generated clients see the right shape.
func TestStreamReflection(t *testing.T) {
	tr := streamServer(t)
	_, files, err := reflectV1(testContext(t), rawConn(t, tr), "ticker.Ticker")
	if err != nil || len(files) == 0 {
		t.Fatalf("reflection: %v (%d files)", err, len(files))
	}
	var fdp descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(files[0], &fdp); err != nil {
		t.Fatal(err)
	}
	fd, err := protodesc.NewFile(&fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatalf("descriptor: %v", err)
	}
	sd := fd.Services().ByName("Ticker")
	for _, tc := range []struct {
		name           string
		client, server bool
	}{{"Ticks", false, true}, {"Total", true, false}, {"Shout", true, true}, {"Once", false, false}} {
		m := sd.Methods().ByName(protoreflect.Name(tc.name))
		if m == nil || m.IsStreamingClient() != tc.client || m.IsStreamingServer() != tc.server {
			t.Errorf("%s: described as %v (client streaming %v, server streaming %v), want %v, %v",
				tc.name, m, m != nil && m.IsStreamingClient(), m != nil && m.IsStreamingServer(), tc.client, tc.server)
		}
	}
}

// A plain grpc-go stream with grpc-go's own codec — what a client generated
// from the .proto does — talks to a Ferry bidi handler, trailer included.
func TestStreamFromPlainGRPCClient(t *testing.T) {
	tr := streamServer(t)
	cc := rawConn(t, tr)
	desc := &grpc.StreamDesc{StreamName: "Shout", ServerStreams: true, ClientStreams: true}
	cs, err := cc.NewStream(testContext(t), desc, "/ticker.Ticker/Shout")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"a", "b", "c"} {
		if err := cs.SendMsg(wrapperspb.String(w)); err != nil {
			t.Fatal(err)
		}
		var got wrapperspb.StringValue
		if err := cs.RecvMsg(&got); err != nil || got.GetValue() != w+"!" {
			t.Fatalf("Shout(%s) = %q, %v", w, got.GetValue(), err)
		}
	}
	if err := cs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := cs.RecvMsg(new(wrapperspb.StringValue)); err != io.EOF {
		t.Fatalf("end = %v, want io.EOF", err)
	}
	if got := cs.Trailer().Get("x-count"); len(got) != 1 || got[0] != "3" {
		t.Errorf("trailer x-count = %v, want [3]", got)
	}
}

// A unary handler's trailer goes out as a gRPC trailer.
func TestUnaryTrailer(t *testing.T) {
	tr := streamServer(t)
	var trl metadata.MD
	c := dial(t, tr)
	ctx := testContext(t)
	var reply transport.Metadata
	if _, err := transport.Invoke[wrapperspb.Int64Value, wrapperspb.Int64Value](transport.CaptureReply(ctx, &reply), c, "ticker", "Once", wrapperspb.Int64(1)); err != nil {
		t.Fatal(err)
	}
	if reply.Get("x-unary-trailer") != "yes" {
		t.Errorf("Ferry client reply metadata = %v, want the trailer merged in", reply)
	}
	var out wrapperspb.Int64Value
	err := rawConn(t, tr).Invoke(ctx, "/ticker.Ticker/Once", wrapperspb.Int64(1), &out, grpc.Trailer(&trl))
	if err != nil || len(trl.Get("x-unary-trailer")) != 1 {
		t.Errorf("raw call trailer = %v, %v; want x-unary-trailer", trl, err)
	}
}

// The Ferry client's typed streams, both kinds the suite in ferrytest
// covers at length, on their shortest path.
func TestStreamClient(t *testing.T) {
	tr := streamServer(t)
	c := dial(t, tr)
	ctx := testContext(t)
	ticks := transport.StreamEndpoint[tick, tick]{Service: "ticker", Name: "Ticks", Kind: transport.ServerStreaming}
	rs, err := ticks.OpenServer(ctx, c, &tick{N: 5})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for m, err := range rs.All() {
		if err != nil || m.N != n {
			t.Fatalf("tick %d = %v, %v", n, m, err)
		}
		n++
	}
	total := transport.StreamEndpoint[tick, tick]{Service: "ticker", Name: "Total", Kind: transport.ClientStreaming}
	up, err := total.Open(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(4) {
		if err := up.Send(&tick{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	if sum, err := up.CloseAndRecv(); err != nil || sum.N != 6 {
		t.Errorf("Total(0..3) = %v, %v; want 6", sum, err)
	}
	if err := up.Send(&tick{}); err != transport.ErrStreamClosed {
		t.Errorf("Send after CloseAndRecv = %v, want ErrStreamClosed", err)
	}
}
