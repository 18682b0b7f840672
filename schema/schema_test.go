package schema_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/middleware/validate"
	"github.com/ferry-go/ferry/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// compile compiles doc with a real validator, asserting formats and
// content, after checking it against the 2020-12 meta-schema.
func compile(t testing.TB, doc []byte) *jsonschema.Schema {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("schema is not JSON: %v\n%s", err, doc)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.AssertContent()
	if err := c.AddResource("mem://schema.json", v); err != nil {
		t.Fatalf("AddResource: %v\n%s", err, doc)
	}
	s, err := c.Compile("mem://schema.json")
	if err != nil {
		t.Fatalf("Compile: %v\n%s", err, doc)
	}
	return s
}

func check(s *jsonschema.Schema, instance []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(instance))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

func document(t testing.TB, typ reflect.Type) []byte {
	t.Helper()
	b, err := schema.Document(typ)
	if err != nil {
		t.Fatalf("Document(%v) = %v", typ, err)
	}
	return b
}

func TestGolden(t *testing.T) {
	for name, typ := range map[string]reflect.Type{
		"order":     reflect.TypeFor[Order](),
		"node":      reflect.TypeFor[*Node](),
		"tree":      reflect.TypeFor[Tree](),
		"clash":     reflect.TypeFor[Clash](),
		"page":      reflect.TypeFor[Page[Item]](),
		"empty":     reflect.TypeFor[Empty](),
		"oddtags":   reflect.TypeFor[OddTags](),
		"timestamp": reflect.TypeFor[*timestamppb.Timestamp](),
		"dynamic":   nil, // see protoDoc
	} {
		t.Run(name, func(t *testing.T) {
			var b []byte
			if typ == nil {
				b = protoDoc(t)
			} else {
				b = document(t, typ)
			}
			compile(t, b)
			var out bytes.Buffer
			if err := json.Indent(&out, b, "", "  "); err != nil {
				t.Fatal(err)
			}
			out.WriteByte('\n')
			file := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("Document(%v) differs from %s (run with -update and review the diff):\n%s", typ, file, out.Bytes())
			}
		})
	}
}

// TestDeterministic: the same types give the same bytes, whatever the
// order of maps inside the generator.
func TestDeterministic(t *testing.T) {
	first := document(t, reflect.TypeFor[Order]())
	for range 20 {
		if b := document(t, reflect.TypeFor[Order]()); !bytes.Equal(b, first) {
			t.Fatalf("Document(Order) changed between runs:\n%s\n%s", first, b)
		}
	}
}

