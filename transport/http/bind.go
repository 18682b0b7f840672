package http

import (
	"encoding"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/server"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

var (
	protoMessageType    = reflect.TypeFor[proto.Message]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// binder sets request fields from a REST route's path wildcards and query
// parameters. It is built once per route, at Start, so a request costs map
// look-ups and reflect setters, never a walk over the type.
type binder struct {
	route string
	proto bool
	path  []pathParam
	// params holds every bindable field; byName maps each accepted
	// spelling to it, byLower the lower-cased spellings as a fallback.
	params []*param
	byName map[string]*param
	// byLower is the case-insensitive fallback, like encoding/json's.
	byLower map[string]*param
	// unbindable maps lower-cased names of fields that exist but cannot be
	// set from a string (structs, maps…) to their type, for a clear error.
	unbindable map[string]string
}

type pathParam struct {
	name string
	p    *param
}

// param is one bindable field.
type param struct {
	name string // wire (JSON) name, used in error messages
	pos  int    // index in binder.params

	// Plain structs.
	index      []int
	typ        reflect.Type // the scalar type, under any pointer or slice
	ptr, slice bool
	text       bool // *typ implements encoding.TextUnmarshaler

	// Generated protobuf messages.
	fd protoreflect.FieldDescriptor
}

// want names the type a value must parse as, for error messages.
func (p *param) want() string {
	if p.fd != nil {
		switch p.fd.Kind() {
		case protoreflect.EnumKind:
			return "enum " + string(p.fd.Enum().FullName())
		case protoreflect.BytesKind:
			return "base64 bytes"
		case protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
			return "int32"
		case protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
			return "int64"
		case protoreflect.Fixed32Kind:
			return "uint32"
		case protoreflect.Fixed64Kind:
			return "uint64"
		}
		return p.fd.Kind().String()
	}
	if p.text || p.typ.Kind() == reflect.String {
		return p.typ.String()
	}
	return p.typ.Kind().String()
}

// newBinder builds the binder for route of an endpoint whose request type is
// t (a struct type). Every path wildcard must name a single-valued field.
func newBinder(route server.Route, t reflect.Type) (*binder, error) {
	b := &binder{
		route:      route.Pattern,
		byName:     map[string]*param{},
		byLower:    map[string]*param{},
		unbindable: map[string]string{},
	}
	if reflect.PointerTo(t).Implements(protoMessageType) {
		b.proto = true
		b.protoParams(reflect.New(t).Interface().(proto.Message).ProtoReflect().Descriptor())
	} else {
		var alts []alias
		b.structParams(t, nil, &alts)
		// Alternative spellings only where they take no field's own name.
		for _, a := range alts {
			b.addName(a.name, a.p)
		}
	}
	for _, name := range wildcards(route.Path()) {
		p := b.lookup(name)
		switch {
		case p == nil && b.unbindable[strings.ToLower(name)] != "":
			return nil, fmt.Errorf("http: route %q: path wildcard {%s} names a field of type %s, which cannot be set from a path",
				route.Pattern, name, b.unbindable[strings.ToLower(name)])
		case p == nil:
			return nil, fmt.Errorf("http: route %q: path wildcard {%s} matches no field of %v", route.Pattern, name, t)
		case p.slice:
			return nil, fmt.Errorf("http: route %q: path wildcard {%s} names a list field; a path segment holds one value", route.Pattern, name)
		}
		b.path = append(b.path, pathParam{name: name, p: p})
	}
	return b, nil
}

// wildcards returns the wildcard names in a net/http path pattern.
func wildcards(path string) []string {
	var names []string
	for _, seg := range strings.Split(path, "/") {
		if len(seg) < 2 || seg[0] != '{' || seg[len(seg)-1] != '}' {
			continue
		}
		name := strings.TrimSuffix(seg[1:len(seg)-1], "...")
		if name != "$" && name != "" {
			names = append(names, name)
		}
	}
	return names
}

type alias struct {
	name string
	p    *param
}

func (b *binder) addParam(p *param, names ...string) {
	p.pos = len(b.params)
	b.params = append(b.params, p)
	for _, n := range names {
		b.addName(n, p)
	}
}

func (b *binder) addName(name string, p *param) {
	if _, ok := b.byName[name]; !ok {
		b.byName[name] = p
	}
	if l := strings.ToLower(name); b.byLower[l] == nil {
		b.byLower[l] = p
	}
}

func (b *binder) lookup(name string) *param {
	if p := b.byName[name]; p != nil {
		return p
	}
	return b.byLower[strings.ToLower(name)]
}

// structParams collects the fields of t the way encoding/json names them:
// the json tag's name, else the Go name; untagged embedded structs are
// flattened. The Go name, its lowerCamel and snake_case spellings are
// accepted as well (added after all primary names, in alts).
func (b *binder) structParams(t reflect.Type, index []int, alts *[]alias) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		idx := append(append([]int(nil), index...), i)
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			b.structParams(f.Type, idx, alts)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		p, ok := classify(f.Type)
		if !ok {
			b.unbindable[strings.ToLower(name)] = f.Type.String()
			continue
		}
		p.name, p.index = name, idx
		b.addParam(p, name)
		for _, a := range []string{f.Name, lowerCamel(f.Name), snake(f.Name)} {
			*alts = append(*alts, alias{a, p})
		}
	}
}

