package grpc

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// grpcService is the gRPC service name s is served under: its contract's
// full name (server.WithProtoService), or the one derived from its name.
func grpcService(s *server.Server) string {
	if sd := s.ProtoService(); sd != nil {
		return string(sd.FullName())
	}
	return ServiceName(s.Name())
}

// checkContract checks that every endpoint of s is a method of its
// contract sd, of the same kind, with the contract's generated types.
func checkContract(s *server.Server, sd protoreflect.ServiceDescriptor) error {
	var methods []string
	for i := range sd.Methods().Len() {
		methods = append(methods, string(sd.Methods().Get(i).Name()))
	}
	for _, ep := range s.Endpoints() {
		m := sd.Methods().ByName(protoreflect.Name(ep.Name))
		if m == nil {
			return fmt.Errorf("grpc: endpoint %q is not a method of %s (which has %s): a server implementing a contract (WithProtoService) serves its methods only",
				ep.Name, sd.FullName(), strings.Join(methods, ", "))
		}
		if k := StreamKindOf(m); k != ep.Kind {
			return fmt.Errorf("grpc: endpoint %q is registered as %s, but %s.%s is %s", ep.Name, ep.Kind, sd.FullName(), m.Name(), k)
		}
		for _, side := range [...]struct {
			what string
			typ  reflect.Type
			want protoreflect.MessageDescriptor
		}{{"request", ep.RequestType, m.Input()}, {"response", ep.ResponseType, m.Output()}} {
			got := "the plain struct " + side.typ.String()
			if pm, ok := reflect.New(side.typ).Interface().(proto.Message); ok {
				got = string(pm.ProtoReflect().Descriptor().FullName())
				if got == string(side.want.FullName()) {
					continue
				}
			}
			return fmt.Errorf("grpc: endpoint %q: %s type is %s, but %s.%s takes %s (use its generated Go type)",
				ep.Name, side.what, got, sd.FullName(), m.Name(), side.want.FullName())
		}
	}
	return nil
}

// StreamKindOf returns the stream kind of a protobuf method: Unary, or
// the stream its client_streaming and server_streaming flags make.
func StreamKindOf(m protoreflect.MethodDescriptor) transport.StreamKind {
	switch {
	case m.IsStreamingClient() && m.IsStreamingServer():
		return transport.BidiStreaming
	case m.IsStreamingClient():
		return transport.ClientStreaming
	case m.IsStreamingServer():
		return transport.ServerStreaming
	}
	return transport.Unary
}
