package protostruct_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/codec/protostruct"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Versions of one request type, each declared in a function of its own so
// that all are named Req.

func reqV1() reflect.Type {
	type Req struct {
		A    string    `json:"a"`
		B    int32     `json:"b"`
		Tags []string  `json:"tags"`
		At   time.Time `json:"at"`
	}
	return reflect.TypeFor[Req]()
}

func reqReordered() reflect.Type {
	type Req struct {
		B    int32     `json:"b"`
		A    string    `json:"a"`
		Tags []string  `json:"tags"`
		At   time.Time `json:"at"`
	}
	return reflect.TypeFor[Req]()
}

func reqRetyped() reflect.Type {
	type Req struct {
		A    string    `json:"a"`
		B    string    `json:"b"`
		Tags string    `json:"tags"`
		At   time.Time `json:"at"`
	}
	return reflect.TypeFor[Req]()
}

func reqReused() reflect.Type {
	type Req struct {
		C    bool      `json:"c"` // takes a's number 1
		B    int32     `json:"b"`
		Tags []string  `json:"tags"`
		At   time.Time `json:"at"`
	}
	return reflect.TypeFor[Req]()
}

func reqRemoved() reflect.Type {
	type Req struct {
		A    string    `json:"a"`
		_    struct{}  `pb:"reserved"` // b, reserved
		Tags []string  `json:"tags"`
		At   time.Time `json:"at" pb:"5"` // renumbered: 4 → 5, number 4 not reserved
	}
	return reflect.TypeFor[Req]()
}

func reqDropped() reflect.Type {
	type Req struct {
		A  string    `json:"a"`
		B  int32     `json:"b"`
		At time.Time `json:"at"` // moves up to 3
	}
	return reflect.TypeFor[Req]()
}

func reqJSONRenamed() reflect.Type {
	type Req struct {
		A    string    `json:"a"`
		B    int32     `json:"bee"`
		Tags []string  `json:"tags"`
		At   time.Time `json:"at"`
	}
	return reflect.TypeFor[Req]()
}

func reqAdded() reflect.Type {
	type Req struct {
		A    string    `json:"a"`
		B    int64     `json:"b"` // widened
		Tags []string  `json:"tags"`
		At   time.Time `json:"at"`
		D    *bool     `json:"d"`
	}
	return reflect.TypeFor[Req]()
}

func reqRenamed() reflect.Type {
	type Req struct {
		A    string    `json:"a"`
		B    int32     `json:"b"`
		Tags []string  `json:"tags"`
		At   time.Time `json:"at"`
	}
	type Renamed struct { // another name, the same wire and JSON form
		A    string    `json:"a"`
		B    int32     `json:"b"`
		Tags []string  `json:"tags"`
		At   time.Time `json:"at"`
		_    Req
	}
	return reflect.TypeFor[Renamed]()
}

type Reply struct {
	OK bool `json:"ok"`
}

func svc(t *testing.T, req reflect.Type, extra ...protostruct.Method) protoreflect.FileDescriptor {
	t.Helper()
	methods := append([]protostruct.Method{
		{Name: "Put", Input: req, Output: reflect.TypeFor[Reply]()},
		{Name: "Watch", Input: reflect.TypeFor[Reply](), Output: req, ServerStreaming: true},
	}, extra...)
	fd, err := protostruct.File("ferry/x.proto", "x", "X", methods)
	if err != nil {
		t.Fatalf("File() error = %v", err)
	}
	return fd
}

