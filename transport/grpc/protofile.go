package grpc

import (
	"fmt"

	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/server"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// FileDescriptor returns the file descriptor that the gRPC transport's
// server reflection serves for s — the same file, without starting
// anything: path "ferry/<service>.proto", the package and service of
// [ServiceName], a message for every plain struct type (see
// codec/protostruct) and imports of the files of generated messages and of
// google/protobuf/timestamp.proto. Its imports resolve through the
// descriptor itself. It fails as Start would, naming the endpoint and field
// whose type has no protobuf form.
func FileDescriptor(s *server.Server) (protoreflect.FileDescriptor, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	res, err := describe(s)
	if err != nil {
		return nil, err
	}
	path := filePath(s.Name())
	if sd := s.ProtoService(); sd != nil {
		path = sd.ParentFile().Path() // the contract's own file
	}
	fd, err := res.local.FindFileByPath(path)
	if err != nil {
		return nil, fmt.Errorf("grpc: describe service %q: %w", s.Name(), err)
	}
	return fd, nil
}

// ProtoFile returns the .proto source of the file that server reflection
// serves for s, and its path: what `ferry proto export` prints for the
// running service. The text compiles (with its imports) back to the same
// descriptor; see protostruct.Print. It carries no go_package option, as
// the served descriptor carries none: generate Go code from it with
// protoc's M option (--go_opt=Mferry/greeter.proto=example.com/greeterpb).
func ProtoFile(s *server.Server) (path string, src []byte, err error) {
	fd, err := FileDescriptor(s)
	if err != nil {
		return "", nil, err
	}
	src, err = protostruct.Print(fd)
	if err != nil {
		return "", nil, err
	}
	return fd.Path(), src, nil
}
