package schema

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"path"
	"reflect"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
)

// ErrUnsupported is wrapped by the error of a type encoding/json cannot
// write (channels, functions, complex numbers, maps with struct keys).
var ErrUnsupported = errors.New("schema: type has no JSON form")

// DefsPrefix is the default start of every "$ref": the document's own
// "$defs".
const DefsPrefix = "#/$defs/"

// Option configures a Generator.
type Option func(*Generator)

// WithRefPrefix makes "$ref"s start with prefix instead of DefsPrefix, for
// definitions kept elsewhere: "#/components/schemas/" in OpenAPI 3.1. An
// empty prefix is ignored.
func WithRefPrefix(prefix string) Option {
	return func(g *Generator) {
		if prefix != "" {
			g.prefix = prefix
		}
	}
}

// Generator derives schemas for several types and keeps one definition per
// named struct type and protobuf message, shared by all of them (the
// components of an OpenAPI document). It is not safe for concurrent use.
type Generator struct {
	prefix string
	defs   map[string]*Schema // nil value: being built
	names  map[any]string     // reflect.Type or protoreflect.FullName → name in defs
	owners map[string]any

	building  map[reflect.Type]bool // named non-struct types on the stack
	recursive map[reflect.Type]bool // ... that turned out to refer to themselves
}

// NewGenerator returns a Generator with no definitions.
func NewGenerator(opts ...Option) *Generator {
	g := &Generator{
		prefix: DefsPrefix, defs: map[string]*Schema{}, names: map[any]string{}, owners: map[string]any{},
		building: map[reflect.Type]bool{}, recursive: map[reflect.Type]bool{},
	}
	for _, o := range opts {
		if o != nil {
			o(g)
		}
	}
	return g
}

// Ref returns the schema of the JSON Ferry's codec writes for a value of
// type t: named struct types and protobuf messages inside it are "$ref"s to
// definitions added to Defs. Pointers at the top are followed without
// making the schema nullable, because a request or a reply is a value. A
// protobuf message at the top is described as protojson writes it; one
// inside a plain struct as encoding/json writes it, field by field. On an
// error the generator is left as it was.
func (g *Generator) Ref(t reflect.Type) (*Schema, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: nil type", ErrUnsupported)
	}
	for t.Kind() == reflect.Pointer && !isProto(t) {
		t = t.Elem()
	}
	return g.atomic(func() (*Schema, error) {
		if isProto(t) || isProto(reflect.PointerTo(t)) {
			if t.Kind() != reflect.Pointer {
				t = reflect.PointerTo(t)
			}
			return g.message(reflect.Zero(t).Interface().(proto.Message).ProtoReflect().Descriptor())
		}
		return g.goType(t, "")
	})
}

// atomic runs f and undoes the definitions it added if it fails.
func (g *Generator) atomic(f func() (*Schema, error)) (*Schema, error) {
	before := maps.Clone(g.owners)
	s, err := f()
	if err != nil {
		for name, key := range g.owners {
			if _, ok := before[name]; !ok {
				delete(g.owners, name)
				delete(g.names, key)
				delete(g.defs, name)
			}
		}
		clear(g.building)
		clear(g.recursive)
		return nil, err
	}
	return s, nil
}

// Defs returns the definitions the "$ref"s of the schemas so far point
// to, by name: a named struct type by its Go name (qualified with its
// package name, then numbered, if two types share a name), a protobuf
// message by its full name. The map is a copy; the schemas are shared.
func (g *Generator) Defs() map[string]*Schema {
	out := make(map[string]*Schema, len(g.defs))
	for k, v := range g.defs {
		if v != nil {
			out[k] = v
		}
	}
	return out
}

// For returns a self-contained schema document for t: "$schema", the
// schema of Generator.Ref and the "$defs" it refers to.
func For(t reflect.Type) (*Schema, error) {
	g := NewGenerator()
	s, err := g.Ref(t)
	if err != nil {
		return nil, err
	}
	return g.document(s), nil
}

func (g *Generator) document(s *Schema) *Schema {
	doc := *s
	doc.Schema = Draft
	if len(g.defs) > 0 {
		doc.Defs = g.Defs()
	}
	return &doc
}

