package schema_test

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/schema"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// testMessage is a message with every kind of field, built from a
// descriptor so no generated code is needed:
//
//	syntax = "proto2"; package ferry.test;
//	message Kitchen {
//	  enum Color { COLOR_UNSPECIFIED = 0; RED = 1; GREEN = 2; }
//	  required string name = 1;
//	  optional int32 i32 = 2; optional sint64 s64 = 3; optional uint32 u32 = 4; optional fixed64 f64 = 5;
//	  optional double d = 6; optional float f = 7; optional bool b = 8; optional bytes raw = 9;
//	  optional Color color = 10; repeated string tags = 11 [deprecated = true];
//	  map<int64, Kitchen> by_id = 12; map<bool, string> flags = 13;
//	  optional Kitchen child = 14; optional string renamed = 15 [json_name = "ALIAS"];
//	  oneof choice { string text = 16; int64 number = 17; }
//	  optional google.protobuf.Timestamp at = 18; optional google.protobuf.Duration took = 19;
//	  optional google.protobuf.Struct doc = 20; optional google.protobuf.Value val = 21;
//	  optional google.protobuf.Int64Value big = 22; optional google.protobuf.Any any = 23;
//	  optional google.protobuf.FieldMask mask = 24; repeated google.protobuf.ListValue lists = 25;
//	  optional google.protobuf.NullValue nothing = 26; optional google.protobuf.BoolValue ok = 27;
//	}
func testMessage(t testing.TB) protoreflect.MessageDescriptor {
	t.Helper()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	req := descriptorpb.FieldDescriptorProto_LABEL_REQUIRED.Enum()
	type T = descriptorpb.FieldDescriptorProto_Type
	field := func(name string, num int32, label *descriptorpb.FieldDescriptorProto_Label, typ T, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: label, Type: typ.Enum()}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	tags := field("tags", 11, rep, descriptorpb.FieldDescriptorProto_TYPE_STRING, "")
	tags.Options = &descriptorpb.FieldOptions{Deprecated: proto.Bool(true)}
	renamed := field("renamed", 15, opt, descriptorpb.FieldDescriptorProto_TYPE_STRING, "")
	renamed.JsonName = proto.String("ALIAS")
	text := field("text", 16, opt, descriptorpb.FieldDescriptorProto_TYPE_STRING, "")
	text.OneofIndex = proto.Int32(0)
	number := field("number", 17, opt, descriptorpb.FieldDescriptorProto_TYPE_INT64, "")
	number.OneofIndex = proto.Int32(0)
	mapEntry := func(name string, key T, value T, valueType string) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{
			Name:    proto.String(name),
			Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
			Field:   []*descriptorpb.FieldDescriptorProto{field("key", 1, opt, key, ""), field("value", 2, opt, value, valueType)},
		}
	}
	fd := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("ferry/test/kitchen.proto"),
		Package: proto.String("ferry.test"),
		Syntax:  proto.String("proto2"),
		Dependency: []string{
			"google/protobuf/timestamp.proto", "google/protobuf/duration.proto", "google/protobuf/struct.proto",
			"google/protobuf/wrappers.proto", "google/protobuf/any.proto", "google/protobuf/field_mask.proto",
		},
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Kitchen"),
			EnumType: []*descriptorpb.EnumDescriptorProto{{
				Name: proto.String("Color"),
				Value: []*descriptorpb.EnumValueDescriptorProto{
					{Name: proto.String("COLOR_UNSPECIFIED"), Number: proto.Int32(0)},
					{Name: proto.String("RED"), Number: proto.Int32(1)},
					{Name: proto.String("GREEN"), Number: proto.Int32(2)},
				},
			}},
			NestedType: []*descriptorpb.DescriptorProto{
				mapEntry("ByIdEntry", descriptorpb.FieldDescriptorProto_TYPE_INT64, msg, ".ferry.test.Kitchen"),
				mapEntry("FlagsEntry", descriptorpb.FieldDescriptorProto_TYPE_BOOL, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""),
			},
			OneofDecl: []*descriptorpb.OneofDescriptorProto{{Name: proto.String("choice")}},
			Field: []*descriptorpb.FieldDescriptorProto{
				field("name", 1, req, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""),
				field("i32", 2, opt, descriptorpb.FieldDescriptorProto_TYPE_INT32, ""),
				field("s64", 3, opt, descriptorpb.FieldDescriptorProto_TYPE_SINT64, ""),
				field("u32", 4, opt, descriptorpb.FieldDescriptorProto_TYPE_UINT32, ""),
				field("f64", 5, opt, descriptorpb.FieldDescriptorProto_TYPE_FIXED64, ""),
				field("d", 6, opt, descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, ""),
				field("f", 7, opt, descriptorpb.FieldDescriptorProto_TYPE_FLOAT, ""),
				field("b", 8, opt, descriptorpb.FieldDescriptorProto_TYPE_BOOL, ""),
				field("raw", 9, opt, descriptorpb.FieldDescriptorProto_TYPE_BYTES, ""),
				field("color", 10, opt, descriptorpb.FieldDescriptorProto_TYPE_ENUM, ".ferry.test.Kitchen.Color"),
				tags,
				field("by_id", 12, rep, msg, ".ferry.test.Kitchen.ByIdEntry"),
				field("flags", 13, rep, msg, ".ferry.test.Kitchen.FlagsEntry"),
				field("child", 14, opt, msg, ".ferry.test.Kitchen"),
				renamed, text, number,
				field("at", 18, opt, msg, ".google.protobuf.Timestamp"),
				field("took", 19, opt, msg, ".google.protobuf.Duration"),
				field("doc", 20, opt, msg, ".google.protobuf.Struct"),
				field("val", 21, opt, msg, ".google.protobuf.Value"),
				field("big", 22, opt, msg, ".google.protobuf.Int64Value"),
				field("any", 23, opt, msg, ".google.protobuf.Any"),
				field("mask", 24, opt, msg, ".google.protobuf.FieldMask"),
				field("lists", 25, rep, msg, ".google.protobuf.ListValue"),
				field("nothing", 26, opt, descriptorpb.FieldDescriptorProto_TYPE_ENUM, ".google.protobuf.NullValue"),
				field("ok", 27, opt, msg, ".google.protobuf.BoolValue"),
			},
		}},
	}
	// Make sure the well-known files are registered.
	_ = []proto.Message{&emptypb.Empty{}, &timestamppb.Timestamp{}, &durationpb.Duration{}, &structpb.Struct{}, &wrapperspb.Int64Value{}, &anypb.Any{}, &fieldmaskpb.FieldMask{}}
	file, err := protodesc.NewFile(fd, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return file.Messages().Get(0)
}

