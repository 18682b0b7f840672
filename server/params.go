package server

import (
	"encoding"
	"reflect"
	"strings"
)

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// ParamKinds returns the JSON kind of every request field a REST route or
// a GET can bind from a string — path wildcards and query parameters — by
// its JSON name: "string", "integer", "number", "boolean", or "array:" and
// one of those for a slice. Fields of other kinds (structs, maps) are left
// out: they come only in a JSON body. An API gateway uses it to turn a
// route's strings into the JSON the endpoint decodes.
func (e *Endpoint) ParamKinds() map[string]string {
	out := map[string]string{}
	if e.RequestType == nil || e.RequestType.Kind() != reflect.Struct {
		return out
	}
	addFields(e.RequestType, out, 0)
	return out
}

func addFields(t reflect.Type, out map[string]string, depth int) {
	if depth > 8 {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" && tag == "-" {
			continue
		}
		ft := f.Type
		if f.Anonymous && name == "" {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, out, depth+1) // promoted, as encoding/json does
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, taken := out[name]; taken {
			continue
		}
		if k := scalarKind(ft); k != "" {
			out[name] = k
			continue
		}
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() != reflect.Uint8 {
			if k := scalarKind(ft.Elem()); k != "" {
				out[name] = "array:" + k
			}
		}
	}
}

// scalarKind is the JSON kind of a value of t given as one string, "" when
// a string cannot give it.
func scalarKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "string" // time.Time, netip.Addr…: a JSON string
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return ""
}
