package protostruct_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/bufbuild/protocompile"
	"github.com/ferry-go/ferry/codec/protostruct"
	_ "google.golang.org/grpc/health/grpc_health_v1"
	_ "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Shapes adds to Rich and Extra what only the printer cares about: names
// that need json_name, proto3 optional fields whose synthetic oneof names
// protoc derives in its own way, generated messages from files with enums
// and nested types, generic and empty structs.
type Shapes struct {
	ID       *string          `json:"_id"`      // synthetic oneof "X_id": "_id" is taken
	Under    *int64           `json:"_under"`   // synthetic oneof "_under"
	Snake    string           `json:"snake_ok"` // json_name "snake_ok" differs from protoc's "snakeOk"
	Camel    string           `json:"camelCase"`
	NoTag    int32            // json_name "NoTag" for field no_tag
	HTTPCode uint32           // http_code, json_name "HTTPCode"
	Dashed   string           `json:"with-dash"` // not an identifier: field dashed, json_name "with-dash"
	Struct   *structpb.Struct `json:"struct"`    // struct.proto: an enum and a map inside
	Value    *structpb.Value  `json:"value"`
	Any      *anypb.Any       `json:"any"`
	Dur      *durationpb.Duration
	Page     Page[Address]    `json:"page"`
	Empty    struct{}         `json:"empty"`
	Nodes    map[string]*Node `json:"nodes"`
	Times    map[int64]timestamppb.Timestamp
	Sparse   bool    `pb:"536870911" json:"sparse"`
	Low      string  `pb:"100" json:"low"`
	Opt2     *string `json:"opt2"`
	XOpt2    string  `json:"_opt2"` // takes "_opt2", so opt2's oneof is "X_opt2"
	Wrapped  []*wrapperspb.BytesValue
	Stamp    timestamppb.Timestamp `json:"stamp"`
	_        struct{}              `pb:"reserved"` // reserves 22
	_        struct{}              `pb:"300,reserved"`
}

func shapeMethods() []protostruct.Method {
	return []protostruct.Method{
		{Name: "GetRich", Input: reflect.TypeFor[Rich](), Output: reflect.TypeFor[*Extra]()},
		{Name: "GetShapes", Input: reflect.TypeFor[Shapes](), Output: reflect.TypeFor[Node]()},
		{Name: "Watch", Input: reflect.TypeFor[Address](), Output: reflect.TypeFor[Shapes](), ServerStreaming: true},
		{Name: "Upload", Input: reflect.TypeFor[wrapperspb.BytesValue](), Output: reflect.TypeFor[struct {
			N int `json:"n"`
		}](), ClientStreaming: true},
		{Name: "Chat", Input: reflect.TypeFor[struct {
			Text string `json:"text"`
		}](), Output: reflect.TypeFor[struct {
			Echo string `json:"echo"`
		}](), ClientStreaming: true, ServerStreaming: true},
		{Name: "Now", Input: reflect.TypeFor[struct{}](), Output: reflect.TypeFor[timestamppb.Timestamp]()},
	}
}

// compile parses src as the file at path with protocompile, resolving its
// imports from protoregistry.GlobalFiles (by descriptor, so no other source
// is involved), and returns the descriptor proto it compiles to.
func compile(t *testing.T, path string, src []byte) *descriptorpb.FileDescriptorProto {
	t.Helper()
	c := protocompile.Compiler{
		Resolver: protocompile.ResolverFunc(func(p string) (protocompile.SearchResult, error) {
			if p == path {
				return protocompile.SearchResult{Source: strings.NewReader(string(src))}, nil
			}
			fd, err := protoregistry.GlobalFiles.FindFileByPath(p)
			if err != nil {
				return protocompile.SearchResult{}, err
			}
			return protocompile.SearchResult{Desc: fd}, nil
		}),
	}
	files, err := c.Compile(context.Background(), path)
	if err != nil {
		t.Fatalf("compiling the printed %s: %v\n%s", path, err, numbered(src))
	}
	return protodesc.ToFileDescriptorProto(files[0])
}

// normalize drops what a compiler is free to add or leave out without
// changing the schema: source info, and json_name where it is the default.
func normalize(fdp *descriptorpb.FileDescriptorProto) *descriptorpb.FileDescriptorProto {
	fdp = proto.Clone(fdp).(*descriptorpb.FileDescriptorProto)
	fdp.SourceCodeInfo = nil
	var fields func(ms []*descriptorpb.DescriptorProto)
	fixField := func(f *descriptorpb.FieldDescriptorProto) {
		if f.JsonName == nil && f.Extendee == nil {
			f.JsonName = proto.String(jsonCamel(f.GetName()))
		}
	}
	fields = func(ms []*descriptorpb.DescriptorProto) {
		for _, m := range ms {
			for _, f := range m.Field {
				fixField(f)
			}
			fields(m.NestedType)
		}
	}
	fields(fdp.MessageType)
	return fdp
}