func changeLines(cs []protostruct.Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestCompare(t *testing.T) {
	v1 := svc(t, reqV1())
	if cs := protostruct.Compare(v1, v1); len(cs) != 0 {
		t.Errorf("Compare(v1, v1) = %v, want nothing", cs)
	}
	for _, tc := range []struct {
		name string
		new  protoreflect.FileDescriptor
		want []string // every line of the result, in order
	}{
		{"reordered", svc(t, reqReordered()), []string{
			"breaking: field a of message x.Req changed number 1 → 2",
			"breaking: field b of message x.Req changed number 2 → 1",
		}},
		{"retyped", svc(t, reqRetyped()), []string{
			"breaking: field b of message x.Req changed type int32 → string",
			"breaking: field tags of message x.Req changed type repeated string → string",
		}},
		{"reused", svc(t, reqReused()), []string{
			"breaking: field number 1 of message x.Req reused: was string a, now bool c",
		}},
		{"removed", svc(t, reqRemoved()), []string{
			// and 4 not reserved, which at's renumbering implies
			"compatible: field b (2) of message x.Req removed; its number is reserved",
			"breaking: field at of message x.Req changed number 4 → 5",
		}},
		{"dropped", svc(t, reqDropped()), []string{
			"breaking: field number 3 of message x.Req reused: was repeated string tags, now google.protobuf.Timestamp at",
			"breaking: field at of message x.Req changed number 4 → 3",
		}},
		{"json renamed", svc(t, reqJSONRenamed()), []string{
			"breaking: field b (2) of message x.Req renamed bee: the same on the wire, another name in JSON",
		}},
		{"added", svc(t, reqAdded(), protostruct.Method{Name: "Ping", Input: reflect.TypeFor[Reply](), Output: reflect.TypeFor[Reply]()}), []string{
			"compatible: method x.X.Ping added: rpc Ping(x.Reply) returns (x.Reply)",
			"compatible: field b of message x.Req widened from int32 to int64",
			"compatible: field optional bool d = 5 added to message x.Req",
		}},
		{"renamed type", svc(t, reqRenamed()), []string{
			"compatible: method x.X.Put input is now x.Renamed (was x.Req); compared field by field",
			"compatible: method x.X.Watch output is now x.Renamed (was x.Req); compared field by field",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := changeLines(protostruct.Compare(v1, tc.new))
			if want := strings.Join(tc.want, "\n") + "\n"; got != want {
				t.Errorf("Compare(v1, %s) =\n%s\nwant\n%s", tc.name, got, want)
			}
		})
	}
}

func TestCompareMethods(t *testing.T) {
	type Other struct {
		OK   string `json:"ok"`
		Note string `json:"Note"`
	}
	oldFD := svc(t, reqV1(), protostruct.Method{Name: "Gone", Input: reflect.TypeFor[Reply](), Output: reflect.TypeFor[Reply]()})
	newFD, err := protostruct.File("ferry/x.proto", "x", "X", []protostruct.Method{
		{Name: "Put", Input: reqV1(), Output: reflect.TypeFor[Other](), ClientStreaming: true},
		{Name: "Watch", Input: reflect.TypeFor[Reply](), Output: reqV1()},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := changeLines(protostruct.Compare(oldFD, newFD))
	want := strings.Join([]string{
		"breaking: method x.X.Put changed from rpc Put(x.Req) returns (x.Reply) to rpc Put(stream x.Req) returns (x.Other)",
		"compatible: method x.X.Put output is now x.Other (was x.Reply); compared field by field",
		"breaking: method x.X.Watch changed from rpc Watch(x.Reply) returns (stream x.Req) to rpc Watch(x.Reply) returns (x.Req)",
		"breaking: method x.X.Gone removed",
		"breaking: field ok of message x.Other (was x.Reply) changed type bool → string",
		"compatible: field string Note = 2 added to message x.Other (was x.Reply)",
	}, "\n") + "\n"
	if got != want {
		t.Errorf("Compare() =\n%s\nwant\n%s", got, want)
	}
	// Every breaking change names its element and field.
	for _, c := range protostruct.Breaking(protostruct.Compare(oldFD, newFD)) {
		if c.Element == "" {
			t.Errorf("change %q has no element", c)
		}
	}
	if cs := protostruct.Compare(newFD, oldFD); len(protostruct.Breaking(cs)) == 0 {
		t.Errorf("Compare(new, old) found nothing breaking: %v", cs)
	}
}

func TestLockRoundTrip(t *testing.T) {
	fd := svc(t, reqV1(), protostruct.Method{Name: "Shapes", Input: reflect.TypeFor[Shapes](), Output: reflect.TypeFor[Extra]()})
	b, err := protostruct.MarshalLock(fd)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := protostruct.MarshalLock(fd)
	if !bytes.Equal(b, again) {
		t.Error("MarshalLock() is not deterministic")
	}
	if !bytes.HasPrefix(b, []byte("{\n  \"file\": [\n    {\n      \"name\": \"ferry/x.proto\",")) {
		t.Errorf("MarshalLock() starts %q", b[:min(len(b), 80)])
	}
	back, err := protostruct.UnmarshalLock(b)
	if err != nil {
		t.Fatalf("UnmarshalLock() error = %v", err)
	}
	if back.Path() != "ferry/x.proto" || back.Imports().Len() != fd.Imports().Len() {
		t.Errorf("UnmarshalLock() = %s with %d imports", back.Path(), back.Imports().Len())
	}
	if cs := protostruct.Compare(back, fd); len(cs) != 0 {
		t.Errorf("Compare(lock, fd) = %v, want nothing", cs)
	}
	for _, bad := range []string{"", "{}", "{\"file\": 3}", "\x01\x02"} {
		if _, err := protostruct.UnmarshalLock([]byte(bad)); err == nil {
			t.Errorf("UnmarshalLock(%q) error = nil", bad)
		}
	}
}
