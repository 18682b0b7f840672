package protostruct_test

import (
	"testing"

	"github.com/ferry-go/ferry/codec/protostruct"
)

// FuzzUnmarshal checks that no input makes Unmarshal panic or hang, and that
// whatever it accepts re-encodes to bytes that decode to the same value.
// Seeds live in testdata/fuzz/FuzzUnmarshal.
func FuzzUnmarshal(f *testing.F) {
	for _, v := range []any{fullExtra(), fullRich(), &Extra{}} {
		b, err := protostruct.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v1 Extra
		if err := protostruct.Unmarshal(data, &v1); err != nil {
			return
		}
		b, err := protostruct.Marshal(&v1)
		if err != nil {
			t.Fatalf("Marshal(Unmarshal(% x)) error = %v", data, err)
		}
		var v2 Extra
		if err := protostruct.Unmarshal(b, &v2); err != nil {
			t.Fatalf("Unmarshal(Marshal(Unmarshal(% x))) error = %v", data, err)
		}
		if !equal(&v1, &v2) {
			t.Fatalf("Unmarshal(Marshal(v)) = %+v, want %+v", v2, v1)
		}
	})
}
