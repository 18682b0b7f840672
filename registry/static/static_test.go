package static_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/static"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	ferrytest.RegistryReadOnlyConformance(t, func(t testing.TB, instances []registry.Instance) registry.Discovery {
		r, err := static.New(instances...)
		if err != nil {
			t.Fatalf("New(%v) = %v, want nil", instances, err)
		}
		return r
	})
}

// TestWatchAllOrder: WatchAll sorts what New was given, in any order, by
// service then ID, and hands out copies.
func TestWatchAllOrder(t *testing.T) {
	ep := []registry.Endpoint{{Transport: "grpc", Address: "10.0.0.1:9090"}}
	r, err := static.New(
		registry.Instance{ID: "b", Service: "users", Endpoints: ep},
		registry.Instance{ID: "z", Service: "orders", Endpoints: ep},
		registry.Instance{ID: "a", Service: "users", Endpoints: ep},
		registry.Instance{ID: "a", Service: "Admin", Endpoints: ep},
		registry.Instance{ID: "m", Service: "orders", Endpoints: ep},
	)
	if err != nil {
		t.Fatalf("New = %v, want nil", err)
	}
	ids := func(set []registry.Instance) string {
		s := make([]string, len(set))
		for i, in := range set {
			s[i] = in.Service + "/" + in.ID
		}
		return strings.Join(s, ",")
	}
	const want = "Admin/a,orders/m,orders/z,users/a,users/b"
	for i := range 2 { // a second watcher sees what the first one's caller did not change
		w, err := r.WatchAll(t.Context())
		if err != nil {
			t.Fatalf("WatchAll = %v, want nil", err)
		}
		got, err := w.Next(t.Context())
		_ = w.Stop()
		if err != nil || ids(got) != want || got[0].Endpoints[0].Address != "10.0.0.1:9090" {
			t.Fatalf("first Next of WatchAll #%d = %+v, %v; want %s, each at 10.0.0.1:9090", i+1, got, err, want)
		}
		got[0].Endpoints[0].Address = "changed"
	}
}

func TestReadOnly(t *testing.T) {
	in := registry.Instance{ID: "a", Service: "svc"}
	r, err := static.New(in)
	if err != nil {
		t.Fatalf("New = %v, want nil", err)
	}
	for name, op := range map[string]func(context.Context, registry.Instance) error{
		"Register": r.Register, "Deregister": r.Deregister,
	} {
		err := op(t.Context(), in)
		if !errors.Is(err, static.ErrReadOnly) || errs.CodeOf(err) != errs.Unimplemented {
			t.Errorf("%s = %v, want %v", name, err, static.ErrReadOnly)
		}
	}
}

func TestNewInvalid(t *testing.T) {
	ok := registry.Instance{ID: "a", Service: "svc"}
	tests := []struct {
		name      string
		instances []registry.Instance
		want      string
	}{
		{"bad id", []registry.Instance{ok, {ID: "a.b", Service: "svc"}}, `instance 1: registry: invalid instance id "a.b"`},
		{"bad service", []registry.Instance{{ID: "a", Service: ""}}, `instance 0: registry: invalid service name ""`},
		{"duplicate", []registry.Instance{ok, ok}, `instance 1: duplicate id "a" in service "svc"`},
	}
	for _, tt := range tests {
		r, err := static.New(tt.instances...)
		if errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%s) = %v, %v, want an %v error containing %q", tt.name, r, err, errs.InvalidArgument, tt.want)
		}
	}
}

func Example() {
	r, err := static.New(
		registry.Instance{ID: "g1", Service: "greeter", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "10.0.0.7:9090"}}},
		registry.Instance{ID: "g2", Service: "greeter", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "10.0.0.8:9090"}}},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	ins, _ := r.Lookup(context.Background(), "greeter")
	for _, in := range ins {
		ep, _ := in.Endpoint("grpc")
		fmt.Println(in.ID, ep.Address)
	}
	// Output:
	// g1 10.0.0.7:9090
	// g2 10.0.0.8:9090
}