// classify reports how a field of type t is bound, if it can be.
func classify(t reflect.Type) (*param, bool) {
	if scalar(t) {
		return &param{typ: t, text: isText(t)}, true
	}
	switch t.Kind() {
	case reflect.Pointer:
		if e := t.Elem(); scalar(e) {
			return &param{typ: e, ptr: true, text: isText(e)}, true
		}
	case reflect.Slice:
		if e := t.Elem(); scalar(e) && (e.Kind() != reflect.Uint8 || isText(e)) {
			return &param{typ: e, slice: true, text: isText(e)}, true
		}
	}
	return nil, false
}

func isText(t reflect.Type) bool {
	return t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && reflect.PointerTo(t).Implements(textUnmarshalerType)
}

func scalar(t reflect.Type) bool {
	if isText(t) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func lowerCamel(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}

// snake spells a Go name in snake_case: "UserID" → "user_id".
func snake(s string) string {
	var sb strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))) {
				sb.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// protoParams collects the fields of a generated message by JSON name and
// proto name. Maps and message fields cannot be bound.
func (b *binder) protoParams(md protoreflect.MessageDescriptor) {
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.IsMap() || fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
			what := "map"
			if !fd.IsMap() {
				what = "message " + string(fd.Message().FullName())
			}
			b.unbindable[strings.ToLower(fd.JSONName())] = what
			b.unbindable[strings.ToLower(string(fd.Name()))] = what
			continue
		}
		b.addParam(&param{name: fd.JSONName(), fd: fd, slice: fd.IsList()}, fd.JSONName(), string(fd.Name()))
	}
}

// bind sets req's fields from r's path wildcards, then its query string.
func (b *binder) bind(r *http.Request, req any) *errs.Error {
	var (
		rv reflect.Value
		pm protoreflect.Message
	)
	if b.proto {
		pm = req.(proto.Message).ProtoReflect()
	} else {
		rv = reflect.ValueOf(req).Elem()
	}
	for _, pp := range b.path {
		if e := b.set(rv, pm, pp.p, "path parameter", pp.name, r.PathValue(pp.name), true); e != nil {
			return e
		}
	}
	q := r.URL.RawQuery
	if q == "" {
		return nil
	}
	// seen marks fields given earlier in this query: a repeated list
	// parameter appends, a repeated single one is an error.
	seen := make([]bool, len(b.params))
	for _, pp := range b.path {
		seen[pp.p.pos] = true
	}
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if kv == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(kv, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return badParam(rawKey, fmt.Sprintf("malformed query parameter name %q: %v", rawKey, err), "malformed escape")
		}
		val, err := url.QueryUnescape(rawVal)
		if err != nil {
			return badParam(key, fmt.Sprintf("query parameter %q: malformed value %q: %v", key, rawVal, err), "malformed escape")
		}
		p := b.lookup(key)
		if p == nil {
			if typ := b.unbindable[strings.ToLower(key)]; typ != "" {
				return badParam(key, fmt.Sprintf("query parameter %q names a field of type %s, which cannot be set from a query", key, typ), "cannot be set from a query")
			}
			return badParam(key, fmt.Sprintf("unknown query parameter %q", key), "unknown parameter")
		}
		first := !seen[p.pos]
		if !first && !p.slice {
			for _, pp := range b.path {
				if pp.p == p {
					return badParam(key, fmt.Sprintf("query parameter %q sets the path parameter {%s}", key, pp.name), "set by the path")
				}
			}
			return badParam(key, fmt.Sprintf("query parameter %q given more than once; it takes one value", key), "given more than once")
		}
		seen[p.pos] = true
		if e := b.set(rv, pm, p, "query parameter", key, val, first); e != nil {
			return e
		}
	}
	return nil
}

