package schema_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-go/ferry/middleware/validate"
	"github.com/ferry-go/ferry/schema"
)

// oneField is a struct with one field F of type typ and the given tags.
func oneField(typ reflect.Type, json, validateTag string) reflect.Type {
	tag := `json:` + strconv.Quote(json)
	if validateTag != "" {
		tag += ` validate:` + strconv.Quote(validateTag)
	}
	return reflect.StructOf([]reflect.StructField{{Name: "F", Type: typ, Tag: reflect.StructTag(tag)}})
}

// TestRulesAgreeWithValidator: for each body the schema and the validator
// (after decoding) give the same answer. Bodies are {"f": value}; "" for
// value means {}.
func TestRulesAgreeWithValidator(t *testing.T) {
	str, i, u8, f64 := reflect.TypeFor[string](), reflect.TypeFor[int](), reflect.TypeFor[uint8](), reflect.TypeFor[float64]()
	pstr, strs, m := reflect.TypeFor[*string](), reflect.TypeFor[[]string](), reflect.TypeFor[map[string]int]()
	dur, b := reflect.TypeFor[time.Duration](), reflect.TypeFor[bool]()
	type body struct {
		value string
		valid bool
	}
	for _, c := range []struct {
		typ    reflect.Type
		tag    string
		bodies []body
	}{
		{str, "required", []body{{"", false}, {`""`, false}, {`"x"`, true}}},
		{str, "min=2,max=3", []body{{`"a"`, false}, {`"ab"`, true}, {`"abc"`, true}, {`"abcd"`, false}, {`"éé"`, true}}},
		{str, "len=2", []body{{`"a"`, false}, {`"ab"`, true}, {`"日本"`, true}}},
		{str, "gt=1,lt=3", []body{{`"a"`, false}, {`"ab"`, true}, {`"abc"`, false}}},
		{str, "eq=x", []body{{`"x"`, true}, {`"y"`, false}}},
		{str, "ne=x", []body{{`"x"`, false}, {`"y"`, true}}},
		{str, "omitempty,min=3", []body{{`""`, true}, {`"ab"`, false}, {`"abc"`, true}, {"", true}}},
		{str, "oneof=a 'b c'", []body{{`"a"`, true}, {`"b c"`, true}, {`"b"`, false}, {`""`, false}}},
		{str, "omitempty,oneof=a b", []body{{`""`, true}, {`"c"`, false}}},
		{str, "alpha", []body{{`"abC"`, true}, {`"ab1"`, false}, {`""`, false}}},
		{str, "alphanum", []body{{`"ab1"`, true}, {`"a-b"`, false}}},
		{str, "numeric", []body{{`"-1.5"`, true}, {`"1e3"`, false}}},
		{str, "number", []body{{`"15"`, true}, {`"-1"`, false}}},
		{str, "hexadecimal", []body{{`"0xff"`, true}, {`"fg"`, false}}},
		{str, "uuid4", []body{{`"0b9e1c3e-8f3a-4c55-9a6b-0e0c7d5c1a2b"`, true}, {`"0b9e1c3e-8f3a-1c55-9a6b-0e0c7d5c1a2b"`, false}}},
		{str, "startswith=ab,endswith=z", []body{{`"abz"`, true}, {`"xabz"`, false}, {`"abzz"`, true}, {`"ab"`, false}}},
		{str, "contains=.", []body{{`"a.b"`, true}, {`"ab"`, false}}},
		{str, "email|len=3", []body{{`"a@example.com"`, true}, {`"abc"`, true}, {`"abcd"`, false}}},
		{str, "email", []body{{`"a@example.com"`, true}, {`"nope"`, false}}},
		{str, "ipv4", []body{{`"10.0.0.1"`, true}, {`"::1"`, false}}},
		{str, "ip", []body{{`"10.0.0.1"`, true}, {`"::1"`, true}, {`"x"`, false}}},
		{str, "datetime=2006-01-02", []body{{`"2026-02-28"`, true}, {`"2026-02-30"`, false}}},
		{str, "lowercase", []body{{`"abc"`, true}}}, // no keyword: the schema says nothing
		{i, "required", []body{{`0`, false}, {`5`, true}, {"", false}}},
		{i, "min=1,max=3", []body{{`0`, false}, {`1`, true}, {`3`, true}, {`4`, false}}},
		{i, "gt=1,lt=3", []body{{`1`, false}, {`2`, true}, {`3`, false}}},
		{i, "ne=2", []body{{`2`, false}, {`3`, true}}},
		{i, "oneof=1 3", []body{{`1`, true}, {`2`, false}, {`3`, true}}},
		{i, "omitempty,gte=5", []body{{`0`, true}, {`4`, false}, {`5`, true}}},
		{u8, "max=300", []body{{`255`, true}}},
		{i, "min=0x10", []body{{`15`, false}, {`16`, true}}},
		{f64, "gt=0.5,lte=1", []body{{`0.5`, false}, {`0.75`, true}, {`1`, true}, {`1.5`, false}}},
		{dur, "min=1s,max=1m", []body{{`999999999`, false}, {`1000000000`, true}, {`60000000001`, false}}},
		{b, "required", []body{{`false`, false}, {`true`, true}}},
		{pstr, "required", []body{{`null`, false}, {`""`, true}, {"", false}}},
		{pstr, "min=2", []body{{`null`, false}, {`"a"`, false}, {`"ab"`, true}}},
		{pstr, "omitempty,min=2", []body{{`null`, true}, {`"a"`, false}, {`"ab"`, true}}},
		{pstr, "omitnil,oneof=a", []body{{`null`, true}, {`"a"`, true}, {`"b"`, false}}},
		{pstr, "isdefault", []body{{`null`, true}}},
		{pstr, "required_with=Other", []body{{`null`, true}, {`"x"`, true}}},
		{strs, "required", []body{{`null`, false}, {`[]`, true}}},
		{strs, "min=1", []body{{`null`, false}, {`[]`, false}, {`["a"]`, true}}},
		{strs, "max=1", []body{{`null`, true}, {`["a","b"]`, false}}},
		{strs, "omitempty,min=1", []body{{`null`, true}, {`[]`, false}}},
		{strs, "dive,min=2", []body{{`["ab"]`, true}, {`["a"]`, false}, {`null`, true}}},
		{strs, "unique", []body{{`["a","b"]`, true}, {`["a","a"]`, false}}},
		{strs, "ne=1", []body{{`["a"]`, false}, {`["a","b"]`, true}}},
		{m, "min=1,dive,keys,alpha,endkeys,gt=0", []body{{`{"a":1}`, true}, {`{"a1":1}`, false}, {`{"a":0}`, false}, {`{}`, false}}},
	} {
		typ := oneField(c.typ, "f", c.tag)
		doc, err := schema.Document(typ)
		if err != nil {
			t.Fatal(err)
		}
		s := compile(t, doc)
		for _, bd := range c.bodies {
			in := `{}`
			if bd.value != "" {
				in = `{"f":` + bd.value + `}`
			}
			v := reflect.New(typ)
			if err := json.Unmarshal([]byte(in), v.Interface()); err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			verr := validate.Check(context.Background(), v.Interface())
			serr := check(s, []byte(in))
			if (verr == nil) != bd.valid {
				t.Errorf("%s %q: validator on %s = %v, want valid=%v (the test is wrong)", c.typ, c.tag, in, verr, bd.valid)
			}
			if (serr == nil) != bd.valid {
				t.Errorf("%s %q: schema on %s = %v, want valid=%v\nschema: %s", c.typ, c.tag, in, serr, bd.valid, doc)
			}
		}
	}
}

