package protostruct

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Change is one difference between two versions of a schema, found by
// [Compare].
type Change struct {
	// Breaking marks a change that breaks clients built against the old
	// schema: on the protobuf wire, or in JSON (a renamed field). The others
	// are additions and changes that old clients do not notice.
	Breaking bool
	// Element is the full name of the service, method, message or enum the
	// change is in: "greeter.Greeter.Hello", "greeter.HelloRequest".
	Element string
	// Field names the field or enum value concerned, if any.
	Field string
	// Message says what changed, naming the element and field:
	// "field b of message greeter.HelloRequest changed number 2 → 1".
	Message string
}

// String is the message prefixed by "breaking: " or "compatible: ".
func (c Change) String() string {
	if c.Breaking {
		return "breaking: " + c.Message
	}
	return "compatible: " + c.Message
}

// Breaking returns the breaking changes among cs.
func Breaking(cs []Change) []Change {
	var out []Change
	for _, c := range cs {
		if c.Breaking {
			out = append(out, c)
		}
	}
	return out
}

// Compare reports how the services of new differ from those of old, as
// seen by a client built against old: every service, method and message a
// method reaches (through fields, in any file) is compared, messages field
// by field by number, the identity of a field on the wire.
//
// Breaking: a service or method removed; a method's streaming changed; a
// field removed whose number the new message does not reserve (a blank
// field tagged pb:"N,reserved"); a field renumbered (the same name under
// another number, as reordering untagged struct fields does); a number
// reused by a field of another name; a field's type, cardinality (repeated,
// map) or JSON name changed; an enum value removed or renumbered. A type
// change is breaking except int32 → int64 and uint32 → uint64, which old
// data decodes into unchanged.
//
// Compatible: a service, method, field or enum value added; a removed
// field whose number is reserved; a method's input or output, or a field's
// message type, now a message of another name — the messages are then
// compared field by field, which is what the wire sees.
//
// The result lists changes in a fixed order: by service and method of old,
// then by message in the order first reached.
func Compare(old, new protoreflect.FileDescriptor) []Change {
	c := &comparer{seen: map[[2]protoreflect.FullName]bool{}}
	for i := range old.Services().Len() {
		os := old.Services().Get(i)
		ns := new.Services().ByName(os.Name())
		if ns == nil {
			c.add(true, os.FullName(), "", "service %s removed", os.FullName())
			continue
		}
		for j := range os.Methods().Len() {
			om := os.Methods().Get(j)
			nm := ns.Methods().ByName(om.Name())
			if nm == nil {
				c.add(true, om.FullName(), "", "method %s removed", om.FullName())
				continue
			}
			if om.IsStreamingClient() != nm.IsStreamingClient() || om.IsStreamingServer() != nm.IsStreamingServer() {
				c.add(true, om.FullName(), "", "method %s changed from %s to %s", om.FullName(), signature(om), signature(nm))
			}
			c.messageType(om, "input", om.Input(), nm.Input())
			c.messageType(om, "output", om.Output(), nm.Output())
		}
		for j := range ns.Methods().Len() {
			nm := ns.Methods().Get(j)
			if os.Methods().ByName(nm.Name()) == nil {
				c.add(false, nm.FullName(), "", "method %s added: %s", nm.FullName(), signature(nm))
			}
		}
	}
	for i := range new.Services().Len() {
		ns := new.Services().Get(i)
		if old.Services().ByName(ns.Name()) == nil {
			c.add(false, ns.FullName(), "", "service %s added", ns.FullName())
		}
	}
	for len(c.queue) > 0 {
		p := c.queue[0]
		c.queue = c.queue[1:]
		switch o := p[0].(type) {
		case protoreflect.MessageDescriptor:
			c.message(o, p[1].(protoreflect.MessageDescriptor))
		case protoreflect.EnumDescriptor:
			c.enum(o, p[1].(protoreflect.EnumDescriptor))
		}
	}
	return c.changes
}

type comparer struct {
	changes []Change
	queue   [][2]protoreflect.Descriptor // (old, new) messages or enums to compare
	seen    map[[2]protoreflect.FullName]bool
}

func (c *comparer) add(breaking bool, element protoreflect.FullName, field protoreflect.Name, format string, args ...any) {
	c.changes = append(c.changes, Change{Breaking: breaking, Element: string(element), Field: string(field), Message: fmt.Sprintf(format, args...)})
}

