package grpc_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

var testService = testpb.File_grpc_testing_test_proto.Services().ByName("TestService")

// contractServer implements grpc.testing.TestService — the contract of
// grpc-go's interop tests, with its generated types — as Ferry endpoints.
func contractServer(t *testing.T) *server.Server {
	s := server.New("testing", server.WithLogger(quietLogger()), server.WithProtoService(testService))
	server.Handle(s, "EmptyCall", func(context.Context, *testpb.Empty) (*testpb.Empty, error) { return &testpb.Empty{}, nil })
	server.Handle(s, "UnaryCall", func(ctx context.Context, r *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		c, _ := transport.CallFromContext(ctx)
		c.Reply.Set("x-header", "h:"+c.Request.Get("x-in"))
		c.SetTrailer("x-trailer", "t")
		return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: bytes.Repeat([]byte{'u'}, int(r.GetResponseSize()))}}, nil
	})
	server.HandleServerStream(s, "StreamingOutputCall", func(_ context.Context, r *testpb.StreamingOutputCallRequest, out server.Sender[testpb.StreamingOutputCallResponse]) error {
		for _, p := range r.GetResponseParameters() {
			if err := out.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
				return err
			}
		}
		return nil
	})
	server.HandleClientStream(s, "StreamingInputCall", func(_ context.Context, in server.Receiver[testpb.StreamingInputCallRequest]) (*testpb.StreamingInputCallResponse, error) {
		var total int32
		for m, err := range in.All() {
			if err != nil {
				return nil, err
			}
			total += int32(len(m.GetPayload().GetBody()))
		}
		return &testpb.StreamingInputCallResponse{AggregatedPayloadSize: total}, nil
	})
	server.HandleBidiStream(s, "FullDuplexCall", func(_ context.Context, st server.Stream[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
		for m, err := range st.All() {
			if err != nil {
				return err
			}
			for _, p := range m.GetResponseParameters() {
				if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return s
}

// A client generated from grpc/testing/test.proto calls the Ferry handlers
// unchanged: unary, server, client and bidi streams, with headers and
// trailers; methods without a handler are Unimplemented.
func TestContractServedUnderItsName(t *testing.T) {
	tr := start(t, contractServer(t))
	cc := rawConn(t, tr)
	tc := testpb.NewTestServiceClient(cc)
	ctx := testContext(t)

	var hdr, trl metadata.MD
	resp, err := tc.UnaryCall(metadata.AppendToOutgoingContext(ctx, "x-in", "v"), &testpb.SimpleRequest{ResponseSize: 5}, grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil || len(resp.GetPayload().GetBody()) != 5 {
		t.Fatalf("UnaryCall = %v, %v", resp, err)
	}
	if got := hdr.Get("x-header"); len(got) != 1 || got[0] != "h:v" {
		t.Errorf("header x-header = %v, want h:v", got)
	}
	if got := trl.Get("x-trailer"); len(got) != 1 || got[0] != "t" {
		t.Errorf("trailer x-trailer = %v, want t", got)
	}
	if _, err := tc.EmptyCall(ctx, &testpb.Empty{}); err != nil {
		t.Errorf("EmptyCall: %v", err)
	}

	out, err := tc.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 1}, {Size: 2}, {Size: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; ; i++ {
		m, err := out.Recv()
		if err == io.EOF {
			if i != 4 {
				t.Errorf("StreamingOutputCall ended after %d replies, want 3", i-1)
			}
			break
		}
		if err != nil || len(m.GetPayload().GetBody()) != i {
			t.Fatalf("StreamingOutputCall reply %d = %v, %v", i, m, err)
		}
	}

	in, err := tc.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{3, 4, 5} {
		if err := in.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, n)}}); err != nil {
			t.Fatal(err)
		}
	}
	if sum, err := in.CloseAndRecv(); err != nil || sum.GetAggregatedPayloadSize() != 12 {
		t.Errorf("StreamingInputCall = %v, %v; want 12", sum, err)
	}

	dup, err := tc.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int32{7, 8} {
		if err := dup.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: n}}}); err != nil {
			t.Fatal(err)
		}
		if m, err := dup.Recv(); err != nil || int32(len(m.GetPayload().GetBody())) != n {
			t.Fatalf("FullDuplexCall(%d) = %v, %v", n, m, err)
		}
	}
	_ = dup.CloseSend()
	if _, err := dup.Recv(); err != io.EOF {
		t.Errorf("FullDuplexCall end = %v, want io.EOF", err)
	}

	if _, err := tc.UnimplementedCall(ctx, &testpb.Empty{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("UnimplementedCall = %v, want Unimplemented", err)
	}
	half, err := tc.HalfDuplexCall(ctx)
	if err == nil {
		_, err = half.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("HalfDuplexCall (no handler) = %v, want Unimplemented", err)
	}

	// Ferry's own client calls it by its full name too.
	c := dial(t, tr)
	got, err := transport.Invoke[testpb.SimpleRequest, testpb.SimpleResponse](ctx, c, "grpc.testing.TestService", "UnaryCall", &testpb.SimpleRequest{ResponseSize: 2})
	if err != nil || len(got.GetPayload().GetBody()) != 2 {
		t.Errorf("Ferry client UnaryCall = %v, %v", got, err)
	}
}

