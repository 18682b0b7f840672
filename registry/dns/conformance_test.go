package dns_test

import (
	"net"
	"net/url"
	"strconv"
	"testing"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/dns"
	"golang.org/x/net/dns/dnsmessage"
)

// TestConformance runs the shared read-only registry suite against the DNS
// registry: each instance becomes one SRV record per transport on a real
// DNS server on loopback, its target "<id>.<service>.test." and the port
// of its address. DNS carries no version or metadata, and an instance's ID
// is its SRV target's, so WithCarried says what comes back.
func TestConformance(t *testing.T) {
	ferrytest.RegistryReadOnlyConformance(t, func(t testing.TB, instances []registry.Instance) registry.Discovery {
		s := startServer(t.(*testing.T))
		services := map[string][]dns.Target{}
		records := map[string][]dnsmessage.SRVResource{}
		for _, in := range instances {
			for _, ep := range in.Endpoints {
				name := "_" + ep.Transport + "._tcp." + in.Service + ".test."
				if records[name] == nil {
					services[in.Service] = append(services[in.Service], dns.Target{Transport: ep.Transport, SRV: name})
				}
				records[name] = append(records[name], srv(in.ID+"."+in.Service+".test.", port(t, ep.Address)))
			}
		}
		for name, recs := range records {
			s.setSRV(name, recs...)
		}
		r, err := dns.New(services, dns.WithResolver(s.resolver()))
		if err != nil {
			t.Fatalf("dns.New = %v", err)
		}
		return r
	}, ferrytest.WithCarried(func(in registry.Instance) registry.Instance {
		host := in.ID + "." + in.Service + ".test"
		out := registry.Instance{ID: in.ID + "-" + in.Service + "-test", Service: in.Service}
		for _, ep := range in.Endpoints {
			addr := net.JoinHostPort(host, strconv.Itoa(int(port(t, ep.Address))))
			if u, err := url.Parse(ep.Address); err == nil && u.Host != "" {
				addr = u.Scheme + "://" + addr
			}
			out.Endpoints = append(out.Endpoints, registry.Endpoint{Transport: ep.Transport, Address: addr})
		}
		return out
	}))
}

// port returns the port of an address, "host:port" or "scheme://host:port".
func port(t testing.TB, addr string) uint16 {
	t.Helper()
	hp := addr
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		hp = u.Host
	}
	_, p, err := net.SplitHostPort(hp)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return uint16(n)
}
