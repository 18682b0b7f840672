package transport_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/ferry-go/ferry/transport"
	"github.com/ferry-go/ferry/transport/callkit"
)

func TestMetadataCaseInsensitive(t *testing.T) {
	md := transport.Pairs("X-Request-ID", "a", "x-request-id", "b", "dangling")
	if got := md.Get("x-REQUEST-id"); got != "a" {
		t.Errorf("Get = %q, want a", got)
	}
	if got := md.Values("X-Request-Id"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Values = %v, want [a b]", got)
	}
	md.Set("Tenant", "t1")
	md.Del("X-REQUEST-ID")
	if got := md.Keys(); !reflect.DeepEqual(got, []string{"tenant"}) {
		t.Errorf("Keys = %v, want [tenant]", got)
	}
	var nilMD transport.Metadata
	if nilMD.Get("x") != "" || len(nilMD.Clone()) != 0 {
		t.Error("nil Metadata not readable")
	}
	cp := transport.Copy(md)
	cp.Set("tenant", "t2")
	if md.Get("tenant") != "t1" {
		t.Error("Copy aliased the original")
	}
}

// TestMetadataLiteral is issue #11's note: a Metadata literal with
// mixed-case keys was invisible to Get. Reads find it in any case; writes
// fold it into the lower-case key.
func TestMetadataLiteral(t *testing.T) {
	md := transport.Metadata{"X-Tenant": {"t1"}, "Authorization": {"Bearer x"}}
	if got := md.Get("x-tenant"); got != "t1" {
		t.Errorf("Get(x-tenant) of a literal = %q, want t1", got)
	}
	if got := md.Values("AUTHORIZATION"); !reflect.DeepEqual(got, []string{"Bearer x"}) {
		t.Errorf("Values(AUTHORIZATION) = %v", got)
	}
	if got := md.Keys(); !reflect.DeepEqual(got, []string{"authorization", "x-tenant"}) {
		t.Errorf("Keys = %v, want lower-cased", got)
	}
	md.Add("x-tenant", "t2")
	if got := md.Values("X-Tenant"); !reflect.DeepEqual(got, []string{"t1", "t2"}) || len(md) != 2 {
		t.Errorf("after Add: Values = %v, map %v; want one key with t1 t2", got, md)
	}
	md.Set("AUTHORIZATION", "Bearer y")
	if got := md.Get("authorization"); got != "Bearer y" || len(md) != 2 {
		t.Errorf("after Set: %q, map %v", got, md)
	}
	md["X-Gone"] = []string{"v"}
	md.Del("x-gone")
	if md.Get("X-Gone") != "" || len(md) != 2 {
		t.Errorf("after Del: map %v", md)
	}
	if cl := (transport.Metadata{"A": {"1"}, "a": {"2"}}).Clone(); !reflect.DeepEqual(cl.Values("a"), []string{"1", "2"}) && !reflect.DeepEqual(cl.Values("a"), []string{"2", "1"}) || len(cl) != 1 {
		t.Errorf("Clone merges case variants: %v", cl)
	}
}

func TestOutgoingMetadataMerges(t *testing.T) {
	ctx := transport.WithMetadata(context.Background(), transport.Pairs("a", "1"))
	ctx = transport.WithMetadata(ctx, transport.Pairs("a", "2", "b", "3"))
	md := transport.OutgoingMetadata(ctx)
	if got := md.Values("a"); !reflect.DeepEqual(got, []string{"1", "2"}) {
		t.Errorf("a = %v, want [1 2]", got)
	}
	if md.Get("b") != "3" {
		t.Errorf("b = %q, want 3", md.Get("b"))
	}
	var dst transport.Metadata
	ctx = transport.CaptureReply(ctx, &dst)
	if callkit.ReplySink(ctx) != &dst {
		t.Error("ReplySink did not return the capture destination")
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[transport.Kind]string{transport.HTTP: "http", transport.GRPC: "grpc", transport.NATS: "nats", "": "unknown", "quic": "quic"} {
		if got := k.String(); got != want {
			t.Errorf("%q.String() = %q, want %q", k, got, want)
		}
	}
}

// TestLazyMetadata: no map until the first write; reads before it find
// nothing; writes are case-insensitive as Metadata's.
func TestLazyMetadata(t *testing.T) {
	var h transport.LazyMetadata
	if h.Get("x") != "" || len(h.Keys()) != 0 || h.MD != nil {
		t.Fatalf("fresh LazyMetadata: Get %q, Keys %v, MD %v; want empty and no map", h.Get("x"), h.Keys(), h.MD)
	}
	h.Del("x")
	if h.MD != nil {
		t.Fatal("Del made a map")
	}
	h.Set("X-Retry", "1")
	h.Add("x-retry", "2")
	if got := h.Values("x-RETRY"); len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Fatalf("Values = %q, want [1 2]", got)
	}
}