func protoDoc(t testing.TB) []byte {
	g := schema.NewGenerator()
	s, err := g.Message(testMessage(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Schema, s.Defs = schema.Draft, g.Defs()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kitchen fills every field of a Kitchen from protojson.
func kitchen(t testing.TB, md protoreflect.MessageDescriptor) *dynamicpb.Message {
	m := dynamicpb.NewMessage(md)
	in := `{"name":"n","i32":-3,"s64":"-9007199254740993","u32":4000000000,"f64":"18446744073709551615",
		"d":"NaN","f":1.5,"b":true,"raw":"AAH/","color":"GREEN","tags":["a","b"],
		"byId":{"-7":{"name":"inner","child":{"name":"deeper"}}},"flags":{"true":"yes","false":"no"},
		"child":{"name":"c","d":"-Infinity"},"ALIAS":"r","number":"42",
		"at":"2026-01-02T03:04:05.123Z","took":"1.5s","doc":{"a":[1,"x",null,{"b":false}]},
		"val":{"k":1},"big":"-5","any":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"2s"},
		"mask":"a.b,c","lists":[[1,2],["x"]],"nothing":null,"ok":false}`
	if err := protojson.Unmarshal([]byte(in), m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestProtoValidatesProtojson(t *testing.T) {
	md := testMessage(t)
	s := compile(t, protoDoc(t))
	full := kitchen(t, md)
	b, err := protojson.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(s, b); err != nil {
		t.Errorf("schema of Kitchen refuses protojson's %s:\n%v", b, err)
	}
	// proto2 required: a message without name is refused by both.
	if err := check(s, []byte(`{"i32":1}`)); err == nil {
		t.Error(`schema of Kitchen accepts {"i32":1}, which lacks the required name`)
	}
	for _, bad := range []string{`{"name":"x","s64":5}`, `{"name":"x","color":"BLUE"}`, `{"name":"x","i32":"1"}`, `{"name":"x","renamed":"r"}`} {
		if err := check(s, []byte(bad)); err == nil {
			t.Errorf("schema of Kitchen accepts %s, which protojson never writes", bad)
		}
	}

	// Generated messages: a trace span as the codec writes it.
	span := &tracepb.Span{
		TraceId: make([]byte, 16), SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "GET /x", Kind: tracepb.Span_SPAN_KIND_SERVER,
		StartTimeUnixNano: uint64(time.Now().UnixNano()), EndTimeUnixNano: math.MaxUint64,
		Attributes: []*commonpb.KeyValue{
			{Key: "d", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: math.Inf(1)}}},
			{Key: "i", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -1 << 62}}},
			{Key: "l", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{
				Values: []*commonpb.AnyValue{{Value: &commonpb.AnyValue_StringValue{StringValue: "x"}}}}}}},
		},
		Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "boom"},
	}
	sb, err := codec.JSON.Marshal(span)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(compile(t, document(t, reflect.TypeFor[*tracepb.Span]())), sb); err != nil {
		t.Errorf("schema of Span refuses the codec's %s:\n%v", sb, err)
	}

	// Well-known types at the top.
	for _, m := range []proto.Message{
		timestamppb.Now(), durationpb.New(-1500 * time.Millisecond), wrapperspb.Int64(-3), wrapperspb.UInt64(math.MaxUint64),
		wrapperspb.Double(math.NaN()), wrapperspb.Bytes([]byte("hi")), structpb.NewNullValue(), &fieldmaskpb.FieldMask{Paths: []string{"a_b"}},
	} {
		b, err := codec.JSON.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := check(compile(t, document(t, reflect.TypeOf(m))), b); err != nil {
			t.Errorf("schema of %T refuses the codec's %s: %v", m, b, err)
		}
	}
}