func (c *comparer) enqueue(o, n protoreflect.Descriptor) {
	key := [2]protoreflect.FullName{o.FullName(), n.FullName()}
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	c.queue = append(c.queue, [2]protoreflect.Descriptor{o, n})
}

func signature(m protoreflect.MethodDescriptor) string {
	s := func(on bool) string {
		if on {
			return "stream "
		}
		return ""
	}
	return fmt.Sprintf("rpc %s(%s%s) returns (%s%s)", m.Name(), s(m.IsStreamingClient()), m.Input().FullName(), s(m.IsStreamingServer()), m.Output().FullName())
}

func (c *comparer) messageType(m protoreflect.MethodDescriptor, side string, o, n protoreflect.MessageDescriptor) {
	if o.FullName() != n.FullName() {
		c.add(false, m.FullName(), "", "method %s %s is now %s (was %s); compared field by field", m.FullName(), side, n.FullName(), o.FullName())
	}
	c.enqueue(o, n)
}

// message compares the fields of two versions of a message.
func (c *comparer) message(o, n protoreflect.MessageDescriptor) {
	where := "message " + string(n.FullName())
	if o.FullName() != n.FullName() {
		where += " (was " + string(o.FullName()) + ")"
	}
	ofs, nfs := o.Fields(), n.Fields()
	for i := range ofs.Len() {
		of := ofs.Get(i)
		nf := nfs.ByNumber(of.Number())
		moved := nfs.ByName(of.Name())
		switch {
		case moved != nil && moved.Number() != of.Number():
			c.add(true, n.FullName(), of.Name(), "field %s of %s changed number %d → %d", of.Name(), where, of.Number(), moved.Number())
		case nf == nil && n.ReservedRanges().Has(of.Number()):
			c.add(false, n.FullName(), of.Name(), "field %s (%d) of %s removed; its number is reserved", of.Name(), of.Number(), where)
		case nf == nil:
			c.add(true, n.FullName(), of.Name(), "field %s (%d) of %s removed and its number not reserved (keep the number with a blank field _ struct{} `pb:\"%d,reserved\"`)", of.Name(), of.Number(), where, of.Number())
		}
		if nf == nil {
			continue
		}
		if nf.Name() != of.Name() {
			switch {
			case moved != nil: // reported as of's renumbering
			case baseType(of) == baseType(nf) && ofs.ByName(nf.Name()) == nil:
				c.add(true, n.FullName(), nf.Name(), "field %s (%d) of %s renamed %s: the same on the wire, another name in JSON", of.Name(), of.Number(), where, nf.Name())
			default:
				c.add(true, n.FullName(), nf.Name(), "field number %d of %s reused: was %s %s, now %s %s", of.Number(), where, typeName(of), of.Name(), typeName(nf), nf.Name())
			}
			continue
		}
		c.field(n.FullName(), where, of, nf)
	}
	for i := range nfs.Len() {
		nf := nfs.Get(i)
		if ofs.ByNumber(nf.Number()) == nil && ofs.ByName(nf.Name()) == nil {
			c.add(false, n.FullName(), nf.Name(), "field %s %s = %d added to %s", typeName(nf), nf.Name(), nf.Number(), where)
		}
	}
}

// field compares two versions of a field with the same name and number.
func (c *comparer) field(msg protoreflect.FullName, where string, of, nf protoreflect.FieldDescriptor) {
	ot, nt := baseType(of), baseType(nf)
	switch {
	case ot == nt:
		c.refs(of, nf)
	case widened(of, nf):
		c.add(false, msg, nf.Name(), "field %s of %s widened from %s to %s", nf.Name(), where, ot, nt)
	case of.Cardinality() == nf.Cardinality() && of.IsMap() == nf.IsMap() && of.Kind() == nf.Kind() && sameKeys(of, nf) &&
		(of.Kind() == protoreflect.MessageKind || of.Kind() == protoreflect.EnumKind):
		// The same shape with a message or enum of another name.
		c.add(false, msg, nf.Name(), "field %s of %s is now %s (was %s); compared field by field", nf.Name(), where, nt, ot)
		c.refs(of, nf)
	default:
		c.add(true, msg, nf.Name(), "field %s of %s changed type %s → %s", nf.Name(), where, ot, nt)
	}
	if op, np := of.HasPresence(), nf.HasPresence(); op != np && ot == nt {
		c.add(false, msg, nf.Name(), "field %s of %s changed from %s to %s", nf.Name(), where, typeName(of), typeName(nf))
	}
	if of.JSONName() != nf.JSONName() {
		c.add(true, msg, nf.Name(), "field %s of %s changed JSON name %q → %q", nf.Name(), where, of.JSONName(), nf.JSONName())
	}
}

