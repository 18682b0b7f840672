package protostruct

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/ferry-go/ferry/errs"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Method is one RPC of a service to describe.
type Method struct {
	// Name is the RPC name, a protobuf identifier such as "Hello".
	Name string
	// Input and Output are struct types (a pointer to a struct is accepted
	// too). If reflect.PointerTo(t) implements proto.Message, t is a
	// generated message and is referenced by its own descriptor.
	Input, Output reflect.Type
	// ClientStreaming and ServerStreaming mark a stream of inputs and of
	// outputs: rpc Name(stream Input) returns (stream Output).
	ClientStreaming, ServerStreaming bool
}

// File builds a proto3 file descriptor at path (e.g. "ferry/greeter.proto")
// in package pkg (e.g. "greeter"; empty for none) declaring
//
//	service <service> { rpc <Name>(<Input>) returns (<Output>); ... }
//
// and a message for every plain struct type reachable from the methods,
// following the mapping in the package documentation. Messages are named
// after their Go types; an anonymous struct is named after where it is used
// (<Method>Request, <Method>Response, <Message>_<Field>), and a name already
// taken gets the suffix 2, 3, ... in the order types are first reached.
//
// Generated messages, and google/protobuf/timestamp.proto when time.Time is
// used, are imported as dependencies: taken from the generated types
// themselves, else resolved from protoregistry.GlobalFiles. The result is
// built and validated by protodesc.NewFile. Errors are *errs.Error with code
// InvalidArgument naming the method or field at fault.
func File(path, pkg, service string, methods []Method) (protoreflect.FileDescriptor, error) {
	switch {
	case path == "":
		return nil, errs.New(errs.InvalidArgument, "protostruct: empty file path")
	case pkg != "" && !protoreflect.FullName(pkg).IsValid():
		return nil, errs.Newf(errs.InvalidArgument, "protostruct: invalid package name %q", pkg)
	case !protoreflect.Name(service).IsValid():
		return nil, errs.Newf(errs.InvalidArgument, "protostruct: invalid service name %q", service)
	}
	fb := &fileBuilder{
		pkg:   pkg,
		names: map[string]bool{service: true},
		msgs:  map[reflect.Type]string{},
		deps:  new(protoregistry.Files),
	}
	sd := &descriptorpb.ServiceDescriptorProto{Name: proto.String(service)}
	rpcs := map[string]bool{}
	for _, m := range methods {
		if !protoreflect.Name(m.Name).IsValid() {
			return nil, errs.Newf(errs.InvalidArgument, "protostruct: invalid method name %q", m.Name)
		}
		if rpcs[m.Name] {
			return nil, errs.Newf(errs.InvalidArgument, "protostruct: duplicate method %q", m.Name)
		}
		rpcs[m.Name] = true
		in, err := fb.topRef(m.Input, m.Name+"Request")
		if err != nil {
			return nil, methodErr(m.Name, "input", err)
		}
		out, err := fb.topRef(m.Output, m.Name+"Response")
		if err != nil {
			return nil, methodErr(m.Name, "output", err)
		}
		md := &descriptorpb.MethodDescriptorProto{
			Name:       proto.String(m.Name),
			InputType:  proto.String(in),
			OutputType: proto.String(out),
		}
		if m.ClientStreaming {
			md.ClientStreaming = proto.Bool(true)
		}
		if m.ServerStreaming {
			md.ServerStreaming = proto.Bool(true)
		}
		sd.Method = append(sd.Method, md)
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name:        proto.String(path),
		Syntax:      proto.String("proto3"),
		Dependency:  fb.depPaths,
		MessageType: fb.protos,
		Service:     []*descriptorpb.ServiceDescriptorProto{sd},
	}
	if pkg != "" {
		fdp.Package = proto.String(pkg)
	}
	fd, err := protodesc.NewFile(fdp, fb)
	if err != nil {
		return nil, errs.Wrap(errs.InvalidArgument, fmt.Errorf("protostruct: building %s: %w", path, err))
	}
	return fd, nil
}

