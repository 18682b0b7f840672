package grpc_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/ferry-go/ferry/server"
	"google.golang.org/grpc"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// reflect asks a reflection service for the service list and the files
// defining symbol, as grpcurl does.
type reflector func(ctx context.Context, cc *grpc.ClientConn, symbol string) (services []string, files [][]byte, err error)

func reflectV1(ctx context.Context, cc *grpc.ClientConn, symbol string) ([]string, [][]byte, error) {
	stream, err := reflectionv1.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer stream.CloseSend()
	if err := stream.Send(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{}}); err != nil {
		return nil, nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, nil, err
	}
	var services []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	if err := stream.Send(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol}}); err != nil {
		return nil, nil, err
	}
	if resp, err = stream.Recv(); err != nil {
		return nil, nil, err
	}
	return services, resp.GetFileDescriptorResponse().GetFileDescriptorProto(), nil
}

func reflectV1alpha(ctx context.Context, cc *grpc.ClientConn, symbol string) ([]string, [][]byte, error) {
	stream, err := reflectionv1alpha.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer stream.CloseSend()
	if err := stream.Send(&reflectionv1alpha.ServerReflectionRequest{MessageRequest: &reflectionv1alpha.ServerReflectionRequest_ListServices{}}); err != nil {
		return nil, nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, nil, err
	}
	var services []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	if err := stream.Send(&reflectionv1alpha.ServerReflectionRequest{MessageRequest: &reflectionv1alpha.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol}}); err != nil {
		return nil, nil, err
	}
	if resp, err = stream.Recv(); err != nil {
		return nil, nil, err
	}
	return services, resp.GetFileDescriptorResponse().GetFileDescriptorProto(), nil
}

func TestReflection(t *testing.T) {
	plain := server.New("greeter", server.WithLogger(quietLogger()))
	server.Handle(plain, "Hello", func(ctx context.Context, req *HelloRequest) (*HelloReply, error) {
		return &HelloReply{Message: "Hello, " + req.Name + "!"}, nil
	})
	// Order's file imports timestamp.proto and wrappers.proto, which come
	// from the global registry.
	server.Handle(plain, "Order", func(ctx context.Context, req *Order) (*Order, error) { return req, nil })
	generated := server.New("greeter", server.WithLogger(quietLogger()))
	server.Handle(generated, "Hello", func(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return wrapperspb.String("Hello, " + req.GetValue() + "!"), nil
	})
	tests := []struct {
		name              string
		srv               *server.Server
		reqJSON, wantJSON string
	}{
		{"plain structs", plain, `{"name":"Ada"}`, `{"message":"Hello, Ada!"}`},
		{"generated messages", generated, `"Ada"`, `"Hello, Ada!"`},
	}
	reflectors := []struct {
		name string
		fn   reflector
	}{{"v1", reflectV1}, {"v1alpha", reflectV1alpha}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := start(t, tt.srv)
			cc := rawConn(t, tr)
			for _, r := range reflectors {
				t.Run(r.name, func(t *testing.T) {
					ctx := testContext(t)
					services, raw, err := r.fn(ctx, cc, "greeter.Greeter")
					if err != nil {
						t.Fatalf("reflection = %v, want nil", err)
					}
					for _, want := range []string{"greeter.Greeter", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} {
						if !slices.Contains(services, want) {
							t.Errorf("ListServices = %v, want it to hold %s", services, want)
						}
					}
					md := resolveMethod(t, raw, "greeter.Greeter", "Hello")
					if tt.srv == plain {
						om := resolveMethod(t, raw, "greeter.Greeter", "Order")
						if f := om.Input().Fields().ByJSONName("placed"); f == nil || f.Message().FullName() != "google.protobuf.Timestamp" {
							t.Errorf("Order input field placed = %v, want a google.protobuf.Timestamp", f)
						}
					}
					req := dynamicpb.NewMessage(md.Input())
					if err := protojson.Unmarshal([]byte(tt.reqJSON), req); err != nil {
						t.Fatalf("protojson.Unmarshal(%s) = %v, want nil", tt.reqJSON, err)
					}
					resp := dynamicpb.NewMessage(md.Output())
					if err := cc.Invoke(ctx, "/greeter.Greeter/Hello", req, resp); err != nil {
						t.Fatalf("Invoke(dynamic Hello) = %v, want nil", err)
					}
					got, err := protojson.Marshal(resp)
					if err != nil {
						t.Fatalf("protojson.Marshal(reply) = %v, want nil", err)
					}
					if !jsonEqual(t, got, []byte(tt.wantJSON)) {
						t.Errorf("dynamic Hello reply = %s, want %s", got, tt.wantJSON)
					}
				})
			}
		})
	}
}

// resolveMethod builds descriptors from reflection's FileDescriptorProtos.
func resolveMethod(t *testing.T, raw [][]byte, service, method string) protoreflect.MethodDescriptor {
	t.Helper()
	set := &descriptorpb.FileDescriptorSet{}
	for _, b := range raw {
		fdp := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(b, fdp); err != nil {
			t.Fatalf("proto.Unmarshal(FileDescriptorProto) = %v, want nil", err)
		}
		set.File = append(set.File, fdp)
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatalf("protodesc.NewFiles() = %v, want nil", err)
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		t.Fatalf("FindDescriptorByName(%s) = %v, want nil", service, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		t.Fatalf("FindDescriptorByName(%s) = %T, want a service", service, d)
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		t.Fatalf("%s has no method %s", service, method)
	}
	return md
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("json.Unmarshal(%s) = %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("json.Unmarshal(%s) = %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