// Document is For written as JSON.
func Document(t reflect.Type) ([]byte, error) {
	s, err := For(t)
	if err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// Endpoint is the pair of schemas of one endpoint, as a service registers
// them under the metadata key "ferry.schemas" ({endpoint: Endpoint}).
type Endpoint struct {
	Request  *Schema `json:"request,omitempty"`
	Response *Schema `json:"response,omitempty"`
}

// ForEndpoint returns the documents (see For) of an endpoint's request and
// response types. A nil type leaves its schema nil.
func ForEndpoint(request, response reflect.Type) (Endpoint, error) {
	var e Endpoint
	var err error
	if request != nil {
		if e.Request, err = For(request); err != nil {
			return Endpoint{}, fmt.Errorf("request: %w", err)
		}
	}
	if response != nil {
		if e.Response, err = For(response); err != nil {
			return Endpoint{}, fmt.Errorf("response: %w", err)
		}
	}
	return e, nil
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	durationType      = reflect.TypeFor[time.Duration]()
	bigIntType        = reflect.TypeFor[big.Int]()
	jsonNumberType    = reflect.TypeFor[json.Number]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	protoMessageType  = reflect.TypeFor[proto.Message]()
	intPattern        = "^-?[0-9]+$"
	uintPattern       = "^[0-9]+$"
	floatPattern      = `^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`
)

func isProto(t reflect.Type) bool {
	return t.Kind() == reflect.Pointer && t.Implements(protoMessageType)
}

func (g *Generator) ref(name string) *Schema { return &Schema{Ref: g.prefix + name} }

// goType is the schema of what encoding/json writes for t.
func (g *Generator) goType(t reflect.Type, at string) (*Schema, error) {
	if name, ok := g.names[t]; ok && g.defs[name] != nil {
		return g.ref(name), nil
	}
	if t.Name() != "" && t.Kind() == reflect.Struct && !special(t) {
		return g.structRef(t, at)
	}
	if t.Name() != "" && (t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Array ||
		t.Kind() == reflect.Pointer) {
		// A named map, slice or array can refer to itself (type Tree
		// map[string]Tree); it becomes a definition only then.
		if g.building[t] {
			g.recursive[t] = true
			return g.ref(g.nameFor(t, t)), nil
		}
		g.building[t] = true
		s, err := g.goKind(t, at)
		delete(g.building, t)
		if err != nil || !g.recursive[t] {
			return s, err
		}
		delete(g.recursive, t)
		name := g.nameFor(t, t)
		g.defs[name] = s
		return g.ref(name), nil
	}
	return g.goKind(t, at)
}

// special reports struct types with a JSON form of their own.
func special(t reflect.Type) bool {
	return t == timeType || t == bigIntType || t.Implements(jsonMarshalerType) ||
		reflect.PointerTo(t).Implements(jsonMarshalerType) || t.Implements(textMarshalerType) ||
		reflect.PointerTo(t).Implements(textMarshalerType)
}

func (g *Generator) structRef(t reflect.Type, at string) (*Schema, error) {
	name := g.nameFor(t, t)
	if _, ok := g.defs[name]; !ok {
		g.defs[name] = nil
		obj, err := g.object(t, at)
		if err != nil {
			return nil, err
		}
		g.defs[name] = obj
	}
	return g.ref(name), nil
}

func (g *Generator) goKind(t reflect.Type, at string) (*Schema, error) {
	// Checked in the order encoding/json checks them.
	if t.Kind() == reflect.Pointer {
		s, err := g.goType(t.Elem(), at)
		if err != nil {
			return nil, err
		}
		return nullable(s), nil
	}
	switch {
	case t == timeType:
		return &Schema{Type: []string{"string"}, Format: "date-time"}, nil
	case t == bigIntType:
		return &Schema{Type: []string{"integer"}}, nil
	case t == jsonNumberType:
		return &Schema{Type: []string{"number"}}, nil
	case t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonMarshalerType):
		return &Schema{}, nil // any JSON value
	case t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType):
		return &Schema{Type: []string{"string"}}, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return &Schema{Type: []string{"boolean"}}, nil
	case reflect.Int, reflect.Int64:
		return &Schema{Type: []string{"integer"}, Format: "int64"}, nil
	case reflect.Int32:
		return &Schema{Type: []string{"integer"}, Format: "int32"}, nil
	case reflect.Int8, reflect.Int16:
		bits := t.Bits()
		return &Schema{Type: []string{"integer"}, Minimum: num(-(int64(1) << (bits - 1))), Maximum: num(int64(1)<<(bits-1) - 1)}, nil
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return &Schema{Type: []string{"integer"}, Minimum: "0"}, nil
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return &Schema{Type: []string{"integer"}, Minimum: "0", Maximum: num(int64(1)<<t.Bits() - 1)}, nil
	case reflect.Float32:
		return &Schema{Type: []string{"number"}, Format: "float"}, nil
	case reflect.Float64:
		return &Schema{Type: []string{"number"}, Format: "double"}, nil
	case reflect.String:
		return &Schema{Type: []string{"string"}}, nil
	case reflect.Interface:
		return &Schema{}, nil
	case reflect.Struct:
		return g.object(t, at)
	case reflect.Map:
		s := &Schema{Type: []string{"object", "null"}}
		k := t.Key()
		switch {
		case k.Kind() == reflect.String, k.Implements(textMarshalerType):
		case isInt(k.Kind()):
			s.PropertyNames = &Schema{Pattern: intPattern}
		case isUint(k.Kind()):
			s.PropertyNames = &Schema{Pattern: uintPattern}
		default:
			return nil, fmt.Errorf("%w: %s: map key %s", ErrUnsupported, where(at), k)
		}
		v, err := g.goType(t.Elem(), at+"{}")
		if err != nil {
			return nil, err
		}
		s.AdditionalProperties = v
		return s, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			p := reflect.PointerTo(t.Elem())
			if !p.Implements(jsonMarshalerType) && !p.Implements(textMarshalerType) {
				return &Schema{Type: []string{"string", "null"}, ContentEncoding: "base64"}, nil
			}
		}
		items, err := g.goType(t.Elem(), at+"[]")
		if err != nil {
			return nil, err
		}
		return &Schema{Type: []string{"array", "null"}, Items: items}, nil
	case reflect.Array:
		items, err := g.goType(t.Elem(), at+"[]")
		if err != nil {
			return nil, err
		}
		return &Schema{Type: []string{"array"}, Items: items, MinItems: new(t.Len()), MaxItems: new(t.Len())}, nil
	}
	return nil, fmt.Errorf("%w: %s: %s", ErrUnsupported, where(at), t)
}

