package gateway_test

import (
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/ferrytest"
	regmemory "github.com/ferry-go/ferry/registry/memory"
	natsreg "github.com/ferry-go/ferry/registry/nats"
	"github.com/nats-io/nats.go/jetstream"
)

// killTTL is the NATS registry's TTL in the conformance runs: short, so
// that a killed instance's route goes soon.
const killTTL = 2 * time.Second

// TestConformance runs ferrytest.GatewayConformance on the memory registry
// and on the NATS KV registry, with NATS and with HTTP preferred (and
// gRPC on the memory registry). Its
// subtests re-run in child processes for the kill cases: keep the code
// before GatewayConformance to building the setup.
func TestConformance(t *testing.T) {
	catalogs := map[string]func(t testing.TB, natsURL string) ferrytest.GatewayCatalog{
		"memory": func(testing.TB, string) ferrytest.GatewayCatalog {
			reg := regmemory.New()
			return ferrytest.GatewayCatalog{Catalog: reg, Announce: func() []ferry.Option { return []ferry.Option{ferry.WithRegistry(reg)} }}
		},
		"natskv": func(t testing.TB, natsURL string) ferrytest.GatewayCatalog {
			js, err := jetstream.New(ferrytest.Connect(t, natsURL))
			if err != nil {
				t.Fatal(err)
			}
			reg, err := natsreg.New(ferrytest.Context(t), js, natsreg.WithTTL(killTTL))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = reg.Close() })
			return ferrytest.GatewayCatalog{Catalog: reg, Announce: func() []ferry.Option { return []ferry.Option{ferry.WithRegistry(reg)} },
				Shared: true, TTL: killTTL}
		},
	}
	for _, name := range []string{"memory", "natskv"} {
		t.Run(name, func(t *testing.T) {
			prefers := [][]string{{"nats", "http"}, {"http", "nats"}}
			if name == "memory" { // gRPC forwarding once; the catalogue does not change what it does
				prefers = append(prefers, []string{"grpc", "nats", "http"})
			}
			for _, prefer := range prefers {
				t.Run(prefer[0], func(t *testing.T) {
					ferrytest.GatewayConformance(t, ferrytest.GatewaySetup{Transports: prefer, Catalog: catalogs[name]})
				})
			}
		})
	}
}
