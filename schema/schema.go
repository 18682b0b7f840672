package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Draft is the dialect of every document this package writes.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// ValidateKey is the extension keyword holding a field's validate struct tag
// exactly as written, so that rules without a JSON Schema keyword stay
// visible.
const ValidateKey = "x-validate"

// Schema is a JSON Schema (draft 2020-12) with the keywords this package
// writes. The zero Schema is the schema true ({}), which every value
// validates; False returns the schema false.
//
// It marshals to JSON with empty keywords left out, keywords in a fixed
// order, properties in their declared order and $defs and extensions sorted
// by name, so the same types always give the same bytes. It unmarshals any
// JSON Schema: keywords it has no field for go to Extra.
type Schema struct {
	Schema      string // "$schema", set on documents only
	Ref         string // "$ref"
	Title       string
	Description string
	Deprecated  bool

	// Type lists the JSON types allowed ("null", "boolean", "object",
	// "array", "number", "integer", "string"); one type is written as a
	// string, several as an array.
	Type             []string
	Format           string
	ContentEncoding  string
	ContentMediaType string
	Const            any   // nil: no const (this package never writes const null)
	Enum             []any // strings, bools, json.Number and nil for null
	Examples         []any // sample values, the first one used by Example

	MinLength *int
	MaxLength *int
	Pattern   string // an ECMA-262 regular expression, not anchored

	Minimum          json.Number
	Maximum          json.Number
	ExclusiveMinimum json.Number
	ExclusiveMaximum json.Number

	Items       *Schema
	MinItems    *int
	MaxItems    *int
	UniqueItems bool

	Properties           []Property
	Required             []string
	AdditionalProperties *Schema
	PropertyNames        *Schema
	MinProperties        *int
	MaxProperties        *int

	AllOf []*Schema
	AnyOf []*Schema
	OneOf []*Schema
	Not   *Schema

	// Defs holds named schemas that "$ref"s point to ("$defs").
	Defs map[string]*Schema
	// Extra holds other keywords, such as ValidateKey, by name.
	Extra map[string]any

	never bool // the schema false
}

// Property is one named member of an object schema.
type Property struct {
	Name   string
	Schema *Schema
}

// False returns the schema false, which no value validates.
func False() *Schema { return &Schema{never: true} }

// IsFalse reports whether s is the schema false.
func (s *Schema) IsFalse() bool { return s != nil && s.never }

// Property returns the schema of the property called name, or nil.
func (s *Schema) Property(name string) *Schema {
	for _, p := range s.Properties {
		if p.Name == name {
			return p.Schema
		}
	}
	return nil
}

// MarshalJSON writes s with its keywords in a fixed order.
func (s Schema) MarshalJSON() ([]byte, error) {
	if s.never {
		return []byte("false"), nil
	}
	w := &objWriter{}
	w.str("$schema", s.Schema)
	w.str("$ref", s.Ref)
	w.str("title", s.Title)
	w.str("description", s.Description)
	if s.Deprecated {
		w.put("deprecated", true)
	}
	switch len(s.Type) {
	case 0:
	case 1:
		w.put("type", s.Type[0])
	default:
		w.put("type", s.Type)
	}
	w.str("format", s.Format)
	w.str("contentEncoding", s.ContentEncoding)
	w.str("contentMediaType", s.ContentMediaType)
	if s.Const != nil {
		w.put("const", s.Const)
	}
	if s.Enum != nil {
		w.put("enum", s.Enum)
	}
	if s.Examples != nil {
		w.put("examples", s.Examples)
	}
	w.num("minLength", s.MinLength)
	w.num("maxLength", s.MaxLength)
	w.str("pattern", s.Pattern)
	w.str2("minimum", s.Minimum)
	w.str2("maximum", s.Maximum)
	w.str2("exclusiveMinimum", s.ExclusiveMinimum)
	w.str2("exclusiveMaximum", s.ExclusiveMaximum)
	if s.Items != nil {
		w.put("items", s.Items)
	}
	w.num("minItems", s.MinItems)
	w.num("maxItems", s.MaxItems)
	if s.UniqueItems {
		w.put("uniqueItems", true)
	}
	if s.Properties != nil {
		p := &objWriter{}
		for _, prop := range s.Properties {
			p.put(prop.Name, prop.Schema)
		}
		w.raw("properties", p.bytes())
	}
	if s.Required != nil {
		w.put("required", s.Required)
	}
	if s.AdditionalProperties != nil {
		w.put("additionalProperties", s.AdditionalProperties)
	}
	if s.PropertyNames != nil {
		w.put("propertyNames", s.PropertyNames)
	}
	w.num("minProperties", s.MinProperties)
	w.num("maxProperties", s.MaxProperties)
	w.list("allOf", s.AllOf)
	w.list("anyOf", s.AnyOf)
	w.list("oneOf", s.OneOf)
	if s.Not != nil {
		w.put("not", s.Not)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Extra)) {
		w.put(k, s.Extra[k])
	}
	if s.Defs != nil {
		d := &objWriter{}
		for _, k := range slices.Sorted(maps.Keys(s.Defs)) {
			d.put(k, s.Defs[k])
		}
		w.raw("$defs", d.bytes())
	}
	return w.bytes(), w.err
}

// objWriter writes one JSON object, member by member, without HTML
// escaping (patterns hold < > and &).
type objWriter struct {
	buf bytes.Buffer
	err error
}

