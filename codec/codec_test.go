package codec_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/codec"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type sample struct {
	Path string            `json:"path"`
	N    int               `json:"n,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
}

func TestJSONDoesNotEscapeHTML(t *testing.T) {
	b, err := codec.JSON.Marshal(&sample{Path: "frontend>middle>backend & <b>"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"path":"frontend>middle>backend & <b>"}`; got != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
	var back sample
	if err := codec.JSON.Unmarshal(b, &back); err != nil || back.Path != "frontend>middle>backend & <b>" {
		t.Errorf("Unmarshal(%s) = %+v, %v", b, back, err)
	}
}

// TestJSONMatchesEncodingJSON: apart from HTML escaping the bytes are
// json.Marshal's, with no trailing newline, and errors are its errors.
func TestJSONMatchesEncodingJSON(t *testing.T) {
	for _, v := range []any{
		nil, 42, "plain", []int{1, 2}, &sample{Path: "p", N: 3, Tags: map[string]string{"b": "2", "a": "1"}},
		json.RawMessage(`{ "spaced" : true }`), strings.Repeat("x", 100_000), // larger than the pooled buffers
	} {
		got, err := codec.MarshalJSON(v)
		want, werr := json.Marshal(v)
		if err != nil || werr != nil || string(got) != string(want) {
			t.Errorf("MarshalJSON(%T) = %.80s, %v; json.Marshal = %.80s, %v", v, got, err, want, werr)
		}
	}
	if _, err := codec.MarshalJSON(func() {}); err == nil {
		t.Error("MarshalJSON(func) = nil error, want json's unsupported type error")
	}
	// The buffer that failed is reused: the next value is clean.
	if got, err := codec.MarshalJSON(1); err != nil || string(got) != "1" {
		t.Errorf("MarshalJSON(1) after a failure = %s, %v", got, err)
	}
}

func TestProtoMessagesUseProtojson(t *testing.T) {
	b, err := codec.JSON.Marshal(wrapperspb.String("a>b"))
	if err != nil || strings.TrimSpace(string(b)) != `"a>b"` {
		t.Errorf("Marshal(StringValue) = %s, %v", b, err)
	}
}

func TestForContentType(t *testing.T) {
	for ct, want := range map[string]string{
		"application/json": "json", "application/json; charset=utf-8": "json", " Application/JSON ": "json",
		"application/protobuf": "proto", "application/x-protobuf": "proto", "application/proto": "proto",
	} {
		if c, ok := codec.ForContentType(ct); !ok || c.Name() != want {
			t.Errorf("ForContentType(%q) = %v, %v, want %s", ct, c, ok, want)
		}
	}
	if c, ok := codec.ForContentType("text/plain"); ok {
		t.Errorf("ForContentType(text/plain) = %v, want none", c.Name())
	}
}

func BenchmarkJSONMarshal(b *testing.B) {
	v := &sample{Path: "frontend>middle>backend", N: 7}
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := codec.JSON.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