// jsonCamel is protoc's default JSON name: underscores dropped, the letter
// after each one upper-cased.
func jsonCamel(s string) string {
	var b strings.Builder
	up := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_':
			up = true
		case up && 'a' <= c && c <= 'z':
			b.WriteByte(c - 'a' + 'A')
			up = false
		default:
			b.WriteByte(c)
			up = false
		}
	}
	return b.String()
}

func numbered(src []byte) string {
	var b strings.Builder
	for i, l := range strings.Split(string(src), "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, l)
	}
	return b.String()
}

// checkRoundTrip prints fd, compiles the text, and wants fd back.
func checkRoundTrip(t *testing.T, fd protoreflect.FileDescriptor) []byte {
	t.Helper()
	src, err := protostruct.Print(fd)
	if err != nil {
		t.Fatalf("Print(%s) error = %v", fd.Path(), err)
	}
	want := normalize(protodesc.ToFileDescriptorProto(fd))
	got := normalize(compile(t, fd.Path(), src))
	if !proto.Equal(got, want) {
		t.Errorf("Print(%s) compiles to another descriptor\n--- printed:\n%s\n--- compiled:\n%s\n--- want:\n%s",
			fd.Path(), numbered(src), prototext.Format(got), prototext.Format(want))
	}
	return src
}

// TestPrintRoundTrip is the printer's property: for many shapes of Go
// types, the printed text compiles back to the descriptor File built.
func TestPrintRoundTrip(t *testing.T) {
	for _, pkg := range []string{"ferry.shapes", ""} {
		fd, err := protostruct.File("ferry/shapes.proto", pkg, "Shapes", shapeMethods())
		if err != nil {
			t.Fatalf("File() error = %v", err)
		}
		src := checkRoundTrip(t, fd)
		if pkg == "" {
			continue
		}
		for _, want := range []string{
			"syntax = \"proto3\";\n\npackage ferry.shapes;\n\nimport \"google/protobuf/timestamp.proto\";\nimport \"google/protobuf/wrappers.proto\";\n",
			"\n  optional string _id = 1 [json_name = \"_id\"];\n",
			"\n  string snake_ok = 3 [json_name = \"snake_ok\"];\n",
			"\n  string camelCase = 4;\n",
			"\n  map<string, Node> nodes = 14;\n",
			"\n  rpc Watch(Address) returns (stream Shapes2);\n",
			"\n  rpc Upload(stream google.protobuf.BytesValue) returns (UploadResponse);\n",
			"\n  rpc Chat(stream ChatRequest) returns (stream ChatResponse);\n",
			"}\n\nmessage ",
		} {
			if !strings.Contains(string(src), want) {
				t.Errorf("Print() = \n%s\nwant it to contain %q", src, want)
			}
		}
	}
}

// TestPrintDependencies prints files Ferry's descriptors import — the
// well-known types, descriptor.proto (proto2 or editions: defaults,
// extension ranges, reserved names, nested enums, options) — and wants each
// back.
func TestPrintDependencies(t *testing.T) {
	for _, path := range []string{
		"google/protobuf/timestamp.proto",
		"google/protobuf/wrappers.proto",
		"google/protobuf/struct.proto",
		"google/protobuf/any.proto",
		"google/protobuf/descriptor.proto",
		"google/protobuf/empty.proto",
		"grpc/health/v1/health.proto",
		"grpc/reflection/v1/reflection.proto",
	} {
		t.Run(path, func(t *testing.T) {
			fd, err := protoregistry.GlobalFiles.FindFileByPath(path)
			if err != nil {
				t.Skipf("%s is not linked into this test: %v", path, err)
			}
			checkRoundTrip(t, fd)
		})
	}
}

// TagsEntry is named like the entry message of a map field tags.
type TagsEntry struct {
	Key string `json:"key"`
}

// Shadow refers to TagsEntry from inside a message that has its own
// TagsEntry, and has a field named like a message.
type Shadow struct {
	Tags  map[string]string `json:"tags"`
	Entry TagsEntry         `json:"entry"`
	Node  Node              `json:"Node"`
}

// TestPrintShadowing covers names that mean something else where they are
// used: the text refers to every type by its full name then.
func TestPrintShadowing(t *testing.T) {
	for _, methods := range [][]protostruct.Method{
		{{Name: "Node", Input: reflect.TypeFor[Node](), Output: reflect.TypeFor[Node]()}},
		{{Name: "Get", Input: reflect.TypeFor[Shadow](), Output: reflect.TypeFor[Node]()}},
	} {
		fd, err := protostruct.File("ferry/shadow.proto", "shadow", "Shadow", methods)
		if err != nil {
			t.Fatalf("File() error = %v", err)
		}
		src := checkRoundTrip(t, fd)
		if !strings.Contains(string(src), "returns (.shadow.Node)") {
			t.Errorf("Print() = \n%s\nwant full names", src)
		}
	}
}

func TestPrintNil(t *testing.T) {
	if _, err := protostruct.Print(nil); err == nil {
		t.Error("Print(nil) error = nil, want an error")
	}
}