func methodErr(method, side string, err error) error {
	msg := err.Error()
	if e, ok := err.(*errs.Error); ok {
		msg = e.Message()
	}
	return errs.Newf(errs.InvalidArgument, "method %s %s: %s", method, side, msg)
}

// fileBuilder collects the messages and dependencies of one file. It is the
// protodesc.Resolver too: dependencies it collected first, then the global
// registry.
type fileBuilder struct {
	pkg      string
	names    map[string]bool         // top-level names taken
	msgs     map[reflect.Type]string // declared plain structs → message name
	protos   []*descriptorpb.DescriptorProto
	deps     *protoregistry.Files
	depPaths []string
}

func (fb *fileBuilder) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if fd, err := fb.deps.FindFileByPath(path); err == nil {
		return fd, nil
	}
	return protoregistry.GlobalFiles.FindFileByPath(path)
}

func (fb *fileBuilder) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := fb.deps.FindDescriptorByName(name); err == nil {
		return d, nil
	}
	return protoregistry.GlobalFiles.FindDescriptorByName(name)
}

func (fb *fileBuilder) addDep(fd protoreflect.FileDescriptor) error {
	if _, err := fb.deps.FindFileByPath(fd.Path()); err == nil {
		return nil
	}
	if err := fb.deps.RegisterFile(fd); err != nil {
		return fmt.Errorf("importing %s: %v", fd.Path(), err)
	}
	fb.depPaths = append(fb.depPaths, fd.Path())
	return nil
}

func (fb *fileBuilder) qualify(name string) string {
	if fb.pkg == "" {
		return "." + name
	}
	return "." + fb.pkg + "." + name
}

// topRef returns the full type name (with a leading dot) of a method's
// input or output type.
func (fb *fileBuilder) topRef(t reflect.Type, suggest string) (string, error) {
	if t == nil {
		return "", errs.New(errs.InvalidArgument, "nil type")
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return "", errs.Newf(errs.InvalidArgument, "%s is not a struct type", t)
	}
	if t == timeType {
		return fb.timestampRef()
	}
	pl, err := planFor(t)
	if err != nil {
		return "", err
	}
	if pl.generated {
		md, err := descriptorOf(t)
		if err != nil {
			return "", err
		}
		return fb.generatedRef(md)
	}
	return fb.qualify(fb.declare(pl, suggest)), nil
}

func (fb *fileBuilder) timestampRef() (string, error) {
	fd := timestamppb.File_google_protobuf_timestamp_proto
	if err := fb.addDep(fd); err != nil {
		return "", err
	}
	return ".google.protobuf.Timestamp", nil
}

func (fb *fileBuilder) generatedRef(md protoreflect.MessageDescriptor) (string, error) {
	if err := fb.addDep(md.ParentFile()); err != nil {
		return "", err
	}
	return "." + string(md.FullName()), nil
}

