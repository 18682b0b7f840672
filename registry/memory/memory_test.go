package memory_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/memory"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	ferrytest.RegistryConformance(t, func(testing.TB) registry.Registry { return memory.New() })
}

func Example() {
	ctx := context.Background()
	r := memory.New()
	w, _ := r.Watch(ctx, "greeter")
	defer w.Stop()

	set, _ := w.Next(ctx) // the current set, at once
	fmt.Println(len(set))

	_ = r.Register(ctx, registry.Instance{
		ID:        "g1",
		Service:   "greeter",
		Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "127.0.0.1:9090"}},
	})
	set, _ = w.Next(ctx) // pushed by Register
	fmt.Println(set[0].ID, set[0].Endpoints[0].Address)
	// Output:
	// 0
	// g1 127.0.0.1:9090
}
