package grpc_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/server"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type ticks struct {
	N int `json:"n"`
}

// TestProtoFile: the descriptor FileDescriptor returns without a server is
// the one reflection serves, and ProtoFile prints it.
func TestProtoFile(t *testing.T) {
	s := server.New("order-service", server.WithLogger(quietLogger()))
	server.Handle(s, "Place", func(ctx context.Context, req *Order) (*Order, error) { return req, nil })
	server.HandleServerStream(s, "Ticks", func(ctx context.Context, req *HelloRequest, out server.Sender[ticks]) error { return nil })

	fd, err := fgrpc.FileDescriptor(s)
	if err != nil {
		t.Fatalf("FileDescriptor() error = %v", err)
	}
	path, src, err := fgrpc.ProtoFile(s)
	if err != nil {
		t.Fatalf("ProtoFile() error = %v", err)
	}
	if path != "ferry/order-service.proto" || fd.Path() != path {
		t.Errorf("ProtoFile() path = %q, FileDescriptor().Path() = %q, want ferry/order-service.proto", path, fd.Path())
	}
	want, _ := protostruct.Print(fd)
	if string(src) != string(want) {
		t.Errorf("ProtoFile() = \n%s\nwant Print(FileDescriptor()) =\n%s", src, want)
	}
	for _, w := range []string{"package order_service;", "service OrderService {", "rpc Ticks(HelloRequest) returns (stream ticks);", `import "google/protobuf/timestamp.proto";`} {
		if !strings.Contains(string(src), w) {
			t.Errorf("ProtoFile() = \n%s\nwant it to contain %q", src, w)
		}
	}

	tr := start(t, s)
	_, raw, err := reflectV1(testContext(t), rawConn(t, tr), "order_service.OrderService")
	if err != nil {
		t.Fatalf("reflection: %v", err)
	}
	var served *descriptorpb.FileDescriptorProto
	for _, b := range raw {
		fdp := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(b, fdp); err != nil {
			t.Fatal(err)
		}
		if fdp.GetName() == path {
			served = fdp
		}
	}
	if !proto.Equal(served, protodesc.ToFileDescriptorProto(fd)) {
		t.Errorf("reflection serves\n%v\nFileDescriptor() is\n%v", served, protodesc.ToFileDescriptorProto(fd))
	}

	// A type without a protobuf form fails as Start does.
	bad := server.New("bad", server.WithLogger(quietLogger()))
	server.Handle(bad, "Chan", func(ctx context.Context, req *struct{ C chan int }) (*HelloReply, error) { return nil, nil })
	if _, _, err := fgrpc.ProtoFile(bad); err == nil || !strings.Contains(err.Error(), `endpoint "Chan"`) {
		t.Errorf("ProtoFile(bad) error = %v, want one naming the endpoint", err)
	}
}

type (
	strictReq struct {
		Name  string      `pb:"1" json:"name"`
		Inner strictInner `pb:"2" json:"inner"`
	}
	strictInner struct {
		Note string `json:"note"` // no pb tag
	}
)

func TestStrictFieldNumbers(t *testing.T) {
	s := server.New("strict", server.WithLogger(quietLogger()))
	server.Handle(s, "Hello", func(ctx context.Context, req *strictReq) (*strictReq, error) { return req, nil })
	// Without the option the service starts.
	start(t, s)

	tr := fgrpc.NewServer("127.0.0.1:0", fgrpc.WithStrictFieldNumbers())
	err := tr.Start(testContext(t), s)
	if err == nil {
		_ = tr.Stop(context.Background())
		t.Fatal("Start(WithStrictFieldNumbers) = nil, want an error naming strictInner.Note")
	}
	if tr.Addr() != nil {
		t.Errorf("Addr() = %v after a refused Start, want nil", tr.Addr())
	}
	var e *errs.Error
	if !errors.As(err, &e) || e.Code() != errs.InvalidArgument {
		t.Errorf("Start() error = %v, want InvalidArgument", err)
	}
	for _, w := range []string{`endpoint "Hello": request`, "grpc_test.strictInner.Note: no pb tag (its number 1 comes from its position in the struct)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Start() error = %v, want it to contain %q", err, w)
		}
	}

	// Pinned types start; generated messages are not looked into.
	pinned := server.New("strict", server.WithLogger(quietLogger()))
	server.Handle(pinned, "Hello", func(ctx context.Context, req *ticksPinned) (*wrapperspb.StringValue, error) { return nil, nil })
	start(t, pinned, fgrpc.WithStrictFieldNumbers())

	// An untagged response is refused too.
	reply := server.New("strict", server.WithLogger(quietLogger()))
	server.Handle(reply, "Hello", func(ctx context.Context, req *ticksPinned) (*HelloReply, error) { return nil, nil })
	err = fgrpc.NewServer("127.0.0.1:0", fgrpc.WithStrictFieldNumbers()).Start(testContext(t), reply)
	if err == nil || !strings.Contains(err.Error(), `endpoint "Hello": response`) || !strings.Contains(err.Error(), "grpc_test.HelloReply.Message") {
		t.Errorf("Start() error = %v, want the response's untagged field", err)
	}
}

type ticksPinned struct {
	N int `pb:"1" json:"n"`
}
