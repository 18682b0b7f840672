package grpcreflect

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MarshalJSON writes m as encoding/json writes the Go struct a Ferry schema
// was derived from: every field under its JSON name in declaration order,
// 64-bit integers as numbers, bytes in base64, google.protobuf.Timestamp in
// RFC 3339, and unset fields with presence (messages, optional scalars) and
// empty lists, maps and bytes as null, as encoding/json writes the nil
// values protostruct decodes them into. Unset members of a oneof are left
// out; other well-known types are written as protojson writes them.
func MarshalJSON(m protoreflect.Message) ([]byte, error) {
	var b bytes.Buffer
	if err := writeMessage(&b, m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeMessage(b *bytes.Buffer, m protoreflect.Message) error {
	md := m.Descriptor()
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		f := md.Fields()
		t := time.Unix(m.Get(f.ByNumber(1)).Int(), m.Get(f.ByNumber(2)).Int()).UTC()
		return writeJSON(b, t)
	}
	if md.ParentFile() != nil && md.ParentFile().Package() == "google.protobuf" {
		out, err := protojson.Marshal(m.Interface())
		if err != nil {
			return err
		}
		b.Write(out)
		return nil
	}
	b.WriteByte('{')
	first := true
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() && !m.Has(fd) {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		if err := writeJSON(b, fd.JSONName()); err != nil {
			return err
		}
		b.WriteByte(':')
		switch {
		case fd.IsList() && m.Get(fd).List().Len() == 0, fd.IsMap() && m.Get(fd).Map().Len() == 0:
			b.WriteString("null")
		case fd.IsList():
			if err := writeList(b, fd, m.Get(fd).List()); err != nil {
				return err
			}
		case fd.IsMap():
			if err := writeMap(b, fd, m.Get(fd).Map()); err != nil {
				return err
			}
		case fd.HasPresence() && !m.Has(fd):
			b.WriteString("null")
		default:
			if err := writeValue(b, fd, m.Get(fd)); err != nil {
				return err
			}
		}
	}
	b.WriteByte('}')
	return nil
}

func writeList(b *bytes.Buffer, fd protoreflect.FieldDescriptor, l protoreflect.List) error {
	b.WriteByte('[')
	for i := range l.Len() {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := writeValue(b, fd, l.Get(i)); err != nil {
			return err
		}
	}
	b.WriteByte(']')
	return nil
}

func writeMap(b *bytes.Buffer, fd protoreflect.FieldDescriptor, m protoreflect.Map) error {
	type entry struct {
		key string
		val protoreflect.Value
	}
	entries := make([]entry, 0, m.Len())
	m.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		entries = append(entries, entry{k.String(), v})
		return true
	})
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.key, b.key) })
	b.WriteByte('{')
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := writeJSON(b, e.key); err != nil {
			return err
		}
		b.WriteByte(':')
		if err := writeValue(b, fd.MapValue(), e.val); err != nil {
			return err
		}
	}
	b.WriteByte('}')
	return nil
}

// writeValue writes one singular value of fd's kind.
func writeValue(b *bytes.Buffer, fd protoreflect.FieldDescriptor, v protoreflect.Value) error {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f := v.Float()
		switch {
		case math.IsNaN(f):
			b.WriteString(`"NaN"`)
		case math.IsInf(f, 1):
			b.WriteString(`"Infinity"`)
		case math.IsInf(f, -1):
			b.WriteString(`"-Infinity"`)
		case fd.Kind() == protoreflect.FloatKind:
			return writeJSON(b, float32(f))
		default:
			return writeJSON(b, f)
		}
	case protoreflect.StringKind:
		return writeJSON(b, v.String())
	case protoreflect.BytesKind:
		return writeJSON(b, v.Bytes())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return writeJSON(b, string(ev.Name()))
		}
		b.WriteString(strconv.FormatInt(int64(v.Enum()), 10))
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return writeMessage(b, v.Message())
	}
	return nil
}

func writeJSON(b *bytes.Buffer, v any) error {
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(out)
	return nil
}
