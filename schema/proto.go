package schema

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Message returns the schema of the JSON protojson writes for messages of
// type md (a message of google.golang.org/protobuf/types/dynamicpb, say),
// as Ferry's JSON codec writes every proto.Message: fields by their JSON
// names (lowerCamel unless json_name says otherwise), only when set, 64-bit
// integers as strings, enums by name, bytes in base64, well-known types in
// their own JSON forms. Messages are definitions named by full name. A
// proto2 required field is listed in "required"; the members of a oneof
// are listed, by group, in the annotation "x-oneof". protojson also reads
// proto field names, numbers for 64-bit integers and enum numbers; the
// schema gives the form it writes.
func (g *Generator) Message(md protoreflect.MessageDescriptor) (*Schema, error) {
	return g.atomic(func() (*Schema, error) { return g.message(md) })
}

func (g *Generator) message(md protoreflect.MessageDescriptor) (*Schema, error) {
	if s := wellKnown(md); s != nil {
		return s, nil
	}
	key := md.FullName()
	name := g.names[key]
	if name == "" {
		name = g.claim(key, []string{string(key)})
	}
	if _, ok := g.defs[name]; ok {
		return g.ref(name), nil
	}
	g.defs[name] = nil
	s := &Schema{Type: []string{"object"}, Properties: []Property{}, AdditionalProperties: False()}
	s.Description = comments(md)
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		fs, err := g.protoField(fd)
		if err != nil {
			return nil, err
		}
		if fd.Cardinality() == protoreflect.Required {
			s.Required = append(s.Required, fd.JSONName())
		}
		s.Properties = append(s.Properties, Property{Name: fd.JSONName(), Schema: fs})
	}
	oneofs := map[string]any{}
	for i := range md.Oneofs().Len() {
		od := md.Oneofs().Get(i)
		if od.IsSynthetic() {
			continue
		}
		var names []string
		for j := range od.Fields().Len() {
			names = append(names, od.Fields().Get(j).JSONName())
		}
		oneofs[string(od.Name())] = names
	}
	if len(oneofs) > 0 {
		// At most one member of each group is set; kept as an annotation.
		s.Extra = map[string]any{"x-oneof": oneofs}
	}
	g.defs[name] = s
	return g.ref(name), nil
}

func comments(d protoreflect.Descriptor) string {
	if d.ParentFile() == nil {
		return ""
	}
	loc := d.ParentFile().SourceLocations().ByDescriptor(d)
	return strings.TrimSpace(loc.LeadingComments)
}

func (g *Generator) protoField(fd protoreflect.FieldDescriptor) (*Schema, error) {
	var s *Schema
	switch {
	case fd.IsMap():
		v, err := g.protoValue(fd.MapValue())
		if err != nil {
			return nil, err
		}
		s = &Schema{Type: []string{"object"}, AdditionalProperties: v}
		switch fd.MapKey().Kind() {
		case protoreflect.BoolKind:
			s.PropertyNames = &Schema{Enum: []any{"true", "false"}}
		case protoreflect.StringKind:
		case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			s.PropertyNames = &Schema{Pattern: uintPattern}
		default:
			s.PropertyNames = &Schema{Pattern: intPattern}
		}
	case fd.IsList():
		v, err := g.protoValue(fd)
		if err != nil {
			return nil, err
		}
		s = &Schema{Type: []string{"array"}, Items: v}
	default:
		v, err := g.protoValue(fd)
		if err != nil {
			return nil, err
		}
		s = v
	}
	s.Description = comments(fd)
	s.Deprecated = deprecated(fd)
	return s, nil
}

func deprecated(fd protoreflect.FieldDescriptor) bool {
	o, ok := fd.Options().(*descriptorpb.FieldOptions)
	return ok && o.GetDeprecated()
}

// protoValue is the schema of one value of fd (an element of a list).
func (g *Generator) protoValue(fd protoreflect.FieldDescriptor) (*Schema, error) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return g.message(fd.Message())
	case protoreflect.EnumKind:
		return enumSchema(fd.Enum()), nil
	}
	return scalar(fd.Kind()), nil
}

func enumSchema(ed protoreflect.EnumDescriptor) *Schema {
	if ed.FullName() == "google.protobuf.NullValue" {
		return &Schema{Type: []string{"null"}}
	}
	s := &Schema{Type: []string{"string"}, Enum: []any{}}
	for i := range ed.Values().Len() {
		s.Enum = append(s.Enum, string(ed.Values().Get(i).Name()))
	}
	return s
}

// scalar is the protojson form of a scalar kind.
func scalar(k protoreflect.Kind) *Schema {
	switch k {
	case protoreflect.BoolKind:
		return &Schema{Type: []string{"boolean"}}
	case protoreflect.StringKind:
		return &Schema{Type: []string{"string"}}
	case protoreflect.BytesKind:
		return &Schema{Type: []string{"string"}, ContentEncoding: "base64"}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return &Schema{Type: []string{"integer"}, Format: "int32"}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return &Schema{Type: []string{"integer"}, Minimum: "0", Maximum: "4294967295"}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return &Schema{Type: []string{"string"}, Format: "int64", Pattern: intPattern}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return &Schema{Type: []string{"string"}, Format: "uint64", Pattern: uintPattern}
	case protoreflect.FloatKind:
		return floating("float")
	case protoreflect.DoubleKind:
		return floating("double")
	}
	return &Schema{}
}

// floating is a float or double: a number, or a string for the values JSON
// numbers cannot hold.
func floating(format string) *Schema {
	return &Schema{AnyOf: []*Schema{
		{Type: []string{"number"}, Format: format},
		{Type: []string{"string"}, Enum: []any{"NaN", "Infinity", "-Infinity"}},
	}}
}

// wellKnown returns the JSON form of a well-known type, nil for others.
func wellKnown(md protoreflect.MessageDescriptor) *Schema {
	if md.ParentFile() == nil || md.ParentFile().Package() != "google.protobuf" {
		return nil
	}
	switch md.Name() {
	case "Timestamp":
		return &Schema{Type: []string{"string"}, Format: "date-time"}
	case "Duration":
		return &Schema{Type: []string{"string"}, Pattern: `^-?[0-9]+(\.[0-9]{1,9})?s$`}
	case "FieldMask":
		return &Schema{Type: []string{"string"}}
	case "Struct":
		return &Schema{Type: []string{"object"}}
	case "Value":
		return &Schema{}
	case "ListValue":
		return &Schema{Type: []string{"array"}}
	case "Any":
		// The other members are those of the message @type names.
		typeURL := &Schema{Type: []string{"string"}, MinLength: new(1),
			Examples: []any{"type.googleapis.com/google.protobuf.Empty"}}
		return &Schema{Type: []string{"object"}, Properties: []Property{{Name: "@type", Schema: typeURL}},
			Required: []string{"@type"}}
	case "DoubleValue":
		return floating("double")
	case "FloatValue":
		return floating("float")
	case "Int64Value":
		return scalar(protoreflect.Int64Kind)
	case "UInt64Value":
		return scalar(protoreflect.Uint64Kind)
	case "Int32Value":
		return scalar(protoreflect.Int32Kind)
	case "UInt32Value":
		return scalar(protoreflect.Uint32Kind)
	case "BoolValue":
		return scalar(protoreflect.BoolKind)
	case "StringValue":
		return scalar(protoreflect.StringKind)
	case "BytesValue":
		return scalar(protoreflect.BytesKind)
	}
	return nil
}
