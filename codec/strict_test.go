package codec_test

import (
	"strings"
	"testing"

	"github.com/ferry-go/ferry/codec"
	"google.golang.org/protobuf/types/descriptorpb"
)

type Inner struct {
	Flag bool `json:"flag"`
}

type Base struct {
	ID string `json:"id"`
}

type strictReq struct {
	Base
	Name   string            `json:"name"`
	Count  int32             `json:"count,omitempty"`
	Inner  *Inner            `json:"inner"`
	List   []Inner           `json:"list"`
	Attrs  map[string]Inner  `json:"attrs"`
	Any    any               `json:"any"`
	Hidden string            `json:"-"`
	Plain  string            // no tag: the Go name
	Labels map[string]string `json:"labels"`
}

func TestStrictJSON(t *testing.T) {
	lax := codec.JSON
	strict := codec.NewJSON(codec.JSONOptions{DisallowUnknownFields: true, CaseSensitive: true})
	for _, c := range []struct {
		name, body string
		laxOK      bool
		strictErr  string // "" when strict accepts it
	}{
		{"exact names", `{"id":"1","name":"a","count":2,"inner":{"flag":true},"list":[{"flag":true}],"attrs":{"k":{"flag":false}},"any":{"Whatever":1},"Plain":"p","labels":{"X":"y"}}`, true, ""},
		{"unknown field", `{"name":"a","nmae":"b"}`, true, `field "nmae": no such field`},
		{"unknown nested field", `{"inner":{"flag":true,"extra":1}}`, true, `field "inner.extra": no such field`},
		{"unknown field in a list", `{"list":[{"flag":true},{"flg":true}]}`, true, `field "list[].flg": no such field`},
		{"unknown field in a map value", `{"attrs":{"k":{"Flag":true}}}`, true, `did you mean "attrs.k.flag"`},
		{"case mismatch", `{"Name":"a"}`, true, `field "Name": no such field; names are case-sensitive, did you mean "name"?`},
		{"case mismatch of a promoted field", `{"ID":"1"}`, true, `did you mean "id"`},
		{"a skipped field", `{"Hidden":"x"}`, true, `field "Hidden": no such field`},
		{"map keys are free", `{"labels":{"Any-Case":"ok"}}`, true, ""},
	} {
		var v strictReq
		if err := lax.Unmarshal([]byte(c.body), &v); (err == nil) != c.laxOK {
			t.Errorf("%s: JSON.Unmarshal = %v, want ok=%v", c.name, err, c.laxOK)
		}
		v = strictReq{}
		err := strict.Unmarshal([]byte(c.body), &v)
		switch {
		case c.strictErr == "" && err != nil:
			t.Errorf("%s: strict Unmarshal = %v, want success", c.name, err)
		case c.strictErr != "" && (err == nil || !strings.Contains(err.Error(), c.strictErr)):
			t.Errorf("%s: strict Unmarshal = %v, want an error containing %q", c.name, err, c.strictErr)
		}
	}
	if codec.NewJSON(codec.JSONOptions{}) != codec.JSON {
		t.Error("NewJSON with zero options is not codec.JSON")
	}
	// Protobuf messages: unknown fields refused through protojson.
	var sv descriptorpb.FileDescriptorProto
	if err := strict.Unmarshal([]byte(`{"name":"a","extra":1}`), &sv); err == nil {
		t.Error("strict Unmarshal of a message with an unknown field succeeded")
	}
	if err := lax.Unmarshal([]byte(`{"name":"a","extra":1}`), &sv); err != nil || sv.GetName() != "a" {
		t.Errorf("JSON.Unmarshal of a message with an unknown field = %v, want it ignored", err)
	}
}

func TestJSONRefusesInvalidUTF8AndQuotesBriefly(t *testing.T) {
	var v strictReq
	err := codec.JSON.Unmarshal([]byte("{\"name\":\"a\xffb\"}"), &v)
	if err == nil || !strings.Contains(err.Error(), "invalid UTF-8 at byte 10") {
		t.Errorf("Unmarshal of invalid UTF-8 = %v, want an error naming byte 10", err)
	}
	big := `{"count":` + strings.Repeat("7", 1<<20) + `}`
	err = codec.JSON.Unmarshal([]byte(big), &v)
	if err == nil || len(err.Error()) > 300 || !strings.Contains(err.Error(), `field "count"`) {
		t.Errorf("Unmarshal of a 1 MB number = error of %d bytes (%.120s…), want a short one naming the field", len(err.Error()), err)
	}
}

// FuzzStrictJSON: the strict codec never panics, and accepts nothing the
// default codec refuses.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"name":"a"}`, `{"Name":"a"}`, `{"inner":{"flag":true}}`, `{"list":[{"flg":1}]}`,
		`{"attrs":{"k":{"flag":true}}}`, `{"any":[1,{"x":2}]}`, `[`, `{"name":`, "{\"name\":\"\xff\"}", `{"id":"1","ID":"2"}`, `null`} {
		f.Add([]byte(s))
	}
	strict := codec.NewJSON(codec.JSONOptions{DisallowUnknownFields: true, CaseSensitive: true})
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b strictReq
		serr := strict.Unmarshal(data, &a)
		lerr := codec.JSON.Unmarshal(data, &b)
		if serr == nil && lerr != nil {
			t.Fatalf("strict accepted %q which the default codec refused: %v", data, lerr)
		}
	})
}
