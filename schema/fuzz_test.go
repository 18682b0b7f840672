package schema_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ferry-go/ferry/schema"
)

// fuzzTypes are the field types every fuzzed tag is tried on.
var fuzzTypes = []reflect.Type{
	reflect.TypeFor[string](), reflect.TypeFor[int](), reflect.TypeFor[uint8](), reflect.TypeFor[float32](),
	reflect.TypeFor[bool](), reflect.TypeFor[*string](), reflect.TypeFor[[]string](), reflect.TypeFor[[2]int](),
	reflect.TypeFor[map[string]int](), reflect.TypeFor[map[int][]string](), reflect.TypeFor[[]*Item](),
	reflect.TypeFor[time.Duration](), reflect.TypeFor[time.Time](), reflect.TypeFor[any](), reflect.TypeFor[Address](),
	reflect.TypeFor[*Address](), reflect.TypeFor[[]byte](), reflect.TypeFor[Level](),
}

// FuzzTag: no validate tag makes the generator fail or panic; the tag is
// kept verbatim; the document is a valid 2020-12 schema and Example gives
// a value for it.
func FuzzTag(f *testing.F) {
	for _, seed := range []string{
		"required", "omitempty,min=1,max=10", "dive,keys,alpha,endkeys,required", "oneof='a b' c",
		"email|url", "gt=0x10,lt=1e3", "min=-1", "len=99999999999999999999", "dive,dive,dive", "keys,endkeys",
		"omitnil,eq=", "ne=0,ne=1", "unique=Field", "datetime=2006-01-02", "startswith=^$.*,endswith=\\",
		",,,|||===", "required_if=Other 1", "-", "0x2C0x7C", "omitzero,oneof=1 01 +1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		for _, typ := range fuzzTypes {
			st := oneField(typ, "f", tag)
			s, err := schema.For(st)
			if err != nil {
				t.Fatalf("For(%v with validate %q) = %v", typ, tag, err)
			}
			if got := s.Defs[""]; got != nil {
				t.Fatalf("an unnamed struct became a definition")
			}
			f := s.Property("f")
			if got, ok := f.Extra[schema.ValidateKey]; f == nil || tag != "" && got != tag || tag == "" && ok {
				t.Fatalf("For(%v with validate %q): x-validate = %v, want the tag", typ, tag, f)
			}
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			compile(t, b)
			if _, err := schema.Example(s); err != nil {
				t.Fatalf("Example(%s) = %v", b, err)
			}
		}
	})
}