func (w *objWriter) raw(key string, v []byte) {
	if w.buf.Len() == 0 {
		w.buf.WriteByte('{')
	} else {
		w.buf.WriteByte(',')
	}
	w.buf.Write(encode(key, &w.err))
	w.buf.WriteByte(':')
	w.buf.Write(v)
}

func (w *objWriter) put(key string, v any) { w.raw(key, encode(v, &w.err)) }

func (w *objWriter) str(key, v string) {
	if v != "" {
		w.put(key, v)
	}
}

func (w *objWriter) str2(key string, v json.Number) {
	if v != "" {
		w.put(key, v)
	}
}

func (w *objWriter) num(key string, v *int) {
	if v != nil {
		w.put(key, *v)
	}
}

func (w *objWriter) list(key string, v []*Schema) {
	if v != nil {
		w.put(key, v)
	}
}

func (w *objWriter) bytes() []byte {
	if w.buf.Len() == 0 {
		return []byte("{}")
	}
	w.buf.WriteByte('}')
	return w.buf.Bytes()
}

func encode(v any, errp *error) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		if *errp == nil {
			*errp = err
		}
		return []byte("null")
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// UnmarshalJSON reads any JSON Schema: a boolean or an object. Keywords
// without a field are kept in Extra, numbers as json.Number.
func (s *Schema) UnmarshalJSON(data []byte) error {
	*s = Schema{}
	switch string(bytes.TrimSpace(data)) {
	case "true":
		return nil
	case "false":
		s.never = true
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("schema: a schema is a boolean or an object, not %s", clip(data))
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		key := kt.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if err := s.setKeyword(key, raw); err != nil {
			return fmt.Errorf("schema: keyword %q: %w", key, err)
		}
	}
	_, err = dec.Token()
	return err
}

func (s *Schema) setKeyword(key string, raw json.RawMessage) error {
	switch key {
	case "$schema":
		return json.Unmarshal(raw, &s.Schema)
	case "$ref":
		return json.Unmarshal(raw, &s.Ref)
	case "title":
		return json.Unmarshal(raw, &s.Title)
	case "description":
		return json.Unmarshal(raw, &s.Description)
	case "deprecated":
		return json.Unmarshal(raw, &s.Deprecated)
	case "type":
		var one string
		if json.Unmarshal(raw, &one) == nil {
			s.Type = []string{one}
			return nil
		}
		return json.Unmarshal(raw, &s.Type)
	case "format":
		return json.Unmarshal(raw, &s.Format)
	case "contentEncoding":
		return json.Unmarshal(raw, &s.ContentEncoding)
	case "contentMediaType":
		return json.Unmarshal(raw, &s.ContentMediaType)
	case "const":
		return decodeAny(raw, &s.Const)
	case "enum":
		var v any
		if err := decodeAny(raw, &v); err != nil {
			return err
		}
		list, ok := v.([]any)
		if !ok {
			return errors.New("not an array")
		}
		s.Enum = list
		return nil
	case "examples":
		var v any
		if err := decodeAny(raw, &v); err != nil {
			return err
		}
		list, ok := v.([]any)
		if !ok {
			return errors.New("not an array")
		}
		s.Examples = list
		return nil
	case "minLength":
		return json.Unmarshal(raw, &s.MinLength)
	case "maxLength":
		return json.Unmarshal(raw, &s.MaxLength)
	case "pattern":
		return json.Unmarshal(raw, &s.Pattern)
	case "minimum":
		return json.Unmarshal(raw, &s.Minimum)
	case "maximum":
		return json.Unmarshal(raw, &s.Maximum)
	case "exclusiveMinimum":
		return json.Unmarshal(raw, &s.ExclusiveMinimum)
	case "exclusiveMaximum":
		return json.Unmarshal(raw, &s.ExclusiveMaximum)
	case "items":
		return json.Unmarshal(raw, &s.Items)
	case "minItems":
		return json.Unmarshal(raw, &s.MinItems)
	case "maxItems":
		return json.Unmarshal(raw, &s.MaxItems)
	case "uniqueItems":
		return json.Unmarshal(raw, &s.UniqueItems)
	case "properties":
		return decodeProperties(raw, &s.Properties)
	case "required":
		return json.Unmarshal(raw, &s.Required)
	case "additionalProperties":
		return json.Unmarshal(raw, &s.AdditionalProperties)
	case "propertyNames":
		return json.Unmarshal(raw, &s.PropertyNames)
	case "minProperties":
		return json.Unmarshal(raw, &s.MinProperties)
	case "maxProperties":
		return json.Unmarshal(raw, &s.MaxProperties)
	case "allOf":
		return json.Unmarshal(raw, &s.AllOf)
	case "anyOf":
		return json.Unmarshal(raw, &s.AnyOf)
	case "oneOf":
		return json.Unmarshal(raw, &s.OneOf)
	case "not":
		return json.Unmarshal(raw, &s.Not)
	case "$defs":
		return json.Unmarshal(raw, &s.Defs)
	}
	var v any
	if err := decodeAny(raw, &v); err != nil {
		return err
	}
	if s.Extra == nil {
		s.Extra = map[string]any{}
	}
	s.Extra[key] = v
	return nil
}

func decodeAny(raw json.RawMessage, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// decodeProperties keeps the members in the order they are written.
func decodeProperties(raw json.RawMessage, out *[]Property) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not an object")
	}
	props := []Property{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		p := Property{Name: kt.(string)}
		if err := dec.Decode(&p.Schema); err != nil {
			return err
		}
		props = append(props, p)
	}
	*out = props
	return nil
}

func clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}
