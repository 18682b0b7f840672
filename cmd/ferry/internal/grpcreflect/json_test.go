package grpcreflect_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/cmd/ferry/internal/grpcreflect"
	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/errs"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
)

type kid struct {
	N    int32  `json:"n"`
	Note string `json:"note"`
}

type everything struct {
	S       string            `json:"s"`
	B       bool              `json:"b"`
	I32     int32             `json:"i32"`
	I64     int64             `json:"i64"`
	U32     uint32            `json:"u32"`
	U64     uint64            `json:"u64"`
	F32     float32           `json:"f32"`
	F64     float64           `json:"f64"`
	Bytes   []byte            `json:"bytes"`
	At      time.Time         `json:"at"`
	Dur     time.Duration     `json:"dur"`
	Kid     kid               `json:"kid"`
	KidPtr  *kid              `json:"kid_ptr"`
	Kids    []kid             `json:"kids"`
	Nums    []int64           `json:"nums"`
	ByName  map[string]kid    `json:"by_name"`
	ByID    map[int64]string  `json:"by_id"`
	Opt     *string           `json:"opt"`
	NoTag   string            // no json tag: the JSON name is NoTag
	Tiny    float64           `json:"tiny"`
	Huge    float64           `json:"huge"`
	Labels  map[string]string `json:"labels"`
	Escaped string            `json:"escaped"`
}

// TestMarshalJSONMatchesEncodingJSON encodes Go values with the schema
// protostruct derives, decodes them into dynamic messages as ferry call
// does with a gRPC reply, and checks that MarshalJSON writes exactly what
// encoding/json writes for the Go value.
func TestMarshalJSONMatchesEncodingJSON(t *testing.T) {
	fd, err := protostruct.File("t.proto", "t", "T", []protostruct.Method{{Name: "Do", Input: reflect.TypeFor[everything](), Output: reflect.TypeFor[everything]()}})
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Services().Get(0).Methods().Get(0).Input()
	opt := ""
	tests := []struct {
		name string
		v    everything
	}{
		{"full", everything{
			S: "héllo", B: true, I32: -7, I64: math.MaxInt64, U32: 7, U64: math.MaxUint64, F32: 1.25, F64: -0.1,
			Bytes: []byte{0, 1, 255}, At: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC), Dur: 1500 * time.Millisecond,
			Kid: kid{N: 1, Note: "a"}, KidPtr: &kid{N: 2}, Kids: []kid{{N: 3}, {Note: "b"}}, Nums: []int64{1, -2, 1 << 60},
			ByName: map[string]kid{"z": {N: 1}, "a": {N: 2}}, ByID: map[int64]string{10: "x", 9: "y", -1: "z"},
			Opt: &opt, NoTag: "n", Tiny: 1e-9, Huge: 1e22, Labels: map[string]string{"k": "v"}, Escaped: `<a href="x">&</a>` + "\n\u2028",
		}},
		{"zero value", everything{}},
		{"zero scalars and nil presence", everything{
			At: time.Unix(0, 0).UTC(), Kids: []kid{{}}, Nums: []int64{0}, ByName: map[string]kid{"": {}}, ByID: map[int64]string{0: ""},
			Labels: map[string]string{"e": ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire, err := protostruct.Marshal(&tt.v)
			if err != nil {
				t.Fatal(err)
			}
			m := dynamicpb.NewMessage(md)
			if err := proto.Unmarshal(wire, m); err != nil {
				t.Fatal(err)
			}
			got, err := grpcreflect.MarshalJSON(m)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(&tt.v)
			if string(got) != string(want) {
				t.Errorf("MarshalJSON =\n%s\nwant (encoding/json)\n%s", got, want)
			}
		})
	}
}

// TestParseJSON reads requests as protojson does, and rejects unknown
// fields with InvalidArgument.
func TestParseJSON(t *testing.T) {
	fd, err := protostruct.File("t.proto", "t", "T", []protostruct.Method{{Name: "Do", Input: reflect.TypeFor[kid](), Output: reflect.TypeFor[kid]()}})
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Services().Get(0).Methods().Get(0).Input()
	m, err := grpcreflect.ParseJSON(md, []byte(`{"n":"5","note":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := grpcreflect.MarshalJSON(m); string(got) != `{"n":5,"note":"x"}` {
		t.Errorf("ParseJSON then MarshalJSON = %s, want {\"n\":5,\"note\":\"x\"}", got)
	}
	_, err = grpcreflect.ParseJSON(md, []byte(`{"nn":1}`))
	if errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), `unknown field "nn"`) {
		t.Errorf("ParseJSON(unknown field) = %v, want invalid_argument naming the field", err)
	}
	if sd := fd.Services().Get(0); sd != nil {
		if _, err := grpcreflect.Method(sd, "Nope"); errs.CodeOf(err) != errs.NotFound || !strings.Contains(err.Error(), "(it has [Do])") {
			t.Errorf("Method(Nope) = %v, want not_found listing Do", err)
		}
	}
}
