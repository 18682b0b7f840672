package grpc

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ferry-go/ferry/codec"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
)

// Without grpc-go's server stream in the context, isJSON reads the
// content-type metadata.
func TestIsJSONFromMetadata(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/grpc+json":               true,
		"application/grpc+JSON; charset=utf8": true,
		"application/grpc":                    false,
		"application/grpc+proto":              false,
		"application/grpc+jsonx":              false,
		"application/json":                    false,
	} {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("content-type", ct))
		if got := isJSON(ctx); got != want {
			t.Errorf("isJSON(content-type %q) = %v, want %v", ct, got, want)
		}
	}
	if isJSON(context.Background()) {
		t.Error("isJSON(no metadata) = true, want false")
	}
}

type fuzzMsg struct {
	Name  string            `json:"name"`
	N     int64             `json:"n"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs"`
	Raw   json.RawMessage   `json:"raw"`
	Next  *fuzzMsg          `json:"next"`
}

// decodeJSON never panics, keeps nothing of the received buffers, and
// decodes a message split over several buffers as one.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"name":"a","n":1,"tags":["x"],"attrs":{"k":"v"},"raw":[1,{}],"next":{"n":2}}`,
		`{"n":"x"}`, `[`, "\"\xff\"", `{"name":"é"}`, `null`, `{"n":1e400}`} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, cut uint8) {
		var whole, split fuzzMsg
		errWhole := decodeJSON(codec.JSON, mem.BufferSlice{mem.SliceBuffer(append([]byte(nil), b...))}, &whole)
		i := int(cut) % (len(b) + 1)
		bs := mem.BufferSlice{mem.SliceBuffer(append([]byte(nil), b[:i]...)), mem.SliceBuffer(append([]byte(nil), b[i:]...))}
		errSplit := decodeJSON(codec.JSON, bs, &split)
		if (errWhole == nil) != (errSplit == nil) || !reflect.DeepEqual(whole, split) {
			t.Fatalf("decodeJSON(%q) whole = %+v, %v; split at %d = %+v, %v", b, whole, errWhole, i, split, errSplit)
		}
		if errWhole == nil && len(b) > 0 {
			var want fuzzMsg
			if err := codec.JSON.Unmarshal(b, &want); err != nil || !reflect.DeepEqual(whole, want) {
				t.Fatalf("decodeJSON(%q) = %+v, codec.JSON = %+v, %v", b, whole, want, err)
			}
		}
		// The buffer may be reused once decoded: the result must not see it.
		buf := append([]byte(nil), b...)
		var m fuzzMsg
		if err := decodeJSON(codec.JSON, mem.BufferSlice{mem.SliceBuffer(buf)}, &m); err == nil {
			before := m.Name + string(m.Raw)
			for j := range buf {
				buf[j] = 'x'
			}
			if after := m.Name + string(m.Raw); after != before {
				t.Fatalf("decodeJSON(%q) kept the received buffer: %q became %q", b, before, after)
			}
		}
	})
}
