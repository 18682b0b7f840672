package outbox

import (
	"reflect"
	"testing"

	"github.com/ferry-go/ferry/transport"
)

// Stored headers decode to what was stored, and a corrupt column is an
// error, never a panic.
func FuzzHeaders(f *testing.F) {
	f.Add("", "")
	f.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	f.Add("x-ünïcode", "\x00\xff")
	f.Add(`{"a":["b"]}`, `"`)
	f.Fuzz(func(t *testing.T, k, v string) {
		h := transport.Metadata{}
		if k != "" {
			h[k] = []string{v}
		}
		s, err := encodeHeaders(h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeHeaders(s)
		if err != nil {
			t.Fatalf("decode(encode(%v)) = %v", h, err)
		}
		if len(h) == 0 {
			if len(got) != 0 {
				t.Fatalf("decode(encode({})) = %v", got)
			}
		} else if !reflect.DeepEqual(map[string][]string(got), map[string][]string(h)) && validUTF8(k+v) {
			t.Fatalf("decode(encode(%v)) = %v", h, got)
		}
		_, _ = decodeHeaders(k + v) // any column content: an error or headers
	})
}

func validUTF8(s string) bool {
	for _, r := range s {
		if r == '\uFFFD' {
			return false
		}
	}
	return true
}
