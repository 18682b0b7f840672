package protostruct_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/errs"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fullExtra() *Extra {
	return &Extra{
		Rich:  *fullRich(),
		Flags: map[bool]string{true: "yes", false: "no"},
		TS:    timestamppb.New(time.Unix(1700000000, 5)),
		Wrap:  wrapperspb.String("wrapped"),
		Ints:  []*wrapperspb.Int64Value{wrapperspb.Int64(-5), {}},
		ByKey: map[string]*wrapperspb.BoolValue{"t": wrapperspb.Bool(true), "f": {}},
	}
}

func TestRoundTrip(t *testing.T) {
	deep := &Node{Name: "0"}
	for n, i := deep, 1; i < protostruct.MaxDepth; i++ {
		n.Kids = []*Node{{Name: fmt.Sprint(i)}}
		n = n.Kids[0]
	}
	tests := []struct {
		name string
		in   any // pointer to a struct
	}{
		{"rich", fullRich()},
		{"zero rich", &Rich{}},
		{"extra", fullExtra()},
		{"zero extra", &Extra{}},
		{"address", &Address{Street: "s", City: "c", Zip: 1}},
		{"deepest tree", deep},
		{"negative zero", &Rich{F64: negZero(), F32: float32(negZero())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := protostruct.Marshal(tt.in)
			if err != nil {
				t.Fatalf("Marshal(%s) error = %v", tt.name, err)
			}
			out := reflect.New(reflect.TypeOf(tt.in).Elem())
			if err := protostruct.Unmarshal(b, out.Interface()); err != nil {
				t.Fatalf("Unmarshal(Marshal(%s)) error = %v", tt.name, err)
			}
			if !equal(out.Interface(), tt.in) {
				t.Errorf("Unmarshal(Marshal(%s)) = %+v, want %+v", tt.name, out.Elem().Interface(), reflect.ValueOf(tt.in).Elem().Interface())
			}
		})
	}
}

func negZero() float64 { z := 0.0; return -z }

func TestMarshalByValue(t *testing.T) {
	a := Address{Street: "s", Zip: 3}
	byPtr, err := protostruct.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	byVal, err := protostruct.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if string(byPtr) != string(byVal) {
		t.Errorf("Marshal(value) = %x, want %x", byVal, byPtr)
	}
	empty, err := protostruct.Marshal((*Address)(nil))
	if err != nil || len(empty) != 0 {
		t.Errorf("Marshal(nil *Address) = %x, %v, want empty, nil", empty, err)
	}
}

