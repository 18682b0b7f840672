package protostruct

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/ferry-go/ferry/errs"
	"github.com/jhump/protoreflect/v2/protoprint"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Print returns the .proto source text of fd: a file that protoc (or any
// conforming compiler), given fd's imports, compiles back to a descriptor
// equal to fd — the same syntax, package, imports, options, messages
// (fields with their numbers, labels, types, json_name where it differs from
// the default, proto3 optional, maps, nested messages and enums), enums,
// services and streaming methods, in fd's order. Comments are printed when
// fd carries source info (descriptors built by [File] or sent by gRPC
// reflection carry none).
//
// The text is produced by github.com/jhump/protoreflect/v2's protoprint,
// which handles every feature of proto2, proto3 and editions, so the
// well-known types and any generated file print too; Print lays it out with
// a blank line between top-level declarations and writes methods as
// rpc Name(Input) returns (stream Output). Errors are *errs.Error with code
// Internal.
func Print(fd protoreflect.FileDescriptor) ([]byte, error) {
	if fd == nil {
		return nil, errs.New(errs.InvalidArgument, "protostruct: Print of a nil file descriptor")
	}
	// protoprint shortens type references by dropping the enclosing scope,
	// without checking that the short name means the same thing there (a
	// method named like its input message, a message named like a map
	// entry elsewhere). Such a file gets fully qualified references.
	p := protoprint.Printer{Compact: true, ForceFullyQualifiedNames: !shortNamesSafe(fd)}
	var buf bytes.Buffer
	if err := p.PrintProtoFile(fd, &buf); err != nil {
		return nil, errs.Newf(errs.Internal, "protostruct: printing %s: %v", fd.Path(), err)
	}
	return layout(buf.Bytes()), nil
}

// rpcLine matches a method declaration as protoprint writes it,
// "rpc Name ( stream In ) returns ( Out )", for layout to tighten.
var rpcLine = regexp.MustCompile(`^(\s*rpc \S+) \( ((?:stream )?\S+) \) returns \( ((?:stream )?\S+) \)`)

// layout puts a blank line before each top-level declaration of the compact
// text src (one run of imports or of options stays together, and a comment
// stays with what follows it) and writes method declarations the usual way.
// Only whitespace changes, so the text means what src means.
func layout(src []byte) []byte {
	lines := strings.Split(strings.TrimRight(string(src), "\n"), "\n")
	var b strings.Builder
	b.Grow(len(src) + len(src)/8)
	prev := "" // the previous line
	for i, l := range lines {
		if i > 0 && topLevel(l) && !isComment(prev) {
			word, prevWord := firstWord(l), firstWord(prev)
			if !topLevel(prev) || word != prevWord || (word != "import" && word != "option" && !isComment(l)) {
				b.WriteByte('\n')
			}
		}
		if m := rpcLine.FindStringSubmatchIndex(l); m != nil {
			l = l[m[2]:m[3]] + "(" + l[m[4]:m[5]] + ") returns (" + l[m[6]:m[7]] + ")" + l[m[1]:]
		}
		b.WriteString(l)
		b.WriteByte('\n')
		prev = l
	}
	return []byte(b.String())
}

// topLevel reports whether l starts a top-level declaration (or comment).
func topLevel(l string) bool {
	return l != "" && l[0] != ' ' && l[0] != '\t' && l[0] != '}'
}

func isComment(l string) bool {
	l = strings.TrimLeft(l, " \t")
	return strings.HasPrefix(l, "//") || strings.HasPrefix(l, "/*") || strings.HasPrefix(l, "*")
}

func firstWord(l string) string {
	if isComment(l) {
		return "//"
	}
	w, _, _ := strings.Cut(strings.TrimSpace(l), " ")
	return w
}

// shortNamesSafe reports whether every type that fd refers to can be
// written relative to where it is used: no element of fd or of a file it
// imports has the name of a component of a referenced type's full name,
// other than that component itself. It is conservative: a name used twice
// anywhere, even out of scope, makes fd use full names.
func shortNamesSafe(fd protoreflect.FileDescriptor) bool {
	declared := map[protoreflect.Name][]protoreflect.FullName{}
	add := func(n protoreflect.FullName) { declared[n.Name()] = append(declared[n.Name()], n) }
	var refs []protoreflect.FullName
	var field func(f protoreflect.FieldDescriptor, collect bool)
	field = func(f protoreflect.FieldDescriptor, collect bool) {
		add(f.FullName())
		if !collect {
			return
		}
		if m := f.Message(); m != nil {
			refs = append(refs, m.FullName())
		}
		if e := f.Enum(); e != nil {
			refs = append(refs, e.FullName())
		}
		if f.IsExtension() {
			refs = append(refs, f.ContainingMessage().FullName())
		}
	}
	var enums func(es protoreflect.EnumDescriptors)
	enums = func(es protoreflect.EnumDescriptors) {
		for i := range es.Len() {
			e := es.Get(i)
			add(e.FullName())
			for j := range e.Values().Len() {
				add(e.Values().Get(j).FullName())
			}
		}
	}
	var messages func(ms protoreflect.MessageDescriptors, collect bool)
	messages = func(ms protoreflect.MessageDescriptors, collect bool) {
		for i := range ms.Len() {
			m := ms.Get(i)
			add(m.FullName())
			for j := range m.Fields().Len() {
				field(m.Fields().Get(j), collect)
			}
			for j := range m.Oneofs().Len() {
				add(m.Oneofs().Get(j).FullName())
			}
			for j := range m.Extensions().Len() {
				field(m.Extensions().Get(j), collect)
			}
			messages(m.Messages(), collect)
			enums(m.Enums())
		}
	}
	file := func(f protoreflect.FileDescriptor, collect bool) {
		for p := f.Package(); p != ""; p = p.Parent() {
			add(p)
		}
		messages(f.Messages(), collect)
		enums(f.Enums())
		for i := range f.Extensions().Len() {
			field(f.Extensions().Get(i), collect)
		}
		for i := range f.Services().Len() {
			s := f.Services().Get(i)
			add(s.FullName())
			for j := range s.Methods().Len() {
				m := s.Methods().Get(j)
				add(m.FullName())
				if collect {
					refs = append(refs, m.Input().FullName(), m.Output().FullName())
				}
			}
		}
	}
	file(fd, true)
	for i := range fd.Imports().Len() {
		file(fd.Imports().Get(i).FileDescriptor, false)
	}
	for _, ref := range refs {
		for p := ref; p != ""; p = p.Parent() {
			for _, d := range declared[p.Name()] {
				if d != p {
					return false
				}
			}
		}
	}
	return true
}
