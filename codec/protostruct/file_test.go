package protostruct_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/errs"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Page is generic, to check how instantiations are named.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

// Svc collides with the service name used below.
type Svc struct {
	A int `json:"a"`
}

func itemA() reflect.Type {
	type Item struct {
		A string `json:"a"`
	}
	return reflect.TypeFor[Item]()
}

func itemB() reflect.Type {
	type Item struct {
		B int `json:"b"`
	}
	return reflect.TypeFor[Item]()
}

func TestFile(t *testing.T) {
	type anonHolder struct {
		Inner struct {
			X int `json:"x"`
		} `json:"inner"`
		List []struct {
			Y string `json:"y"`
		} `json:"list"`
	}
	fd, err := protostruct.File("ferry/svc.proto", "ferry.test", "Svc", []protostruct.Method{
		{Name: "Get", Input: reflect.TypeFor[*Address](), Output: reflect.TypeFor[Page[Address]]()},
		{Name: "Anon", Input: reflect.TypeFor[struct {
			Q string `json:"q"`
		}](), Output: reflect.TypeFor[anonHolder]()},
		{Name: "Items", Input: itemA(), Output: itemB()},
		{Name: "Self", Input: reflect.TypeFor[Svc](), Output: reflect.TypeFor[Node]()},
		{Name: "Wrapped", Input: reflect.TypeFor[wrapperspb.StringValue](), Output: reflect.TypeFor[time.Time]()},
	})
	if err != nil {
		t.Fatalf("File() error = %v", err)
	}
	if got := fd.Syntax(); got != protoreflect.Proto3 {
		t.Errorf("File().Syntax() = %v, want proto3", got)
	}
	var deps []string
	for i := range fd.Imports().Len() {
		deps = append(deps, fd.Imports().Get(i).Path())
	}
	if got, want := strings.Join(deps, ","), "google/protobuf/wrappers.proto,google/protobuf/timestamp.proto"; got != want {
		t.Errorf("File() imports = %s, want %s", got, want)
	}
	sd := fd.Services().ByName("Svc")
	if sd == nil {
		t.Fatal("File() has no service Svc")
	}
	rpcs := map[string]string{
		"Get":     "ferry.test.Address -> ferry.test.Page_Address",
		"Anon":    "ferry.test.AnonRequest -> ferry.test.anonHolder",
		"Items":   "ferry.test.Item -> ferry.test.Item2",
		"Self":    "ferry.test.Svc2 -> ferry.test.Node",
		"Wrapped": "google.protobuf.StringValue -> google.protobuf.Timestamp",
	}
	if sd.Methods().Len() != len(rpcs) {
		t.Errorf("File() service has %d methods, want %d", sd.Methods().Len(), len(rpcs))
	}
	for name, want := range rpcs {
		md := sd.Methods().ByName(protoreflect.Name(name))
		if md == nil {
			t.Errorf("File() has no method %s", name)
			continue
		}
		if got := string(md.Input().FullName()) + " -> " + string(md.Output().FullName()); got != want {
			t.Errorf("method %s = %s, want %s", name, got, want)
		}
	}
	holder := fd.Messages().ByName("anonHolder")
	for field, want := range map[protoreflect.Name]protoreflect.FullName{
		"inner": "ferry.test.anonHolder_Inner",
		"list":  "ferry.test.anonHolder_List",
	} {
		if got := holder.Fields().ByName(field).Message().FullName(); got != want {
			t.Errorf("anonHolder.%s type = %s, want %s", field, got, want)
		}
	}
	node := fd.Messages().ByName("Node")
	if kids := node.Fields().ByName("kids"); kids.Message() != node || !kids.IsList() {
		t.Errorf("Node.kids = %v, want repeated Node", kids)
	}

	// The result is usable as-is by a registry, as gRPC reflection needs.
	var files protoregistry.Files
	if err := files.RegisterFile(fd); err != nil {
		t.Errorf("RegisterFile(File()) error = %v", err)
	}
	// And survives a trip through its descriptor proto, as reflection sends it.
	if _, err := protodesc.NewFile(protodesc.ToFileDescriptorProto(fd), protoregistry.GlobalFiles); err != nil {
		t.Errorf("protodesc.NewFile(ToFileDescriptorProto(File())) error = %v", err)
	}
}