func TestProtoKeywords(t *testing.T) {
	doc := protoDoc(t)
	p := "/$defs/ferry.test.Kitchen/properties/"
	for _, c := range []struct{ ptr, want string }{
		{p + "s64", `{"format":"int64","pattern":"^-?[0-9]+$","type":"string"}`},
		{p + "f64", `{"format":"uint64","pattern":"^[0-9]+$","type":"string"}`},
		{p + "u32", `{"maximum":4294967295,"minimum":0,"type":"integer"}`},
		{p + "color", `{"enum":["COLOR_UNSPECIFIED","RED","GREEN"],"type":"string"}`},
		{p + "tags", `{"deprecated":true,"items":{"type":"string"},"type":"array"}`},
		{p + "byId", `{"additionalProperties":{"$ref":"#/$defs/ferry.test.Kitchen"},"propertyNames":{"pattern":"^-?[0-9]+$"},"type":"object"}`},
		{p + "flags", `{"additionalProperties":{"type":"string"},"propertyNames":{"enum":["true","false"]},"type":"object"}`},
		{p + "ALIAS", `{"type":"string"}`},
		{p + "at", `{"format":"date-time","type":"string"}`},
		{p + "took", `{"pattern":"^-?[0-9]+(\\.[0-9]{1,9})?s$","type":"string"}`},
		{p + "val", `{}`},
		{p + "nothing", `{"type":"null"}`},
		{p + "raw", `{"contentEncoding":"base64","type":"string"}`},
		{"/$defs/ferry.test.Kitchen/required", `["name"]`},
		{"/$defs/ferry.test.Kitchen/x-oneof", `{"choice":["text","number"]}`},
	} {
		if got := pointer(t, doc, c.ptr); got != c.want {
			t.Errorf("Kitchen%s = %s, want %s", c.ptr, got, c.want)
		}
	}
}