// pointer returns the member of doc at a JSON pointer.
func pointer(t *testing.T, doc []byte, ptr string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: %q is not in an object", ptr, tok)
		}
		if v, ok = m[tok]; !ok {
			t.Fatalf("%s: no member %q", ptr, tok)
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestKeywords(t *testing.T) {
	order := document(t, reflect.TypeFor[Order]())
	p := "/$defs/Order/properties/"
	for _, c := range []struct{ ptr, want string }{
		{"/$ref", `"#/$defs/Order"`},
		{"/$schema", `"https://json-schema.org/draft/2020-12/schema"`},
		{p + "id", `{"minLength":1,"pattern":"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$","type":"string","x-validate":"required,uuid4"}`},
		{p + "email", `{"format":"email","minLength":1,"type":"string","x-validate":"required,email"}`},
		{p + "website", `{"anyOf":[{"const":""},{"format":"uri"}],"type":"string","x-validate":"omitempty,url"}`},
		{p + "status", `{"enum":["new","paid","on hold"],"type":"string","x-validate":"oneof=new paid 'on hold'"}`},
		{p + "level", `{"enum":[1,2,3],"format":"int64","type":"integer","x-validate":"oneof=1 2 3"}`},
		{p + "priority", `{"maximum":5,"minimum":1,"type":"integer","x-validate":"min=1,max=5"}`},
		{p + "quantity", `{"exclusiveMaximum":1000,"exclusiveMinimum":0,"format":"int32","type":"integer","x-validate":"gt=0,lt=1000"}`},
		{p + "price", `{"format":"double","minimum":0.01,"type":"number","x-validate":"gte=0.01"}`},
		{p + "discount", `{"format":"float","maximum":1,"minimum":0,"type":["number","null"],"x-validate":"omitempty,gte=0,lte=1"}`},
		{p + "tags", `{"items":{"minLength":2,"pattern":"^[a-zA-Z0-9]+$","type":"string"},"maxItems":5,"type":["array","null"],"x-validate":"max=5,dive,alphanum,min=2"}`},
		{p + "labels", `{"additionalProperties":{"maxLength":20,"type":"string"},"propertyNames":{"pattern":"^[a-zA-Z]+$"},"type":["object","null"],"x-validate":"omitempty,dive,keys,alpha,endkeys,max=20"}`},
		{p + "items", `{"items":{"$ref":"#/$defs/Item"},"minItems":1,"type":"array","x-validate":"required,min=1,dive"}`},
		{p + "ship", `{"anyOf":[{"$ref":"#/$defs/Address"},{"type":"null"}]}`},
		{p + "bill", `{"$ref":"#/$defs/Address"}`},
		{p + "notes", `{"type":"string","x-validate":"required"}`},
		{p + "attach", `{"contentEncoding":"base64","type":["string","null"]}`},
		{p + "timeout", `{"anyOf":[{"const":0},{"maximum":60000000000,"minimum":1000000000}],"format":"int64","type":"integer","x-validate":"omitempty,min=1s,max=1m"}`},
		{p + "count", `{"pattern":"^-?[0-9]+$","type":"string"}`},
		{p + "flag", `{"enum":["true","false"],"type":"string"}`},
		{p + "meta", `{}`},
		{p + "any", `{}`},
		{p + "addr", `{"type":"string"}`},
		{p + "big", `{"type":["integer","null"]}`},
		{p + "num", `{"type":"number"}`},
		{p + "seen", `{"format":"date-time","type":["string","null"]}`},
		{p + "grid", `{"items":{"items":{"format":"int64","type":"integer"},"maxItems":2,"minItems":2,"type":"array"},"maxItems":2,"minItems":2,"type":"array"}`},
		{p + "hash", `{"items":{"maximum":255,"minimum":0,"type":"integer"},"maxItems":4,"minItems":4,"type":"array"}`},
		{p + "host", `{"anyOf":[{"const":""},{"anyOf":[{"format":"hostname"},{"anyOf":[{"format":"ipv4"},{"format":"ipv6"}]}]}],"type":"string","x-validate":"omitempty,hostname|ip"}`},
		{p + "code", `{"anyOf":[{"const":""},{"allOf":[{"pattern":"Z$"}],"maxLength":5,"minLength":5,"pattern":"^AB"}],"type":"string","x-validate":"omitempty,startswith=AB,endswith=Z,len=5"}`},
		{p + "day", `{"anyOf":[{"const":""},{"format":"date"}],"type":"string","x-validate":"omitempty,datetime=2006-01-02"}`},
		{p + "sizes", `{"additionalProperties":{"format":"int64","type":"integer"},"minProperties":1,"propertyNames":{"pattern":"^-?[0-9]+$"},"type":["object","null"],"x-validate":"omitempty,min=1"}`},
		{p + "confirmed", `{"const":true,"type":"boolean","x-validate":"required"}`},
		{p + "unique", `{"items":{"format":"int64","type":"integer"},"type":["array","null"],"uniqueItems":true,"x-validate":"unique"}`},
		{p + "-", `{"type":"string"}`},
		{"/$defs/Order/required", `["id","email","items","notes","confirmed"]`},
		{"/$defs/Order/additionalProperties", `false`},
		{"/$defs/Item/properties/qty", `{"format":"int64","minimum":1,"not":{"const":0},"type":"integer","x-validate":"required,min=1"}`},
		{"/$defs/Address/properties/zip", `{"anyOf":[{"const":""},{"maxLength":5,"minLength":5,"pattern":"^[-+]?[0-9]+(?:\\.[0-9]+)?$"}],"type":"string","x-validate":"omitempty,numeric,len=5"}`},
		{"/$defs/Timestamp/properties/seconds", `{"format":"int64","type":"integer"}`},
	} {
		if got := pointer(t, order, c.ptr); got != c.want {
			t.Errorf("Document(Order)%s = %s, want %s", c.ptr, got, c.want)
		}
	}
	odd := document(t, reflect.TypeFor[OddTags]())
	for _, c := range []struct{ ptr, want string }{
		// lowercase, iscolor and frobnicate have no keyword; min=abc is not a number.
		{"/$defs/OddTags/properties/odd", `{"type":"string","x-validate":"omitempty,lowercase,iscolor,frobnicate=3,min=abc"}`},
		// 2 is the only oneof value an int can equal; min=1.5 cannot be an int.
		{"/$defs/OddTags/properties/bad", `{"enum":[2],"format":"int64","type":"integer","x-validate":"min=1.5,oneof=x 2,len="}`},
		{"/$defs/OddTags/properties/dive", `{"type":"string","x-validate":"dive,keys,endkeys,|,=,,"}`},
	} {
		if got := pointer(t, odd, c.ptr); got != c.want {
			t.Errorf("Document(OddTags)%s = %s, want %s", c.ptr, got, c.want)
		}
	}
}

// TestFieldsMatchEncodingJSON: the properties of a struct are the members
// json.Marshal writes for a value with every field set.
func TestFieldsMatchEncodingJSON(t *testing.T) {
	for _, v := range []any{
		&Clash{A: A{Name: "a", Shared: "s", OnlyA: 1}, B: B{Shared: "t", Tagged: "u"}, Name: "n", Title: "t"},
		fullOrder(),
		&Node{Name: "n", Children: []*Node{{Name: "c"}}, Parent: &Node{Name: "p"}, Attrs: map[string]*Node{"k": {Name: "v"}}},
		&Embeds{Status: "s", inner: inner{Promoted: "p", hidden: "h"}, Audit: &Audit{CreatedBy: "a"},
			Both: Both{Left{"l", "o"}, Right{"r"}}, Level: 3},
	} {
		typ := reflect.TypeOf(v).Elem()
		s, err := schema.For(typ)
		if err != nil {
			t.Fatal(err)
		}
		def := s.Defs[typ.Name()]
		var want []string
		b, _ := json.Marshal(v)
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.Token()
		for dec.More() {
			k, _ := dec.Token()
			want = append(want, k.(string))
			var skip json.RawMessage
			dec.Decode(&skip)
		}
		var got []string
		for _, p := range def.Properties {
			got = append(got, p.Name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("properties of %v = %q, want json.Marshal's members %q", typ, got, want)
		}
	}
}

func fullOrder() *Order {
	notes, disc := "leave at door", float32(0.5)
	seen := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	return &Order{
		Audit:     Audit{CreatedBy: "ann", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), Version: 2},
		Extra:     &Extra{Note: "n", Version: 9},
		ID:        "0b9e1c3e-8f3a-4c55-9a6b-0e0c7d5c1a2b",
		Email:     "ann@example.com",
		Website:   "https://example.com/x",
		Status:    "on hold",
		Level:     2,
		Priority:  5,
		Quantity:  999,
		Price:     12.5,
		Discount:  &disc,
		Tags:      []string{"ab", "c9"},
		Labels:    map[string]string{"env": "prod"},
		Items:     []Item{{SKU: "abc", Qty: 1}, {SKU: "XYZ123", Qty: 7}},
		Ship:      &Address{Street: "1 Main St", City: "Springfield", Zip: "12345"},
		Bill:      Address{Street: "2 Main St", City: "Springfield"},
		Notes:     &notes,
		Attach:    []byte{0, 1, 2, 0xff},
		Timeout:   30 * time.Second,
		Count:     -12,
		Flag:      true,
		Meta:      json.RawMessage(`{"free":["form"]}`),
		Any:       []any{1, "two"},
		Addr:      netip.MustParseAddr("2001:db8::1"),
		Big:       new(big.Int).Lsh(big.NewInt(1), 100),
		Num:       "1.5e3",
		Seen:      &seen,
		Grid:      [2][2]int{{1, 2}, {3, 4}},
		Hash:      [4]byte{1, 2, 3, 4},
		Host:      "192.0.2.7",
		Code:      "ABxyZ",
		Hex:       "0xBEEF",
		Day:       "2026-02-28",
		Sizes:     map[int]int{-1: 2},
		Confirmed: true,
		Unique:    []int{1, 2},
		Proto:     timestamppb.New(seen),
		Dash:      "dash",
	}
}

// TestValidatesEncodedValues: what encoding/json writes for values the
// validator accepts, zero values included, is valid under the schema.
func TestValidatesEncodedValues(t *testing.T) {
	empty := &Order{}
	for _, c := range []struct {
		v         any
		validated bool // the validator accepts v
	}{
		{fullOrder(), true},
		{empty, false}, // nulls and zeros everywhere: the schema allows the nulls it must
		{&Node{Name: "root", Children: []*Node{{Name: "a", Children: []*Node{{Name: "b"}}}}}, true},
		{&Tree{"a": {"b": {}}, "c": nil}, true},
		{&Clash{Name: "x"}, true},
		{&Page[Item]{Items: []Item{{SKU: "abc", Qty: 2}}}, true},
		{&Empty{}, true},
		{&Embeds{Status: "s", inner: inner{Promoted: "p"}, Audit: &Audit{CreatedBy: "a"}}, true},
		{&Embeds{}, true},
	} {
		typ := reflect.TypeOf(c.v).Elem()
		s := compile(t, document(t, typ))
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if c.validated {
			if err := validate.Check(context.Background(), c.v); err != nil {
				t.Fatalf("validate.Check(%T) = %v; the test value must be valid", c.v, err)
			}
			if err := check(s, b); err != nil {
				t.Errorf("schema of %v refuses %s:\n%v", typ, b, err)
			}
		}
	}
	// The zero Order fails the validator (required fields), and the schema
	// says why, without complaining about the nulls of optional fields.
	s := compile(t, document(t, reflect.TypeFor[Order]()))
	b, _ := json.Marshal(empty)
	err := check(s, b)
	if err == nil {
		t.Fatalf("schema of Order accepts the zero Order %s", b)
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatal(err)
	}
	for _, f := range []string{"/ship", "/labels", "/attach", "/tags", "/seen", "/discount", "/website"} {
		if strings.Contains(err.Error(), "'"+f+"'") {
			t.Errorf("schema of Order refuses the zero %s: %v", f, err)
		}
	}
}