func where(at string) string {
	if at == "" {
		return "value"
	}
	return strings.TrimPrefix(at, ".")
}

func num(i int64) json.Number { return json.Number(strconv.FormatInt(i, 10)) }

func isInt(k reflect.Kind) bool {
	return k == reflect.Int || k == reflect.Int8 || k == reflect.Int16 || k == reflect.Int32 || k == reflect.Int64
}

func isUint(k reflect.Kind) bool {
	return k == reflect.Uint || k == reflect.Uint8 || k == reflect.Uint16 || k == reflect.Uint32 ||
		k == reflect.Uint64 || k == reflect.Uintptr
}

// object is the schema of a struct: its fields as encoding/json writes
// them, each with the rules of its validate tag.
func (g *Generator) object(t reflect.Type, at string) (*Schema, error) {
	s := &Schema{Type: []string{"object"}, Properties: []Property{}, AdditionalProperties: False()}
	for _, f := range jsonFields(t) {
		fat := at + "." + f.name
		var fs *Schema
		var err error
		if f.quoted && !special(deref(f.typ)) {
			fs = quoted(f.typ)
		} else if fs, err = g.goType(f.typ, fat); err != nil {
			return nil, err
		}
		if tag := f.sf.Tag.Get("validate"); tag != "" {
			var required bool
			fs, required = constrain(fs, f.typ, tag, f.quoted)
			if required {
				s.Required = append(s.Required, f.name)
			}
		}
		s.Properties = append(s.Properties, Property{Name: f.name, Schema: fs})
	}
	return s, nil
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// quoted is the schema of a field with the ",string" option: its value
// inside a JSON string.
func quoted(t reflect.Type) *Schema {
	nilable := t.Kind() == reflect.Pointer
	s := &Schema{Type: []string{"string"}}
	switch k := deref(t).Kind(); {
	case isInt(k):
		s.Pattern = intPattern
	case isUint(k):
		s.Pattern = uintPattern
	case k == reflect.Float32 || k == reflect.Float64:
		s.Pattern = floatPattern
	case k == reflect.Bool:
		s.Enum = []any{"true", "false"}
	case k == reflect.String:
		s.ContentMediaType = "application/json"
	}
	if nilable {
		return nullable(s)
	}
	return s
}

// nullable returns s allowing null as well.
func nullable(s *Schema) *Schema {
	if len(s.Type) == 0 && s.Ref == "" && s.AnyOf == nil && s.Enum == nil && s.Const == nil && s.Not == nil {
		return s // any value already
	}
	if len(s.Type) > 0 && s.Ref == "" && s.AnyOf == nil && s.AllOf == nil && s.OneOf == nil && s.Not == nil && s.Const == nil {
		if !hasType(s, "null") {
			s.Type = append(s.Type, "null")
			if s.Enum != nil {
				s.Enum = append(s.Enum, nil)
			}
		}
		return s
	}
	return &Schema{AnyOf: []*Schema{s, {Type: []string{"null"}}}}
}

// notNull returns s without null.
func notNull(s *Schema) *Schema {
	if i := indexOf(s.Type, "null"); i >= 0 && len(s.Type) > 1 {
		c := *s
		c.Type = append(append([]string{}, s.Type[:i]...), s.Type[i+1:]...)
		if s.Enum != nil {
			c.Enum = nil
			for _, v := range s.Enum {
				if v != nil {
					c.Enum = append(c.Enum, v)
				}
			}
		}
		return &c
	}
	if len(s.AnyOf) == 2 && isNullSchema(s.AnyOf[1]) && s.Ref == "" && len(s.Type) == 0 {
		c := *s.AnyOf[0]
		if s.Extra != nil {
			c.Extra = maps.Clone(s.Extra)
		}
		return &c
	}
	if len(s.Type) == 0 && s.Ref == "" && s.AnyOf == nil && s.Not == nil && s.Enum == nil {
		c := *s
		c.Not = &Schema{Type: []string{"null"}}
		return &c
	}
	return s
}

func isNullSchema(s *Schema) bool {
	return len(s.Type) == 1 && s.Type[0] == "null" && s.Ref == "" && s.AnyOf == nil
}

func hasType(s *Schema, typ string) bool { return indexOf(s.Type, typ) >= 0 }

func indexOf(list []string, v string) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}

