package protostruct_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/errs"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// BadNode is recursive and has one unsupported field.
type BadNode struct {
	Kids []*BadNode `json:"kids"`
	C    chan int   `json:"c"`
}

func TestCheckOK(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[Rich](),
		reflect.TypeFor[*Rich](),
		reflect.TypeFor[Extra](),
		reflect.TypeFor[Node](),
		reflect.TypeFor[struct{}](),
		reflect.TypeFor[wrapperspb.StringValue](),
		reflect.TypeFor[struct {
			hidden chan int     // unexported: skipped
			Skip   func()       `json:"-"`
			Skip2  any          `pb:"-"`
			Bytes  [][]byte     `json:"bytes"`
			M      map[int]Blob `json:"m"`
			A      *Address     `json:"a" pb:"18999"`
			B      Address      `json:"b" pb:"20000"`
			Max    string       `pb:"536870911"`
		}](),
	} {
		if err := protostruct.Check(typ); err != nil {
			t.Errorf("Check(%s) = %v, want nil", typ, err)
		}
	}
}

func TestCheckErrors(t *testing.T) {
	tests := []struct {
		typ       reflect.Type
		wantField string
		wantMsg   string
	}{
		{reflect.TypeFor[struct{ X any }](), "X", "unsupported type interface {}"},
		{reflect.TypeFor[struct{ X chan int }](), "X", "unsupported type chan int"},
		{reflect.TypeFor[struct{ X func() }](), "X", "unsupported type func()"},
		{reflect.TypeFor[struct{ X complex128 }](), "X", "unsupported type complex128"},
		{reflect.TypeFor[struct{ X complex64 }](), "X", "unsupported type complex64"},
		{reflect.TypeFor[struct{ X uintptr }](), "X", "unsupported type uintptr"},
		{reflect.TypeFor[struct{ X unsafe.Pointer }](), "X", "unsupported type unsafe.Pointer"},
		{reflect.TypeFor[struct{ X [3]int }](), "X", "arrays"},
		{reflect.TypeFor[struct{ X [][]int }](), "X", "nested slices"},
		{reflect.TypeFor[struct{ X []map[string]int }](), "X", "slice of maps"},
		{reflect.TypeFor[struct{ X map[string][]int }](), "X", "map values that are slices"},
		{reflect.TypeFor[struct{ X map[string]map[string]int }](), "X", "map values that are slices or maps"},
		{reflect.TypeFor[struct{ X map[float64]int }](), "X", "map key type float64"},
		{reflect.TypeFor[struct{ X map[Address]int }](), "X", "map key type"},
		{reflect.TypeFor[struct{ X map[string]*int }](), "X", "map value pointer to a scalar"},
		{reflect.TypeFor[struct{ X **int }](), "X", "pointer to pointers"},
		{reflect.TypeFor[struct{ X *[]int }](), "X", "pointer to slices"},
		{reflect.TypeFor[struct{ X []*int }](), "X", "slice of pointers to scalars"},
		{reflect.TypeFor[struct{ Address }](), "Address", "embedded struct fields need a json tag with a name"},
		{reflect.TypeFor[struct{ *Address }](), "Address", "embedded struct"},
		{reflect.TypeFor[struct {
			Address `json:",omitempty"`
		}](), "Address", "embedded struct"},
		{reflect.TypeFor[struct {
			A string `pb:"2"`
			B string
		}](), "B", "field number 2 already used by A"},
		{reflect.TypeFor[struct {
			A string `pb:"0"`
		}](), "A", "field number 0 out of range"},
		{reflect.TypeFor[struct {
			A string `pb:"536870912"`
		}](), "A", "out of range"},
		{reflect.TypeFor[struct {
			A string `pb:"19000"`
		}](), "A", "reserved"},
		{reflect.TypeFor[struct {
			A string `pb:"19999"`
		}](), "A", "reserved"},
		{reflect.TypeFor[struct {
			A string `pb:"one"`
		}](), "A", `pb tag "one" is not a field number`},
		// Built at run time: vet rejects duplicate json tags in source.
		{twoStrings(`json:"x"`, `json:"x"`), "B", `protobuf name "x" already used by A`},
		{twoStrings(`json:"a-b"`, `json:"a-b"`), "B", `JSON name "a-b" already used by A`},
		{reflect.TypeFor[struct {
			UserID string
			U      string `json:"user_id"`
		}](), "U", `protobuf name "user_id" already used by UserID`},
		{reflect.TypeFor[struct {
			In struct{ C chan int }
		}](), "In.C", "unsupported type chan int"},
		{reflect.TypeFor[struct {
			L []struct{ F func() }
		}](), "L.F", "unsupported type func()"},
		{reflect.TypeFor[struct {
			M map[string]*BadNode
		}](), "M.C", "unsupported type chan int"},
		{reflect.TypeFor[BadNode](), "C", "unsupported type chan int"},
		{reflect.TypeFor[int](), "", "not a struct type"},
	}
	for _, tt := range tests {
		err := protostruct.Check(tt.typ)
		var e *errs.Error
		if !errors.As(err, &e) || e.Code() != errs.InvalidArgument {
			t.Errorf("Check(%s) = %v, want an InvalidArgument *errs.Error", tt.typ, err)
			continue
		}
		if !strings.Contains(e.Message(), tt.wantMsg) {
			t.Errorf("Check(%s) = %q, want it to contain %q", tt.typ, e.Message(), tt.wantMsg)
		}
		if tt.wantField != "" {
			if d := e.Details(); len(d) != 1 || d[0].Field != tt.wantField {
				t.Errorf("Check(%s) details = %v, want field %q", tt.typ, d, tt.wantField)
			}
			if !strings.Contains(e.Message(), "."+tt.wantField+":") {
				t.Errorf("Check(%s) = %q, want it to name %q", tt.typ, e.Message(), tt.wantField)
			}
		}
		// The same error again, from the cache.
		if again := protostruct.Check(tt.typ); again == nil || again.Error() != err.Error() {
			t.Errorf("Check(%s) second call = %v, want %v", tt.typ, again, err)
		}
	}
}

// twoStrings returns struct{ A string `tagA`; B string `tagB` }.
func twoStrings(tagA, tagB reflect.StructTag) reflect.Type {
	return reflect.StructOf([]reflect.StructField{
		{Name: "A", Type: reflect.TypeFor[string](), Tag: tagA},
		{Name: "B", Type: reflect.TypeFor[string](), Tag: tagB},
	})
}
