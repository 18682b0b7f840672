package ferrytest_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/memory"
	natsreg "github.com/ferry-go/ferry/registry/nats"
	"github.com/ferry-go/ferry/registry/static"
	"github.com/nats-io/nats.go/jetstream"
)

// TestRegistryConformance runs the registry suites against every built-in
// registry that can hold them.
func TestRegistryConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		ferrytest.RegistryConformance(t, func(testing.TB) registry.Registry { return memory.New() })
	})
	t.Run("nats", func(t *testing.T) {
		js := jetStream(t)
		var n atomic.Int64
		ferrytest.RegistryConformance(t, func(t testing.TB) registry.Registry {
			return natsRegistry(t, js, natsreg.WithBucket(fmt.Sprintf("conf_%d", n.Add(1))))
		})
	})
	// A registry that is no registry.Catalog skips the Catalog cases.
	t.Run("memory without Catalog", func(t *testing.T) {
		ferrytest.RegistryConformance(t, func(testing.TB) registry.Registry { return struct{ registry.Registry }{memory.New()} })
	})
	t.Run("static", func(t *testing.T) {
		ferrytest.RegistryReadOnlyConformance(t, func(t testing.TB, ins []registry.Instance) registry.Discovery {
			r, err := static.New(ins...)
			if err != nil {
				t.Fatalf("static.New = %v", err)
			}
			return r
		})
	})
}

func TestRegistryTTLConformance(t *testing.T) {
	js := jetStream(t)
	ferrytest.RegistryTTLConformance(t, func(t testing.TB, ttl time.Duration) (registry.Registry, func()) {
		r := natsRegistry(t, js, natsreg.WithTTL(ttl))
		return r, func() { _ = r.Close() }
	})
}

func jetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	nc := ferrytest.Connect(t, ferrytest.NATS(t).ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New = %v", err)
	}
	return js
}

func natsRegistry(t testing.TB, js jetstream.JetStream, opts ...natsreg.Option) *natsreg.Registry {
	t.Helper()
	r, err := natsreg.New(t.Context(), js, opts...)
	if err != nil {
		t.Fatalf("natsreg.New = %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}