// Reflection advertises the contract's original file, so grpcurl and
// generated clients see the contract, not a derived schema.
func TestContractReflection(t *testing.T) {
	tr := start(t, contractServer(t))
	services, files, err := reflectV1(testContext(t), rawConn(t, tr), "grpc.testing.TestService")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(services, ","), "grpc.testing.TestService") {
		t.Errorf("services = %v, want grpc.testing.TestService", services)
	}
	var fdp descriptorpb.FileDescriptorProto
	if len(files) == 0 || proto.Unmarshal(files[0], &fdp) != nil {
		t.Fatalf("reflection returned %d files", len(files))
	}
	if fdp.GetName() != testpb.File_grpc_testing_test_proto.Path() || fdp.GetPackage() != "grpc.testing" {
		t.Errorf("reflection file = %s (package %s), want the contract's %s", fdp.GetName(), fdp.GetPackage(), testpb.File_grpc_testing_test_proto.Path())
	}
}

// A server that does not match its contract does not start, and says why.
func TestContractMismatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  func(s *server.Server)
		want string
	}{
		{"not a method", func(s *server.Server) {
			server.Handle(s, "Extra", func(context.Context, *testpb.Empty) (*testpb.Empty, error) { return nil, nil })
		}, `endpoint "Extra" is not a method of grpc.testing.TestService`},
		{"wrong kind", func(s *server.Server) {
			server.Handle(s, "StreamingOutputCall", func(context.Context, *testpb.StreamingOutputCallRequest) (*testpb.StreamingOutputCallResponse, error) {
				return nil, nil
			})
		}, `registered as unary, but grpc.testing.TestService.StreamingOutputCall is server_streaming`},
		{"wrong type", func(s *server.Server) {
			server.Handle(s, "UnaryCall", func(context.Context, *testpb.Empty) (*testpb.SimpleResponse, error) { return nil, nil })
		}, `request type is grpc.testing.Empty, but grpc.testing.TestService.UnaryCall takes grpc.testing.SimpleRequest`},
		{"plain struct", func(s *server.Server) {
			server.Handle(s, "EmptyCall", func(context.Context, *tick) (*testpb.Empty, error) { return nil, nil })
		}, `request type is the plain struct grpc_test.tick`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := server.New("testing", server.WithLogger(quietLogger()), server.WithProtoService(testService))
			tc.add(s)
			err := fgrpc.NewServer("127.0.0.1:0").Start(testContext(t), s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start = %v, want it to say %s", err, tc.want)
			}
		})
	}
}

// The file of a contract server is the contract's own.
func TestContractProtoFile(t *testing.T) {
	fd, err := fgrpc.FileDescriptor(contractServer(t))
	if err != nil || fd.Path() != testpb.File_grpc_testing_test_proto.Path() {
		t.Fatalf("FileDescriptor = %v, %v; want the contract's file", fd, err)
	}
}