// refs queues the message or enum types of two fields of the same shape.
func (c *comparer) refs(of, nf protoreflect.FieldDescriptor) {
	if of.IsMap() {
		of, nf = of.MapValue(), nf.MapValue()
	}
	switch {
	case of.Message() != nil && nf.Message() != nil:
		c.enqueue(of.Message(), nf.Message())
	case of.Enum() != nil && nf.Enum() != nil:
		c.enqueue(of.Enum(), nf.Enum())
	}
}

func sameKeys(of, nf protoreflect.FieldDescriptor) bool {
	if !of.IsMap() {
		return true
	}
	return of.MapKey().Kind() == nf.MapKey().Kind() && of.MapValue().Kind() == nf.MapValue().Kind()
}

// widened reports a change of a singular or repeated number to a wider
// one that reads every old value unchanged.
func widened(of, nf protoreflect.FieldDescriptor) bool {
	if of.Cardinality() != nf.Cardinality() || of.IsMap() || nf.IsMap() {
		return false
	}
	switch [2]protoreflect.Kind{of.Kind(), nf.Kind()} {
	case [2]protoreflect.Kind{protoreflect.Int32Kind, protoreflect.Int64Kind},
		[2]protoreflect.Kind{protoreflect.Uint32Kind, protoreflect.Uint64Kind}:
		return true
	}
	return false
}

// typeName is a field's type as a .proto file writes it: "repeated string",
// "map<string, greeter.Item>", "optional int32".
func typeName(f protoreflect.FieldDescriptor) string {
	if f.HasOptionalKeyword() && !f.IsList() && !f.IsMap() {
		return "optional " + baseType(f)
	}
	return baseType(f)
}

// baseType is typeName without "optional".
func baseType(f protoreflect.FieldDescriptor) string {
	if f.IsMap() {
		return "map<" + baseType(f.MapKey()) + ", " + baseType(f.MapValue()) + ">"
	}
	var b strings.Builder
	if f.IsList() {
		b.WriteString("repeated ")
	}
	switch {
	case f.Message() != nil:
		b.WriteString(string(f.Message().FullName()))
	case f.Enum() != nil:
		b.WriteString(string(f.Enum().FullName()))
	default:
		b.WriteString(f.Kind().String())
	}
	return b.String()
}

// enum compares two versions of an enum by value number.
func (c *comparer) enum(o, n protoreflect.EnumDescriptor) {
	where := "enum " + string(n.FullName())
	ovs, nvs := o.Values(), n.Values()
	for i := range ovs.Len() {
		ov := ovs.Get(i)
		nv := nvs.ByNumber(ov.Number())
		switch {
		case nv == nil && n.ReservedRanges().Has(ov.Number()):
			c.add(false, n.FullName(), ov.Name(), "value %s (%d) of %s removed; its number is reserved", ov.Name(), ov.Number(), where)
		case nv == nil:
			c.add(true, n.FullName(), ov.Name(), "value %s (%d) of %s removed and its number not reserved", ov.Name(), ov.Number(), where)
		case nv.Name() != ov.Name() && nvs.ByName(ov.Name()) == nil:
			c.add(true, n.FullName(), ov.Name(), "value %d of %s renamed %s → %s", ov.Number(), where, ov.Name(), nv.Name())
		}
		if mv := nvs.ByName(ov.Name()); mv != nil && mv.Number() != ov.Number() {
			c.add(true, n.FullName(), ov.Name(), "value %s of %s changed number %d → %d", ov.Name(), where, ov.Number(), mv.Number())
		}
	}
	for i := range nvs.Len() {
		nv := nvs.Get(i)
		if ovs.ByNumber(nv.Number()) == nil && ovs.ByName(nv.Name()) == nil {
			c.add(false, n.FullName(), nv.Name(), "value %s = %d added to %s", nv.Name(), nv.Number(), where)
		}
	}
}