func badParam(name, msg, reason string) *errs.Error {
	return errs.New(errs.InvalidArgument, msg).WithDetails(errs.Detail{Field: name, Reason: reason})
}

// set parses s into p's field. For a list field, first resets the list so
// that query values replace what the body held rather than extend it.
func (b *binder) set(rv reflect.Value, pm protoreflect.Message, p *param, where, name, s string, first bool) *errs.Error {
	var err error
	if !utf8.ValidString(s) {
		return badParam(name, fmt.Sprintf("%s %q: value is not valid UTF-8", where, name), "not valid UTF-8")
	}
	if pm != nil {
		err = setProto(pm, p.fd, s, first)
	} else {
		err = setField(rv.FieldByIndex(p.index), p, s, first)
	}
	if err != nil {
		msg := fmt.Sprintf("%s %q: %q is not a valid %s", where, name, s, p.want())
		if te, ok := err.(textError); ok {
			msg += ": " + te.err.Error()
		}
		return badParam(name, msg, "want "+p.want())
	}
	return nil
}

// textError carries a TextUnmarshaler's own message, which says more than
// the type name alone.
type textError struct{ err error }

func (e textError) Error() string { return e.err.Error() }

func setField(f reflect.Value, p *param, s string, first bool) error {
	switch {
	case p.ptr:
		v := reflect.New(p.typ)
		if err := setScalar(v.Elem(), p.text, s); err != nil {
			return err
		}
		f.Set(v)
		return nil
	case p.slice:
		if first {
			f.SetLen(0)
		}
		n := f.Len()
		f.Set(reflect.Append(f, reflect.Zero(p.typ)))
		if err := setScalar(f.Index(n), p.text, s); err != nil {
			f.SetLen(n)
			return err
		}
		return nil
	}
	return setScalar(f, p.text, s)
}

func setScalar(v reflect.Value, text bool, s string) error {
	if text {
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			return textError{err}
		}
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		x, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(x)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		x, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(x)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return err
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return errBadValue // encoding/json cannot carry it back out
		}
		v.SetFloat(x)
	}
	return nil
}

func setProto(m protoreflect.Message, fd protoreflect.FieldDescriptor, s string, first bool) error {
	v, err := protoValue(fd, s)
	if err != nil {
		return err
	}
	if fd.IsList() {
		l := m.Mutable(fd).List()
		if first {
			l.Truncate(0)
		}
		l.Append(v)
		return nil
	}
	m.Set(fd, v)
	return nil
}

var errBadValue = errors.New("bad value")

func protoValue(fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(s), nil
	case protoreflect.BoolKind:
		x, err := strconv.ParseBool(s)
		return protoreflect.ValueOfBool(x), err
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByName(protoreflect.Name(s)); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), nil
		}
		x, err := strconv.ParseInt(s, 10, 32)
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(x)), err
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		x, err := strconv.ParseInt(s, 10, 32)
		return protoreflect.ValueOfInt32(int32(x)), err
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		x, err := strconv.ParseInt(s, 10, 64)
		return protoreflect.ValueOfInt64(x), err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		x, err := strconv.ParseUint(s, 10, 32)
		return protoreflect.ValueOfUint32(uint32(x)), err
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		x, err := strconv.ParseUint(s, 10, 64)
		return protoreflect.ValueOfUint64(x), err
	case protoreflect.FloatKind:
		x, err := strconv.ParseFloat(s, 32)
		return protoreflect.ValueOfFloat32(float32(x)), err
	case protoreflect.DoubleKind:
		x, err := strconv.ParseFloat(s, 64)
		return protoreflect.ValueOfFloat64(x), err
	case protoreflect.BytesKind:
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if x, err := enc.DecodeString(s); err == nil {
				return protoreflect.ValueOfBytes(x), nil
			}
		}
	}
	return protoreflect.Value{}, errBadValue
}
