package grpcreflect

import (
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Describe writes sd in proto syntax: the service with its methods, then
// every message and enum the methods use, each once, in the order first
// reached. Types of package google.protobuf are named, not spelled out. A
// field whose JSON name differs from its name shows it as json_name.
func Describe(w io.Writer, sd protoreflect.ServiceDescriptor) error {
	var b strings.Builder
	fmt.Fprintf(&b, "service %s {\n", sd.FullName())
	var queue []protoreflect.Descriptor
	seen := map[protoreflect.FullName]bool{}
	visit := func(d protoreflect.Descriptor) {
		if d == nil || seen[d.FullName()] || d.ParentFile() != nil && d.ParentFile().Package() == "google.protobuf" {
			return
		}
		seen[d.FullName()] = true
		queue = append(queue, d)
	}
	methods := sd.Methods()
	for i := range methods.Len() {
		m := methods.Get(i)
		fmt.Fprintf(&b, "  rpc %s(%s%s) returns (%s%s);\n", m.Name(),
			streaming(m.IsStreamingClient()), m.Input().FullName(),
			streaming(m.IsStreamingServer()), m.Output().FullName())
		visit(m.Input())
		visit(m.Output())
	}
	b.WriteString("}\n")
	for i := 0; i < len(queue); i++ {
		b.WriteByte('\n')
		switch d := queue[i].(type) {
		case protoreflect.MessageDescriptor:
			writeMessageDecl(&b, d, visit)
		case protoreflect.EnumDescriptor:
			fmt.Fprintf(&b, "enum %s {\n", d.FullName())
			for j := range d.Values().Len() {
				v := d.Values().Get(j)
				fmt.Fprintf(&b, "  %s = %d;\n", v.Name(), v.Number())
			}
			b.WriteString("}\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func streaming(s bool) string {
	if s {
		return "stream "
	}
	return ""
}

func writeMessageDecl(b *strings.Builder, md protoreflect.MessageDescriptor, visit func(protoreflect.Descriptor)) {
	fmt.Fprintf(b, "message %s {\n", md.FullName())
	fields := md.Fields()
	oneof := protoreflect.OneofDescriptor(nil)
	for i := range fields.Len() {
		fd := fields.Get(i)
		od := fd.ContainingOneof()
		if od != nil && od.IsSynthetic() {
			od = nil
		}
		if od != oneof {
			if oneof != nil {
				b.WriteString("  }\n")
			}
			if od != nil {
				fmt.Fprintf(b, "  oneof %s {\n", od.Name())
			}
			oneof = od
		}
		indent := "  "
		if oneof != nil {
			indent = "    "
		}
		label := ""
		switch {
		case fd.IsList():
			label = "repeated "
		case fd.HasOptionalKeyword():
			label = "optional "
		}
		var typ string
		if fd.IsMap() {
			typ = fmt.Sprintf("map<%s, %s>", typeName(fd.MapKey(), visit), typeName(fd.MapValue(), visit))
		} else {
			typ = typeName(fd, visit)
		}
		opt := ""
		if fd.JSONName() != string(fd.Name()) {
			opt = fmt.Sprintf(" [json_name = %q]", fd.JSONName())
		}
		fmt.Fprintf(b, "%s%s%s %s = %d%s;\n", indent, label, typ, fd.Name(), fd.Number(), opt)
	}
	if oneof != nil {
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
}

// typeName is the proto type of fd's values, visiting named types.
func typeName(fd protoreflect.FieldDescriptor, visit func(protoreflect.Descriptor)) string {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		visit(fd.Message())
		return string(fd.Message().FullName())
	case protoreflect.EnumKind:
		visit(fd.Enum())
		return string(fd.Enum().FullName())
	}
	return fd.Kind().String()
}