// nameFor returns the definition name of key, choosing one the first time:
// the Go name, then package.Name, then numbered.
func (g *Generator) nameFor(key any, t reflect.Type) string {
	if name, ok := g.names[key]; ok {
		return name
	}
	base := goName(t)
	candidates := []string{base}
	if pkg := path.Base(t.PkgPath()); pkg != "." && pkg != "" {
		candidates = append(candidates, sanitize(pkg)+"."+base)
	}
	return g.claim(key, candidates)
}

func (g *Generator) claim(key any, candidates []string) string {
	name := ""
	for _, c := range candidates {
		if _, taken := g.owners[c]; !taken {
			name = c
			break
		}
	}
	for i := 2; name == ""; i++ {
		if c := candidates[len(candidates)-1] + "_" + strconv.Itoa(i); g.owners[c] == nil {
			name = c
		}
	}
	g.names[key] = name
	g.owners[name] = key
	return name
}

// goName is t's name without package paths: "Page[Item]" → "Page_Item".
func goName(t reflect.Type) string {
	n := t.Name()
	var b strings.Builder
	word := strings.Builder{}
	flush := func() {
		w := word.String()
		if i := strings.LastIndexByte(w, '.'); i >= 0 {
			w = w[i+1:]
		}
		b.WriteString(w)
		word.Reset()
	}
	for _, r := range n {
		switch r {
		case '[', ',', ']', ' ', '*':
			flush()
			if r == '[' || r == ',' {
				b.WriteByte('_')
			}
		default:
			word.WriteRune(r)
		}
	}
	flush()
	return sanitize(b.String())
}

// sanitize keeps the characters OpenAPI allows in component names.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}
