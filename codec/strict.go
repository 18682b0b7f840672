package codec

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ferry-go/ferry/errs"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// JSONOptions make JSON decoding stricter than encoding/json's defaults.
// Every JSON codec refuses invalid UTF-8 (RFC 8259 requires UTF-8, and the
// protobuf codec refuses it in strings) and quotes at most a short prefix
// of a bad value in its errors; these options add more.
type JSONOptions struct {
	// DisallowUnknownFields refuses an object key that names no field of
	// the target struct, instead of ignoring it.
	DisallowUnknownFields bool
	// CaseSensitive refuses an object key that matches a field's JSON name
	// only when case is ignored ("Name" for "name"), which encoding/json
	// otherwise accepts; the error names the field meant.
	CaseSensitive bool
}

// NewJSON returns a JSON codec that decodes as o says; it encodes as JSON
// does. Its content type is application/json. The zero JSONOptions give a
// codec that behaves as JSON.
func NewJSON(o JSONOptions) Codec {
	if o == (JSONOptions{}) {
		return JSON
	}
	return strictJSON{o: o}
}

type strictJSON struct {
	jsonCodec
	o JSONOptions
}

func (c strictJSON) Unmarshal(data []byte, v any) error {
	if err := checkUTF8(data); err != nil {
		return err
	}
	if m, ok := v.(proto.Message); ok {
		opts := protojson.UnmarshalOptions{DiscardUnknown: !c.o.DisallowUnknownFields}
		return jsonError(opts.Unmarshal(data, m))
	}
	if err := checkKeys(data, reflect.TypeOf(v), c.o); err != nil {
		return err
	}
	return jsonError(json.Unmarshal(data, v))
}

// checkUTF8 refuses invalid UTF-8, naming the offset of the first bad byte.
func checkUTF8(data []byte) error {
	if utf8.Valid(data) {
		return nil
	}
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return fmt.Errorf("invalid UTF-8 at byte %d: JSON must be UTF-8", i)
		}
		i += n
	}
	return errors.New("invalid UTF-8: JSON must be UTF-8")
}

// maxErrorText bounds the text of a decoding error that is not rewritten.
const maxErrorText = 256

// jsonError rewrites a decoding error so that it quotes at most a short
// prefix of the offending value: encoding/json puts the whole literal in
// an UnmarshalTypeError ("number 111…" a megabyte long).
func jsonError(err error) error {
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf("cannot use %s as %s", errs.Clip(te.Value), te.Type)
		}
		return fmt.Errorf("field %q: cannot use %s as %s", errs.Clip(te.Field), errs.Clip(te.Value), te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %s", se.Offset, clipText(se.Error()))
	}
	if msg := err.Error(); len(msg) > maxErrorText {
		return errors.New(clipText(msg))
	}
	return err
}

func clipText(s string) string {
	if len(s) <= maxErrorText {
		return s
	}
	n := maxErrorText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkKeys walks data against t, refusing keys that o disallows. It only
// looks at object keys; encoding/json then decodes as usual.
func checkKeys(data []byte, t reflect.Type, o JSONOptions) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	err := walk(dec, t, o, "")
	if err == io.EOF {
		return nil
	}
	var se *json.SyntaxError
	if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil // encoding/json reports the syntax error itself
	}
	return err
}

// walk reads one value from dec; t is its Go type, nil when the value is
// not checked (an unknown field, an interface, a custom unmarshaller).
func walk(dec *json.Decoder, t reflect.Type, o JSONOptions, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(jsonUnmarshalerType) ||
		reflect.PointerTo(t).Implements(textUnmarshalerType)) {
		t = nil
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	switch d {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := walk(dec, elem, o, strings.TrimSuffix(path, ".")+"[]."); err != nil {
				return err
			}
		}
	case '{':
		var fields *fieldSet
		var elem reflect.Type
		switch {
		case t != nil && t.Kind() == reflect.Struct:
			fields = fieldsOf(t)
		case t != nil && t.Kind() == reflect.Map:
			elem = t.Elem()
		}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			vt := elem
			if fields != nil {
				ft, exact := fields.exact[key]
				vt = ft
				if !exact {
					meant, folded := fields.folded[strings.ToLower(key)]
					switch {
					case folded && o.CaseSensitive:
						return fmt.Errorf("field %q: no such field; names are case-sensitive, did you mean %q?", errs.Clip(path+key), path+meant)
					case folded:
						vt = fields.exact[meant]
					case o.DisallowUnknownFields:
						return fmt.Errorf("field %q: no such field", errs.Clip(path+key))
					}
				}
			}
			if err := walk(dec, vt, o, path+key+"."); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// fieldSet is what a struct type decodes from JSON: its fields by exact
// JSON name, and by lower-cased name.
type fieldSet struct {
	exact  map[string]reflect.Type
	folded map[string]string // lower-cased name → exact name
}

var fieldSets sync.Map // reflect.Type → *fieldSet

func fieldsOf(t reflect.Type) *fieldSet {
	if fs, ok := fieldSets.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{exact: map[string]reflect.Type{}, folded: map[string]string{}}
	addFields(fs, t, map[reflect.Type]bool{})
	v, _ := fieldSets.LoadOrStore(t, fs)
	return v.(*fieldSet)
}

// addFields adds t's fields as encoding/json sees them: the tag's name or
// the Go name, "-" skipped, untagged embedded structs promoted (shallower
// names first).
func addFields(fs *fieldSet, t reflect.Type, seen map[reflect.Type]bool) {
	if seen[t] {
		return
	}
	seen[t] = true
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := fs.exact[name]; dup {
			continue
		}
		fs.exact[name] = f.Type
		if _, dup := fs.folded[strings.ToLower(name)]; !dup {
			fs.folded[strings.ToLower(name)] = name
		}
	}
	for _, et := range embedded {
		addFields(fs, et, seen)
	}
}