func TestFileFields(t *testing.T) {
	md := descriptorFor(t, reflect.TypeFor[Rich]())
	tests := []struct {
		name     protoreflect.Name
		number   protoreflect.FieldNumber
		jsonName string
		kind     protoreflect.Kind
		card     protoreflect.Cardinality
		presence bool
	}{
		{"b", 1, "b", protoreflect.BoolKind, protoreflect.Optional, false},
		{"i8", 2, "i8", protoreflect.Int32Kind, protoreflect.Optional, false},
		{"i", 5, "i", protoreflect.Int64Kind, protoreflect.Optional, false},
		{"u8", 7, "u8", protoreflect.Uint32Kind, protoreflect.Optional, false},
		{"u", 10, "u", protoreflect.Uint64Kind, protoreflect.Optional, false},
		{"f32", 12, "f32", protoreflect.FloatKind, protoreflect.Optional, false},
		{"f64", 13, "f64", protoreflect.DoubleKind, protoreflect.Optional, false},
		{"bytes", 15, "bytes", protoreflect.BytesKind, protoreflect.Optional, false},
		{"temp", 18, "temp", protoreflect.DoubleKind, protoreflect.Optional, false},
		{"when", 20, "when", protoreflect.MessageKind, protoreflect.Optional, true},
		{"took", 22, "took", protoreflect.Int64Kind, protoreflect.Optional, false},
		{"no_tag", 23, "NoTag", protoreflect.StringKind, protoreflect.Optional, false},
		{"user_id", 24, "UserID", protoreflect.StringKind, protoreflect.Optional, false},
		{"home", 28, "home", protoreflect.MessageKind, protoreflect.Optional, true},
		{"optI", 29, "optI", protoreflect.Int32Kind, protoreflect.Optional, true},
		{"optBytes", 33, "optBytes", protoreflect.BytesKind, protoreflect.Optional, true},
		{"ints", 35, "ints", protoreflect.Int32Kind, protoreflect.Repeated, false},
		{"smalls", 38, "smalls", protoreflect.Uint32Kind, protoreflect.Repeated, false},
		{"blobs", 44, "blobs", protoreflect.BytesKind, protoreflect.Repeated, false},
		{"addrPtrs", 46, "addrPtrs", protoreflect.MessageKind, protoreflect.Repeated, false},
		{"byId", 50, "byId", protoreflect.MessageKind, protoreflect.Repeated, false},
		{"pinned", 200, "pinned", protoreflect.StringKind, protoreflect.Optional, false},
	}
	for _, tt := range tests {
		fd := md.Fields().ByName(tt.name)
		if fd == nil {
			t.Errorf("Rich has no field %s", tt.name)
			continue
		}
		if fd.Number() != tt.number || fd.JSONName() != tt.jsonName || fd.Kind() != tt.kind ||
			fd.Cardinality() != tt.card || fd.HasPresence() != tt.presence {
			t.Errorf("Rich.%s = #%d json=%s %v %v presence=%v, want #%d json=%s %v %v presence=%v", tt.name,
				fd.Number(), fd.JSONName(), fd.Cardinality(), fd.Kind(), fd.HasPresence(),
				tt.number, tt.jsonName, tt.card, tt.kind, tt.presence)
		}
	}
	if n := md.Fields().Len(); n != 56 {
		t.Errorf("Rich has %d fields, want 56", n)
	}
	for _, skipped := range []protoreflect.Name{"hidden", "Skip", "skip", "Skip2", "skip2"} {
		if md.Fields().ByName(skipped) != nil {
			t.Errorf("Rich has field %s, want it skipped", skipped)
		}
	}
	byID := md.Fields().ByName("byId")
	if !byID.IsMap() || byID.MapKey().Kind() != protoreflect.Int32Kind || byID.MapValue().Kind() != protoreflect.StringKind {
		t.Errorf("Rich.byId = %v, want map<int32, string>", byID)
	}
	if got := md.Fields().ByName("ints").IsPacked(); !got {
		t.Errorf("Rich.ints packed = %v, want true", got)
	}
	if got := md.Fields().ByName("when").Message().FullName(); got != "google.protobuf.Timestamp" {
		t.Errorf("Rich.when type = %s, want google.protobuf.Timestamp", got)
	}
}

func TestFileErrors(t *testing.T) {
	addr := reflect.TypeFor[Address]()
	ok := []protostruct.Method{{Name: "Get", Input: addr, Output: addr}}
	tests := []struct {
		name               string
		path, pkg, service string
		methods            []protostruct.Method
		wantMsg            string
	}{
		{"empty path", "", "p", "S", ok, "empty file path"},
		{"bad package", "a.proto", "a..b", "S", ok, `invalid package name "a..b"`},
		{"bad service", "a.proto", "p", "1S", ok, `invalid service name "1S"`},
		{"bad method", "a.proto", "p", "S", []protostruct.Method{{Name: "get-it", Input: addr, Output: addr}}, `invalid method name "get-it"`},
		{"duplicate method", "a.proto", "p", "S", append(ok, ok...), `duplicate method "Get"`},
		{"nil input", "a.proto", "p", "S", []protostruct.Method{{Name: "Get", Output: addr}}, "method Get input: nil type"},
		{"non-struct output", "a.proto", "p", "S", []protostruct.Method{{Name: "Get", Input: addr, Output: reflect.TypeFor[string]()}}, "method Get output: string is not a struct type"},
		{"unsupported field", "a.proto", "p", "S", []protostruct.Method{{Name: "Get", Input: reflect.TypeFor[BadNode](), Output: addr}},
			"method Get input: protostruct: protostruct_test.BadNode.C: unsupported type chan int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := protostruct.File(tt.path, tt.pkg, tt.service, tt.methods)
			var e *errs.Error
			if !errors.As(err, &e) || e.Code() != errs.InvalidArgument || !strings.Contains(e.Message(), tt.wantMsg) {
				t.Errorf("File(%s) error = %v, want InvalidArgument containing %q", tt.name, err, tt.wantMsg)
			}
		})
	}
}