// TestGeneratorSharesDefs: several types, one set of definitions, with
// references into OpenAPI's components.
func TestGeneratorSharesDefs(t *testing.T) {
	g := schema.NewGenerator(schema.WithRefPrefix("#/components/schemas/"))
	a, err := g.Ref(reflect.TypeFor[*Page[Item]]())
	if err != nil {
		t.Fatal(err)
	}
	b, err := g.Ref(reflect.TypeFor[[]Item]())
	if err != nil {
		t.Fatal(err)
	}
	if a.Ref != "#/components/schemas/Page_Item" {
		t.Errorf("Ref(*Page[Item]).Ref = %q, want #/components/schemas/Page_Item", a.Ref)
	}
	if b.Items == nil || b.Items.Ref != "#/components/schemas/Item" {
		t.Errorf("Ref([]Item).Items = %+v, want a $ref to Item", b.Items)
	}
	if _, err := g.Ref(reflect.TypeFor[Unsupported]()); err == nil {
		t.Error("Ref(Unsupported) = nil error, want one")
	}
	defs := g.Defs()
	if len(defs) != 2 || defs["Item"] == nil || defs["Page_Item"] == nil {
		t.Errorf("Defs() = %v, want Item and Page_Item only (a failed Ref adds nothing)", keys(defs))
	}

	// Two types called Item: the second is qualified by its package.
	type Item struct{ X int }
	if _, err := g.Ref(reflect.TypeFor[Item]()); err != nil {
		t.Fatal(err)
	}
	if g.Defs()["schema_test.Item"] == nil {
		t.Errorf("Defs() = %v, want schema_test.Item for the second Item", keys(g.Defs()))
	}
}

func keys(m map[string]*schema.Schema) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestErrors(t *testing.T) {
	for _, typ := range []reflect.Type{nil, reflect.TypeFor[Unsupported](), reflect.TypeFor[BadKey](), reflect.TypeFor[func()](),
		reflect.TypeFor[complex64](), reflect.TypeFor[map[[2]int]string]()} {
		if _, err := schema.For(typ); err == nil {
			t.Errorf("For(%v) = nil error, want ErrUnsupported", typ)
		} else if !errors.Is(err, schema.ErrUnsupported) {
			t.Errorf("For(%v) = %v, want ErrUnsupported", typ, err)
		}
	}
	// json:"-" hides an unsupported field, as from encoding/json.
	if _, err := schema.For(oneField(reflect.TypeFor[chan int](), "-", "")); err != nil {
		t.Errorf(`For(struct{F chan int "json:\"-\""}) = %v, want no error`, err)
	}
}

func TestForEndpoint(t *testing.T) {
	e, err := schema.ForEndpoint(reflect.TypeFor[*Item](), reflect.TypeFor[*Page[Item]]())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]schema.Endpoint{"Add": e})
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]schema.Endpoint
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if r := back["Add"].Response; r == nil || r.Ref != "#/$defs/Page_Item" || r.Defs["Item"] == nil || r.Schema != schema.Draft {
		t.Errorf("ForEndpoint: response = %+v, want a self-contained document", r)
	}
	if _, err := schema.ForEndpoint(reflect.TypeFor[Unsupported](), nil); err == nil {
		t.Error("ForEndpoint(Unsupported, nil) = nil error")
	}
}
