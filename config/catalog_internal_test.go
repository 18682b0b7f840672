package config

import (
	"io"
	"testing"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/registry"
	fnats "github.com/ferry-go/ferry/transport/nats"
)

// Every built-in registry kind a configuration can name is a
// registry.Catalog as the factory returns it — nothing wraps it on the way —
// so an API gateway built from a configuration can follow every service.
func TestRegistriesAreCatalogs(t *testing.T) {
	ctx := ferrytest.Context(t)
	conn := fnats.Connect(ferrytest.NATS(t).ClientURL())
	if err := conn.Start(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Stop(ctx) })
	cfg := Default()
	factories := DefaultFactories().Registries
	for _, kind := range []string{"memory", "nats", "srv", "static", "dns"} {
		if factories[kind] == nil {
			t.Errorf("DefaultFactories has no registry kind %q", kind)
			continue
		}
		r, err := factories[kind](ctx, &cfg, Resources{nats: conn})
		if err != nil {
			t.Errorf("registry kind %s: %v", kind, err)
			continue
		}
		if _, ok := r.(registry.Catalog); !ok {
			t.Errorf("registry kind %s made a %T, which is no registry.Catalog", kind, r)
		}
		if c, ok := r.(io.Closer); ok {
			_ = c.Close()
		}
	}
}