// declare adds the message for a plain struct plan (and, depth first,
// every message it reaches), returning its name.
func (fb *fileBuilder) declare(pl *plan, suggest string) string {
	if name, ok := fb.msgs[pl.typ]; ok {
		return name
	}
	base := suggest
	if n := pl.typ.Name(); n != "" {
		base = messageName(n)
	}
	name := base
	for i := 2; fb.names[name]; i++ {
		name = base + strconv.Itoa(i)
	}
	fb.names[name], fb.msgs[pl.typ] = true, name
	dp := &descriptorpb.DescriptorProto{Name: proto.String(name)}
	fb.protos = append(fb.protos, dp)

	taken := map[string]bool{}
	for _, f := range pl.fields {
		taken[f.name] = true
	}
	for _, f := range pl.fields {
		fdp := &descriptorpb.FieldDescriptorProto{
			Name:     proto.String(f.name),
			Number:   proto.Int32(int32(f.num)),
			JsonName: proto.String(f.jsonName),
			Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
		}
		// Errors below cannot happen for types that passed Check, except
		// for dependency conflicts, which protodesc reports again.
		suggestSub := name + "_" + messageName(f.goName)
		switch f.card {
		case cardSingular, cardPointer:
			fb.setType(fdp, f.val, suggestSub)
			if f.card == cardPointer && f.val.sc != nil {
				// protoc's name for the synthetic oneof, so the printed
				// .proto compiles back to this descriptor.
				oneof := f.name
				if !strings.HasPrefix(oneof, "_") {
					oneof = "_" + oneof
				}
				for taken[oneof] {
					oneof = "X" + oneof
				}
				taken[oneof] = true
				fdp.Proto3Optional = proto.Bool(true)
				fdp.OneofIndex = proto.Int32(int32(len(dp.OneofDecl)))
				dp.OneofDecl = append(dp.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String(oneof)})
			}
		case cardRepeated, cardRepeatedPtr:
			fdp.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
			fb.setType(fdp, f.val, suggestSub)
		case cardMap:
			entryName := mapEntryName(f.name)
			key := &descriptorpb.FieldDescriptorProto{
				Name: proto.String("key"), Number: proto.Int32(1), JsonName: proto.String("key"),
				Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			}
			fb.setType(key, f.key, "")
			val := &descriptorpb.FieldDescriptorProto{
				Name: proto.String("value"), Number: proto.Int32(2), JsonName: proto.String("value"),
				Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			}
			fb.setType(val, f.val, suggestSub)
			dp.NestedType = append(dp.NestedType, &descriptorpb.DescriptorProto{
				Name:    proto.String(entryName),
				Field:   []*descriptorpb.FieldDescriptorProto{key, val},
				Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
			})
			fdp.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
			fdp.Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
			fdp.TypeName = proto.String(fb.qualify(name) + "." + entryName)
		}
		dp.Field = append(dp.Field, fdp)
	}
	for _, r := range pl.reserved {
		dp.ReservedRange = append(dp.ReservedRange, &descriptorpb.DescriptorProto_ReservedRange{
			Start: proto.Int32(int32(r.num)), End: proto.Int32(int32(r.num) + 1),
		})
	}
	return name
}

var scalarTypes = [...]descriptorpb.FieldDescriptorProto_Type{
	kindBool:   descriptorpb.FieldDescriptorProto_TYPE_BOOL,
	kindInt32:  descriptorpb.FieldDescriptorProto_TYPE_INT32,
	kindInt64:  descriptorpb.FieldDescriptorProto_TYPE_INT64,
	kindUint32: descriptorpb.FieldDescriptorProto_TYPE_UINT32,
	kindUint64: descriptorpb.FieldDescriptorProto_TYPE_UINT64,
	kindFloat:  descriptorpb.FieldDescriptorProto_TYPE_FLOAT,
	kindDouble: descriptorpb.FieldDescriptorProto_TYPE_DOUBLE,
	kindString: descriptorpb.FieldDescriptorProto_TYPE_STRING,
	kindBytes:  descriptorpb.FieldDescriptorProto_TYPE_BYTES,
}

// setType sets fdp's type (and type name for messages) for value type vt.
// A failed import leaves the type name unresolved for protodesc to report.
func (fb *fileBuilder) setType(fdp *descriptorpb.FieldDescriptorProto, vt valueType, suggest string) {
	if !vt.kind.isMessage() {
		fdp.Type = scalarTypes[vt.kind].Enum()
		return
	}
	fdp.Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	switch vt.kind {
	case kindMessage:
		fdp.TypeName = proto.String(fb.qualify(fb.declare(vt.sub, suggest)))
	case kindTimestamp:
		ref, _ := fb.timestampRef()
		fdp.TypeName = proto.String(ref)
	case kindGenerated:
		_ = fb.addDep(vt.desc.ParentFile())
		fdp.TypeName = proto.String("." + string(vt.desc.FullName()))
	}
}

// mapEntryName is protoc's name for the entry message of map field s:
// tags → TagsEntry, user_ids → UserIdsEntry.
func mapEntryName(s string) string {
	var b strings.Builder
	upper := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_':
			upper = true
		case upper:
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			b.WriteByte(c)
			upper = false
		default:
			b.WriteByte(c)
		}
	}
	return b.String() + "Entry"
}