// TestWireFormat pins the exact bytes of a few encodings against the
// protobuf runtime's own output for the derived descriptor.
func TestWireFormat(t *testing.T) {
	type Small struct {
		A int32   `json:"a"`
		S string  `json:"s"`
		P *int32  `json:"p"`
		L []int32 `json:"l"`
		X float64 `pb:"7"`
	}
	tests := []struct {
		in   Small
		want []byte
	}{
		{Small{}, nil},
		{Small{A: 150}, []byte{0x08, 0x96, 0x01}},
		{Small{A: -1}, []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{Small{S: "hi"}, []byte{0x12, 2, 'h', 'i'}},
		{Small{P: ptr(int32(0))}, []byte{0x18, 0}},
		{Small{L: []int32{1, 2, 300}}, []byte{0x22, 4, 1, 2, 0xac, 0x02}},
		{Small{X: 1}, []byte{0x39, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
	}
	for _, tt := range tests {
		got, err := protostruct.Marshal(&tt.in)
		if err != nil {
			t.Fatalf("Marshal(%+v) error = %v", tt.in, err)
		}
		if string(got) != string(tt.want) {
			t.Errorf("Marshal(%+v) = % x, want % x", tt.in, got, tt.want)
		}
	}
}

func TestDecodeSemantics(t *testing.T) {
	type Inner struct {
		A string `json:"a"`
		B int32  `json:"b"`
	}
	type Msg struct {
		N     int32            `json:"n"`
		L     []int32          `json:"l"`
		In    Inner            `json:"in"`
		InPtr *Inner           `json:"inPtr"`
		M     map[string]int32 `json:"m"`
		T     time.Time        `json:"t"`
	}
	var (
		tag    = func(b []byte, n protowire.Number, wt protowire.Type) []byte { return protowire.AppendTag(b, n, wt) }
		varint = func(b []byte, n protowire.Number, v uint64) []byte {
			return protowire.AppendVarint(tag(b, n, protowire.VarintType), v)
		}
		bytes = func(b []byte, n protowire.Number, v []byte) []byte {
			return protowire.AppendBytes(tag(b, n, protowire.BytesType), v)
		}
	)
	entry := func(k string, v uint64) []byte { return varint(bytes(nil, 1, []byte(k)), 2, v) }
	tests := []struct {
		name string
		data []byte
		want Msg
	}{
		{"last scalar wins", varint(varint(nil, 1, 5), 1, 6), Msg{N: 6}},
		{"unknown fields skipped", varint(bytes(varint(tag(tag(nil, 9, protowire.StartGroupType), 9, protowire.EndGroupType), 50, 1), 51, []byte("x")), 1, 2), Msg{N: 2}},
		{"packed and unpacked mix", varint(bytes(varint(nil, 2, 1), 2, []byte{2, 3}), 2, 4), Msg{L: []int32{1, 2, 3, 4}}},
		{"messages merge", bytes(bytes(nil, 3, bytes(nil, 1, []byte("a"))), 3, varint(nil, 2, 9)), Msg{In: Inner{A: "a", B: 9}}},
		{"pointer messages merge", bytes(bytes(nil, 4, bytes(nil, 1, []byte("a"))), 4, varint(nil, 2, 9)), Msg{InPtr: &Inner{A: "a", B: 9}}},
		{"map entries replace", bytes(bytes(bytes(nil, 5, entry("k", 1)), 5, entry("k", 2)), 5, entry("j", 3)), Msg{M: map[string]int32{"k": 2, "j": 3}}},
		{"map entry defaults", bytes(nil, 5, nil), Msg{M: map[string]int32{"": 0}}},
		{"empty timestamp is the epoch", bytes(nil, 6, nil), Msg{T: time.Unix(0, 0).UTC()}},
		{"timestamp merges", bytes(bytes(nil, 6, varint(nil, 1, 100)), 6, varint(nil, 2, 7)), Msg{T: time.Unix(100, 7).UTC()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Msg{N: 99, L: []int32{42}} // must be reset
			if err := protostruct.Unmarshal(tt.data, &got); err != nil {
				t.Fatalf("Unmarshal(% x) error = %v", tt.data, err)
			}
			if !equal(got, tt.want) {
				t.Errorf("Unmarshal(% x) = %+v, want %+v", tt.data, got, tt.want)
			}
		})
	}
}

func TestUnmarshalErrors(t *testing.T) {
	type Inner struct {
		S string `json:"s"`
	}
	type Msg struct {
		Small int8             `json:"small"`
		S     string           `json:"s"`
		In    *Inner           `json:"in"`
		L     []uint16         `json:"l"`
		M     map[string]Inner `json:"m"`
		F     float32          `json:"f"`
	}
	tag := protowire.AppendTag
	nest := func(depth int) []byte {
		var b []byte
		for range depth {
			b = protowire.AppendBytes(tag(nil, 1, protowire.BytesType), b)
		}
		return b
	}
	tests := []struct {
		name      string
		data      []byte
		v         any
		wantField string
		wantMsg   string
	}{
		{"truncated varint", []byte{0x08, 0x80}, &Msg{}, "small", "unexpected EOF"},
		{"truncated tag", []byte{0x80}, &Msg{}, "", "unexpected EOF"},
		{"truncated length", []byte{0x12, 5, 'a'}, &Msg{}, "s", "unexpected EOF"},
		{"field number zero", []byte{0x00, 0x01}, &Msg{}, "", "invalid field number"},
		{"wrong wire type", protowire.AppendFixed32(tag(nil, 1, protowire.Fixed32Type), 1), &Msg{}, "small", "wrong wire type fixed32, want varint"},
		{"wrong wire type float", protowire.AppendVarint(tag(nil, 6, protowire.VarintType), 1), &Msg{}, "f", "wrong wire type"},
		{"overflow int8", protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 300), &Msg{}, "small", "value 300 overflows int8"},
		{"overflow uint16 packed", protowire.AppendBytes(tag(nil, 4, protowire.BytesType), protowire.AppendVarint(nil, 70000)), &Msg{}, "l", "overflows uint16"},
		{"invalid UTF-8", protowire.AppendBytes(tag(nil, 2, protowire.BytesType), []byte{0xff}), &Msg{}, "s", "not valid UTF-8"},
		{"invalid UTF-8 nested", protowire.AppendBytes(tag(nil, 3, protowire.BytesType), protowire.AppendBytes(tag(nil, 1, protowire.BytesType), []byte{0xc0})), &Msg{}, "in.s", "not valid UTF-8"},
		{"invalid UTF-8 in map value", protowire.AppendBytes(tag(nil, 5, protowire.BytesType), protowire.AppendBytes(tag(nil, 2, protowire.BytesType), protowire.AppendBytes(tag(nil, 1, protowire.BytesType), []byte{0xc0}))), &Msg{}, "m.value.s", "not valid UTF-8"},
		{"message wire type", protowire.AppendVarint(tag(nil, 3, protowire.VarintType), 1), &Msg{}, "in", "wrong wire type varint, want length-delimited"},
		{"bad end group", tag(nil, 9, protowire.EndGroupType), &Msg{}, "", "end group"},
		{"too deep", nest(protostruct.MaxDepth + 1), &Deep{}, "", "nested deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := protostruct.Unmarshal(tt.data, tt.v)
			var e *errs.Error
			if !errors.As(err, &e) || e.Code() != errs.InvalidArgument {
				t.Fatalf("Unmarshal(% x) error = %v, want an InvalidArgument *errs.Error", tt.data, err)
			}
			if !strings.Contains(e.Message(), tt.wantMsg) {
				t.Errorf("Unmarshal(% x) message = %q, want it to contain %q", tt.data, e.Message(), tt.wantMsg)
			}
			field := ""
			if d := e.Details(); len(d) > 0 {
				field = d[0].Field
			}
			if tt.wantField != "" && field != tt.wantField {
				t.Errorf("Unmarshal(% x) detail field = %q, want %q", tt.data, field, tt.wantField)
			}
		})
	}
}

// Deep is a chain of messages for depth tests.
type Deep struct {
	Next *Deep `json:"next"`
}

func TestUnmarshalBadTarget(t *testing.T) {
	for _, v := range []any{nil, Address{}, (*Address)(nil), new(int), &struct{ C chan int }{}} {
		err := protostruct.Unmarshal(nil, v)
		if errs.CodeOf(err) != errs.Internal {
			t.Errorf("Unmarshal(nil, %T) error = %v, want an Internal error", v, err)
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	cyclic := &Deep{}
	cyclic.Next = cyclic
	type Bad struct {
		Names []string `json:"names"`
	}
	tests := []struct {
		name     string
		v        any
		wantCode errs.Code
		wantMsg  string
	}{
		{"invalid UTF-8", &Bad{Names: []string{"ok", "\xff"}}, errs.InvalidArgument, "field names: string is not valid UTF-8"},
		{"cyclic value", cyclic, errs.InvalidArgument, "nested deeper than"},
		{"not a struct", 42, errs.Internal, "got int"},
		{"unsupported type", &struct{ F func() }{}, errs.Internal, "F: unsupported type func()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := protostruct.Marshal(tt.v)
			var e *errs.Error
			if !errors.As(err, &e) || e.Code() != tt.wantCode || !strings.Contains(e.Message(), tt.wantMsg) {
				t.Errorf("Marshal(%s) error = %v, want %v containing %q", tt.name, err, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

// TestProtojsonInterop proves a generic protobuf client (grpcurl) and
// protostruct agree: JSON from encoding/json, read by protojson with the
// derived descriptor and encoded by the protobuf runtime, decodes to the
// original value; and our encoding equals the runtime's message for that
// JSON.
func TestProtojsonInterop(t *testing.T) {
	md := descriptorFor(t, reflect.TypeFor[Rich]())
	tests := []struct {
		name string
		in   *Rich
	}{
		{"full", fullRich()},
		{"zero", &Rich{}},
		{"sparse", &Rich{I32: 5, OptS: ptr("x"), Tree: &Node{Name: "n"}, ByName: map[string]int64{"a": 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON := dynamicpb.NewMessage(md)
			if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(js, fromJSON); err != nil {
				t.Fatalf("protojson.Unmarshal(%s) error = %v", js, err)
			}

			// Runtime encoding → protostruct decoding.
			wire, err := proto.Marshal(fromJSON)
			if err != nil {
				t.Fatal(err)
			}
			var got Rich
			if err := protostruct.Unmarshal(wire, &got); err != nil {
				t.Fatalf("Unmarshal(proto.Marshal(%s)) error = %v", js, err)
			}
			if !equal(&got, tt.in) {
				gotJS, _ := json.Marshal(&got)
				t.Errorf("Unmarshal(proto.Marshal(json)) = %s, want %s", gotJS, js)
			}

			// protostruct encoding → runtime decoding.
			ours, err := protostruct.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			fromOurs := dynamicpb.NewMessage(md)
			if err := proto.Unmarshal(ours, fromOurs); err != nil {
				t.Fatalf("proto.Unmarshal(Marshal(%s)) error = %v", tt.name, err)
			}
			if !proto.Equal(fromOurs, fromJSON) {
				a, _ := protojson.Marshal(fromOurs)
				b, _ := protojson.Marshal(fromJSON)
				t.Errorf("proto.Unmarshal(Marshal(%s)) = %s, want %s", tt.name, a, b)
			}
			if fromOurs.ProtoReflect().GetUnknown() != nil {
				t.Errorf("proto.Unmarshal(Marshal(%s)) left unknown fields % x", tt.name, fromOurs.ProtoReflect().GetUnknown())
			}
			// And the JSON protojson writes reads back into the Go value
			// (encoding/json cannot read 64-bit integers as strings, so go
			// through the descriptor once more).
			pj, err := protojson.Marshal(fromOurs)
			if err != nil {
				t.Fatal(err)
			}
			again := dynamicpb.NewMessage(md)
			if err := protojson.Unmarshal(pj, again); err != nil {
				t.Fatalf("protojson.Unmarshal(%s) error = %v", pj, err)
			}
			wire, _ = proto.Marshal(again)
			got = Rich{}
			if err := protostruct.Unmarshal(wire, &got); err != nil || !equal(&got, tt.in) {
				t.Errorf("round trip through protojson %s = %+v, %v; want %+v", pj, got, err, tt.in)
			}
		})
	}
}

// TestBinaryInterop covers what has no common JSON form (bool map keys,
// generated messages) through the protobuf runtime's binary codec.
func TestBinaryInterop(t *testing.T) {
	md := descriptorFor(t, reflect.TypeFor[Extra]())
	in := fullExtra()
	ours, err := protostruct.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(ours, dyn); err != nil {
		t.Fatalf("proto.Unmarshal(Marshal(extra)) error = %v", err)
	}
	flags := dyn.Get(md.Fields().ByName("flags")).Map()
	if flags.Len() != 2 || flags.Get(protoreflect.ValueOfBool(true).MapKey()).String() != "yes" {
		t.Errorf("flags in runtime message = %v, want {true: yes, false: no}", flags)
	}
	ts := dyn.Get(md.Fields().ByName("ts")).Message()
	if s := ts.Get(ts.Descriptor().Fields().ByName("seconds")).Int(); s != 1700000000 {
		t.Errorf("ts.seconds in runtime message = %d, want 1700000000", s)
	}
	wire, err := proto.Marshal(dyn)
	if err != nil {
		t.Fatal(err)
	}
	var got Extra
	if err := protostruct.Unmarshal(wire, &got); err != nil {
		t.Fatalf("Unmarshal(proto.Marshal(dynamic)) error = %v", err)
	}
	if !equal(&got, in) {
		t.Errorf("Unmarshal(proto.Marshal(dynamic)) = %+v, want %+v", got, in)
	}
}

func descriptorFor(t *testing.T, typ reflect.Type) protoreflect.MessageDescriptor {
	t.Helper()
	fd, err := protostruct.File("test/"+typ.Name()+".proto", "test", "Svc", []protostruct.Method{{Name: "Get", Input: typ, Output: typ}})
	if err != nil {
		t.Fatalf("File(%s) error = %v", typ, err)
	}
	md := fd.Messages().ByName(protoreflect.Name(typ.Name()))
	if md == nil {
		t.Fatalf("File(%s) has no message %s", typ, typ.Name())
	}
	return md
}

func TestTopLevelTime(t *testing.T) {
	in := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	b, err := protostruct.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := proto.Marshal(timestamppb.New(in))
	if string(b) != string(want) {
		t.Errorf("Marshal(time) = % x, want % x", b, want)
	}
	var got time.Time
	if err := protostruct.Unmarshal(b, &got); err != nil || !got.Equal(in) {
		t.Errorf("Unmarshal(Marshal(time)) = %v, %v, want %v", got, err, in)
	}
}

// TestConcurrentFirstUse builds plans for fresh types from many goroutines
// at once; run with -race.
func TestConcurrentFirstUse(t *testing.T) {
	type Leaf struct {
		V string `json:"v"`
	}
	type Tree struct {
		Leaves []Leaf           `json:"leaves"`
		Next   *Tree            `json:"next"`
		ByName map[string]*Tree `json:"byName"`
	}
	in := &Tree{Leaves: []Leaf{{V: "a"}}, Next: &Tree{}, ByName: map[string]*Tree{"x": {Leaves: []Leaf{{V: "b"}}}}}
	const workers = 8
	errc := make(chan error, workers)
	for range workers {
		go func() {
			b, err := protostruct.Marshal(in)
			if err != nil {
				errc <- err
				return
			}
			var out Tree
			if err := protostruct.Unmarshal(b, &out); err != nil {
				errc <- err
				return
			}
			if !equal(&out, in) {
				errc <- fmt.Errorf("Unmarshal(Marshal(tree)) = %+v, want %+v", out, in)
				return
			}
			errc <- protostruct.Check(reflect.TypeFor[Tree]())
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}

func TestNilElements(t *testing.T) {
	type Msg struct {
		L []*Address              `json:"l"`
		M map[string]*Address     `json:"m"`
		B [][]byte                `json:"b"`
		D map[string][]byte       `json:"d"`
		T []*time.Time            `json:"t"`
		W []*wrapperspb.BoolValue `json:"w"`
	}
	in := Msg{
		L: []*Address{nil, {Street: "a"}},
		M: map[string]*Address{"n": nil},
		B: [][]byte{nil},
		D: map[string][]byte{"nil": nil, "empty": {}},
		T: []*time.Time{nil},
		W: []*wrapperspb.BoolValue{nil},
	}
	want := Msg{
		L: []*Address{{}, {Street: "a"}},
		M: map[string]*Address{"n": {}},
		B: [][]byte{{}},
		D: map[string][]byte{"nil": nil, "empty": {}},
		T: []*time.Time{ptr(time.Unix(0, 0).UTC())},
		W: []*wrapperspb.BoolValue{{}},
	}
	b, err := protostruct.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var got Msg
	if err := protostruct.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !equal(&got, &want) {
		t.Errorf("Unmarshal(Marshal(%+v)) = %+v, want %+v", in, got, want)
	}
}

func TestGeneratedTopLevel(t *testing.T) {
	in := wrapperspb.String("x")
	b, err := protostruct.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var got wrapperspb.StringValue
	if err := protostruct.Unmarshal(b, &got); err != nil || got.GetValue() != "x" {
		t.Errorf("Unmarshal(Marshal(StringValue)) = %v, %v, want x", got.GetValue(), err)
	}
	if err := protostruct.Unmarshal([]byte{0x0a, 0x05}, &got); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Unmarshal(truncated, StringValue) = %v, want InvalidArgument", err)
	}
	fd, err := protostruct.File("nopkg.proto", "", "S", []protostruct.Method{{Name: "M", Input: reflect.TypeFor[Address](), Output: reflect.TypeFor[wrapperspb.StringValue]()}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fd.Services().Get(0).Methods().Get(0).Input().FullName(); got != "Address" {
		t.Errorf("File with no package: input = %s, want Address", got)
	}
}

// A varint that does not fit a 32-bit field is an error, not truncated
// (issue #11 defect 20); negative int32 values, sign-extended on the wire,
// still decode.
func TestNarrowIntegersRefuseOverflow(t *testing.T) {
	type narrow struct {
		I int32  `json:"i"`
		U uint32 `json:"u"`
	}
	minusFive := int64(-5)
	enc := func(field protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, field, protowire.VarintType), v)
	}
	for _, c := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"int32 max", enc(1, 1<<31-1), true},
		{"int32 -5", enc(1, uint64(minusFive)), true},
		{"int32 2^31", enc(1, 1<<31), false},
		{"int32 2^40", enc(1, 1<<40), false},
		{"uint32 max", enc(2, 1<<32-1), true},
		{"uint32 2^32", enc(2, 1<<32), false},
	} {
		var out narrow
		err := protostruct.Unmarshal(c.data, &out)
		if (err == nil) != c.ok {
			t.Errorf("%s: Unmarshal = %v (decoded %+v), want ok=%v", c.name, err, out, c.ok)
		}
	}
}

// One message cannot become more than MaxElements values of a repeated
// field (issue #11 defect 16: two million empty strings in 4 MiB).
func TestMaxElements(t *testing.T) {
	type many struct {
		S []string `json:"s"`
		N []int64  `json:"n"`
	}
	strs := func(n int) []byte {
		var b []byte
		for range n {
			b = protowire.AppendBytes(protowire.AppendTag(b, 1, protowire.BytesType), nil)
		}
		return b
	}
	var out many
	if err := protostruct.Unmarshal(strs(protostruct.MaxElements), &out); err != nil || len(out.S) != protostruct.MaxElements {
		t.Fatalf("MaxElements strings: %v (%d decoded), want all", err, len(out.S))
	}
	out = many{}
	if err := protostruct.Unmarshal(strs(protostruct.MaxElements+1), &out); err == nil || !strings.Contains(err.Error(), "elements") {
		t.Errorf("MaxElements+1 strings: %v, want an error saying too many elements", err)
	}
	packed := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), make([]byte, protostruct.MaxElements+1))
	out = many{}
	if err := protostruct.Unmarshal(packed, &out); err == nil {
		t.Error("MaxElements+1 packed varints: no error")
	}
}
