package protostruct_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/errs"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type (
	pinnedInner struct {
		N int32 `pb:"1" json:"n"`
	}
	pinned struct {
		Name  string                  `pb:"2" json:"name"`
		Inner pinnedInner             `pb:"1" json:"inner"`
		Kids  []*pinned               `pb:"3" json:"kids"`
		When  time.Time               `pb:"4" json:"when"`
		Wrap  *wrapperspb.StringValue `pb:"5" json:"wrap"`
		_     struct{}                `pb:"6,reserved"`
		skip  int
		Skip  string `json:"-"`
	}
	loose struct {
		Name  string                `pb:"1" json:"name"`
		Inner looseInner            `pb:"2" json:"inner"`
		ByKey map[string]looseInner `pb:"3"`
		_     struct{}              `pb:"reserved"`
	}
	looseInner struct {
		N int32 `json:"n"`
	}
)

func TestCheckTagged(t *testing.T) {
	if err := protostruct.CheckTagged(reflect.TypeFor[*pinned]()); err != nil {
		t.Errorf("CheckTagged(pinned) error = %v", err)
	}
	err := protostruct.CheckTagged(reflect.TypeFor[loose]())
	var e *errs.Error
	if !errors.As(err, &e) || e.Code() != errs.InvalidArgument {
		t.Fatalf("CheckTagged(loose) error = %v, want InvalidArgument", err)
	}
	if !strings.Contains(e.Message(), "protostruct_test.looseInner.N: no pb tag (its number 1 comes from its position in the struct)") {
		t.Errorf("CheckTagged(loose) message = %q, want it to name looseInner.N", e.Message())
	}
	var fields []string
	for _, d := range e.Details() {
		fields = append(fields, d.Field)
	}
	if got, want := strings.Join(fields, ","), "protostruct_test.looseInner.N,protostruct_test.loose._"; got != want {
		t.Errorf("CheckTagged(loose) detail fields = %s, want %s", got, want)
	}
	// A type that does not map at all is Check's error.
	if err := protostruct.CheckTagged(reflect.TypeFor[struct{ C chan int }]()); err == nil || !strings.Contains(err.Error(), "chan") {
		t.Errorf("CheckTagged(chan field) error = %v, want Check's", err)
	}
}

func TestReserved(t *testing.T) {
	type ok struct {
		A string   `json:"a"`
		_ struct{} `pb:"reserved"`
		C string   `json:"c"`
		_ struct{} `pb:"9,reserved"`
	}
	fd, err := protostruct.File("ferry/r.proto", "r", "R", []protostruct.Method{{Name: "M", Input: reflect.TypeFor[ok](), Output: reflect.TypeFor[ok]()}})
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Messages().ByName("ok")
	if got := md.ReservedRanges(); got.Len() != 2 || !got.Has(2) || !got.Has(9) || got.Has(3) {
		t.Errorf("reserved ranges of ok = %v, want 2 and 9", got)
	}
	if f := md.Fields().ByNumber(3); f == nil || f.Name() != "c" {
		t.Errorf("field 3 of ok = %v, want c: a reserving blank keeps its position", f)
	}
	// Encoding ignores the blank fields.
	b, err := protostruct.Marshal(&ok{A: "x", C: "y"})
	if err != nil {
		t.Fatal(err)
	}
	var back ok
	if err := protostruct.Unmarshal(b, &back); err != nil || back.A != "x" || back.C != "y" {
		t.Errorf("round trip = %+v, %v", back, err)
	}

	for name, typ := range map[string]reflect.Type{
		"number reserved and used by A": reflect.TypeFor[struct {
			_ struct{} `pb:"1,reserved"`
			A string   `pb:"1"`
		}](),
		"number 2 is reserved and used by B": reflect.TypeFor[struct {
			B string   `pb:"2"`
			_ struct{} `pb:"2,reserved"`
		}](),
		"only a blank field": reflect.TypeFor[struct {
			A string `pb:"1,reserved"`
		}](),
		`want "N,reserved"`: reflect.TypeFor[struct {
			_ struct{} `pb:"1,reserved,x"`
		}](),
	} {
		err := protostruct.Check(typ)
		want := name
		if name == "number reserved and used by A" {
			want = "field number 1 is reserved and used by _"
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%s) error = %v, want %q", typ, err, want)
		}
	}
}
