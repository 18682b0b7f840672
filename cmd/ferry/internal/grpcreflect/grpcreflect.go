package grpcreflect

import (
	"context"
	"fmt"
	"slices"

	"github.com/ferry-go/ferry/errs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Resolve asks the server behind cc for the descriptor of the service with
// the fully qualified name (such as "greeter.Greeter"), with every file it
// depends on. Errors are *errs.Error values: NotFound for a service the
// server does not know, Unimplemented for a server without reflection v1,
// and the connection's own code (Unavailable, DeadlineExceeded) otherwise.
func Resolve(ctx context.Context, cc grpc.ClientConnInterface, service string) (protoreflect.ServiceDescriptor, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream
	stream, err := rpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, fromStatus(err, "open reflection stream")
	}
	ask := func(req *rpb.ServerReflectionRequest) ([][]byte, error) {
		if err := stream.Send(req); err != nil {
			_, err = stream.Recv() // the stream's real error
			return nil, fromStatus(err, "reflection request")
		}
		resp, err := stream.Recv()
		if err != nil {
			return nil, fromStatus(err, "reflection reply")
		}
		if e := resp.GetErrorResponse(); e != nil {
			return nil, errs.New(errs.Code(e.GetErrorCode()), e.GetErrorMessage())
		}
		return resp.GetFileDescriptorResponse().GetFileDescriptorProto(), nil
	}

	raw, err := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: service}})
	if err != nil {
		if errs.CodeOf(err) == errs.NotFound {
			return nil, errs.Newf(errs.NotFound, "no gRPC service %s on this server", service)
		}
		return nil, err
	}
	byName := map[string]*descriptorpb.FileDescriptorProto{}
	var order []string
	add := func(raw [][]byte) error {
		for _, b := range raw {
			fd := new(descriptorpb.FileDescriptorProto)
			if err := proto.Unmarshal(b, fd); err != nil {
				return errs.Newf(errs.Internal, "malformed file descriptor from reflection: %v", err)
			}
			if _, ok := byName[fd.GetName()]; !ok {
				byName[fd.GetName()] = fd
				order = append(order, fd.GetName())
			}
		}
		return nil
	}
	if err := add(raw); err != nil {
		return nil, err
	}
	// The server usually sends every dependency at once; ask for any it left out.
	for i := 0; i < len(order); i++ {
		for _, dep := range byName[order[i]].GetDependency() {
			if _, ok := byName[dep]; ok {
				continue
			}
			raw, err := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileByFilename{FileByFilename: dep}})
			if err != nil {
				if fd, gerr := protoregistry.GlobalFiles.FindFileByPath(dep); gerr == nil {
					raw = [][]byte{mustMarshal(protodesc.ToFileDescriptorProto(fd))}
				} else {
					return nil, fmt.Errorf("file %s, needed by %s: %w", dep, order[i], err)
				}
			}
			if err := add(raw); err != nil {
				return nil, err
			}
		}
	}
	set := &descriptorpb.FileDescriptorSet{}
	for _, name := range order {
		set.File = append(set.File, byName[name])
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		return nil, errs.Newf(errs.Internal, "descriptors from reflection do not link: %v", err)
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil, errs.Newf(errs.NotFound, "no gRPC service %s on this server", service)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, errs.Newf(errs.NotFound, "%s is a %T on this server, not a service", service, d)
	}
	return sd, nil
}

func mustMarshal(m proto.Message) []byte {
	b, _ := proto.Marshal(m) // a descriptor built by protodesc always marshals
	return b
}

// fromStatus turns a gRPC error into an *errs.Error with the same code.
func fromStatus(err error, what string) error {
	st, _ := status.FromError(err)
	if st.Code() == codes.Unimplemented {
		return errs.New(errs.Unimplemented, "the server does not serve gRPC reflection (grpc.reflection.v1)")
	}
	return errs.Newf(errs.Code(st.Code()), "%s: %s", what, st.Message())
}

// Method returns the method named endpoint of sd, or a NotFound error that
// lists the methods there are.
func Method(sd protoreflect.ServiceDescriptor, endpoint string) (protoreflect.MethodDescriptor, error) {
	if md := sd.Methods().ByName(protoreflect.Name(endpoint)); md != nil {
		return md, nil
	}
	var names []string
	for i := range sd.Methods().Len() {
		names = append(names, string(sd.Methods().Get(i).Name()))
	}
	slices.Sort(names)
	return nil, errs.Newf(errs.NotFound, "gRPC service %s has no method %q (it has %v)", sd.FullName(), endpoint, names)
}

// ParseJSON decodes data into a new message of type md. Unknown fields are
// an error, so a misspelt field name does not silently vanish.
func ParseJSON(md protoreflect.MessageDescriptor, data []byte) (*dynamicpb.Message, error) {
	m := dynamicpb.NewMessage(md)
	if err := protojson.Unmarshal(data, m); err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "request does not fit %s: %v", md.FullName(), err)
	}
	return m, nil
}
