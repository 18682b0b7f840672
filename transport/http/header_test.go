package http_test

import (
	"net/http"
	"testing"

	fhttp "github.com/ferry-go/ferry/transport/http"
)

// FuzzHeaderGet: Header finds a key however it is spelled, exactly as
// http.Header does, and reads the same values.
func FuzzHeaderGet(f *testing.F) {
	for _, k := range []string{"traceparent", "Traceparent", "TRACEPARENT", "x-request-id", "X-REQUEST-ID",
		"content-type", "a", "-", "--x", "x_y", "with space", "ümlaut", "key:colon", "", "x-" + string(make([]byte, 70))} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		h := http.Header{}
		h.Add(key, "v1")
		h.Add(key, "v2")
		h.Set("Other-Key", "o")
		fh := fhttp.Header(h)
		if got, want := fh.Get(key), h.Get(key); got != want {
			t.Fatalf("Get(%q) = %q, http.Header says %q", key, got, want)
		}
		if got, want := fh.Values(key), h.Values(key); len(got) != len(want) {
			t.Fatalf("Values(%q) = %q, http.Header says %q", key, got, want)
		}
		if got := fh.Get(key + "-absent"); got != h.Get(key+"-absent") {
			t.Fatalf("Get(%q) = %q for an absent key", key+"-absent", got)
		}
	})
}

// TestHeaderGetAllocs: reading a header by a lower-case name, as the
// tracing middleware reads traceparent, allocates nothing.
func TestHeaderGetAllocs(t *testing.T) {
	h := fhttp.Header(http.Header{"Traceparent": {"00-1-2-01"}, "Content-Type": {"application/json"}})
	allocs := testing.AllocsPerRun(100, func() {
		if h.Get("traceparent") == "" || h.Get("baggage") != "" {
			t.Fatal("wrong value")
		}
	})
	if allocs != 0 {
		t.Fatalf("Get allocates %v times per pair of calls, want 0", allocs)
	}
}
