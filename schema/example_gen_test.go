package schema_test

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware/validate"
	"github.com/ferry-go/ferry/schema"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/dynamicpb"
)

// strict decodes as the strictest Ferry codec: unknown or mis-cased
// members are errors, so the example has exactly the type's fields.
var strict = codec.NewJSON(codec.JSONOptions{DisallowUnknownFields: true, CaseSensitive: true})

// TestExampleDecodesAndValidates: the pre-filled body is valid under its
// schema, decodes into the type and passes the validator.
func TestExampleDecodesAndValidates(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[Order](), reflect.TypeFor[Node](), reflect.TypeFor[Tree](), reflect.TypeFor[Clash](),
		reflect.TypeFor[Page[Item]](), reflect.TypeFor[Empty](), reflect.TypeFor[Address](), reflect.TypeFor[Rules](),
		reflect.TypeFor[Embeds](),
	} {
		doc, err := schema.For(typ)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := schema.Example(doc)
		if err != nil {
			t.Fatalf("Example(%v) = %v", typ, err)
		}
		b, _ := json.Marshal(doc)
		if err := check(compile(t, b), ex); err != nil {
			t.Errorf("Example(%v) = %s, invalid under its schema: %v", typ, ex, err)
		}
		v := reflect.New(typ)
		if err := strict.Unmarshal(ex, v.Interface()); err != nil {
			t.Errorf("Example(%v) = %s, does not decode: %v", typ, ex, err)
			continue
		}
		if err := validate.Check(context.Background(), v.Interface()); err != nil {
			t.Errorf("Example(%v) = %s, fails the validator: %v %v", typ, ex, err, errs.DetailsOf(err))
		}
	}
}

func TestExampleOrder(t *testing.T) {
	doc, err := schema.For(reflect.TypeFor[Item]())
	if err != nil {
		t.Fatal(err)
	}
	ex, err := schema.Example(doc)
	if got, want := string(ex), `{"sku":"aaa","qty":1}`; err != nil || got != want {
		t.Errorf("Example(Item) = %s, %v, want %s", ex, err, want)
	}
}

func TestExampleProto(t *testing.T) {
	md := testMessage(t)
	doc := protoDoc(t)
	var s schema.Schema
	if err := json.Unmarshal(doc, &s); err != nil {
		t.Fatal(err)
	}
	ex, err := schema.Example(&s)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(compile(t, doc), ex); err != nil {
		t.Errorf("Example(Kitchen) = %s, invalid under its schema: %v", ex, err)
	}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(ex, dynamicpb.NewMessage(md)); err != nil {
		t.Errorf("Example(Kitchen) = %s, protojson refuses it: %v", ex, err)
	}

	spanDoc, err := schema.For(reflect.TypeFor[*tracepb.Span]())
	if err != nil {
		t.Fatal(err)
	}
	ex, err = schema.Example(spanDoc)
	if err != nil {
		t.Fatal(err)
	}
	if err := codec.JSON.Unmarshal(ex, new(tracepb.Span)); err != nil {
		t.Errorf("Example(Span) = %s, the codec refuses it: %v", ex, err)
	}
}

// TestUnmarshalRoundTrip: a document read back writes the same bytes, so
// a dashboard that receives schemas as JSON can use Example on them.
func TestUnmarshalRoundTrip(t *testing.T) {
	for _, b := range [][]byte{document(t, reflect.TypeFor[Order]()), protoDoc(t), document(t, reflect.TypeFor[Tree]())} {
		var s schema.Schema
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		again, err := json.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Errorf("round trip changed the document:\n%s\n%s", b, again)
		}
		if byValue, _ := json.Marshal(s); !bytes.Equal(byValue, b) {
			t.Errorf("a Schema value marshals differently from a *Schema:\n%s", byValue)
		}
	}
	var f schema.Schema
	if err := json.Unmarshal([]byte(`false`), &f); err != nil || !f.IsFalse() {
		t.Errorf("Unmarshal(false) = %+v, %v, want the schema false", f, err)
	}
	if err := json.Unmarshal([]byte(`[1]`), &f); err == nil {
		t.Error("Unmarshal([1]) = nil error, want one: a schema is an object or a boolean")
	}
}
