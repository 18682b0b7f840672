package grpc

import (
	"fmt"
	"reflect"

	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/server"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

var messageType = reflect.TypeFor[proto.Message]()

// isMessage reports whether *t is a generated protobuf message.
func isMessage(t reflect.Type) bool { return reflect.PointerTo(t).Implements(messageType) }

// describe checks every endpoint's types and returns the descriptor
// registry that reflection serves: the file describing s first, then the
// global registry for generated messages, well-known types, health and
// reflection.
func describe(s *server.Server) (*resolver, error) {
	if sd := s.ProtoService(); sd != nil {
		// The contract's own file, as protoc-gen-go compiled it.
		if err := checkContract(s, sd); err != nil {
			return nil, err
		}
		local := new(protoregistry.Files)
		if err := local.RegisterFile(sd.ParentFile()); err != nil {
			return nil, fmt.Errorf("grpc: contract %s: %w", sd.FullName(), err)
		}
		return &resolver{local: local}, nil
	}
	eps := s.Endpoints()
	methods := make([]protostruct.Method, 0, len(eps))
	for _, ep := range eps {
		for _, t := range [...]struct {
			what string
			typ  reflect.Type
		}{{"request", ep.RequestType}, {"response", ep.ResponseType}} {
			if isMessage(t.typ) {
				continue
			}
			if err := protostruct.Check(t.typ); err != nil {
				return nil, fmt.Errorf("grpc: endpoint %q: %s: %w", ep.Name, t.what, err)
			}
		}
		methods = append(methods, protostruct.Method{Name: ep.Name, Input: ep.RequestType, Output: ep.ResponseType,
			ClientStreaming: ep.Kind.ClientSends(), ServerStreaming: ep.Kind.ServerSends()})
	}
	name := s.Name()
	fd, err := protostruct.File(filePath(name), protoPackage(name), protoService(name), methods)
	if err != nil {
		return nil, fmt.Errorf("grpc: describe service %q: %w", name, err)
	}
	local := new(protoregistry.Files)
	if err := local.RegisterFile(fd); err != nil {
		return nil, fmt.Errorf("grpc: describe service %q: %w", name, err)
	}
	return &resolver{local: local}, nil
}

// resolver finds descriptors in our generated file first, then in
// protoregistry.GlobalFiles.
type resolver struct {
	local *protoregistry.Files
}

func (r *resolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if fd, err := r.local.FindFileByPath(path); err == nil {
		return fd, nil
	}
	return protoregistry.GlobalFiles.FindFileByPath(path)
}

func (r *resolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := r.local.FindDescriptorByName(name); err == nil {
		return d, nil
	}
	return protoregistry.GlobalFiles.FindDescriptorByName(name)
}
