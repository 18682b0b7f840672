package natsembed

import (
	"crypto/tls"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "[::1]": true, "localhost": true, "LocalHost": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.1": false, "192.168.1.10": false, "example.com": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// The rule Start applies before it listens, case by case, without
// listening: which server options may serve beyond loopback.
func TestCheckExposure(t *testing.T) {
	mutual := &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
	tests := []struct {
		name      string
		opts      server.Options
		anonymous bool
		ok        bool
	}{
		{"loopback, no auth", server.Options{Host: "127.0.0.1"}, false, true},
		{"::1, no auth", server.Options{Host: "::1"}, false, true},
		{"localhost, no auth", server.Options{Host: "localhost"}, false, true},
		{"0.0.0.0, no auth", server.Options{Host: "0.0.0.0"}, false, false},
		{"empty host (all interfaces), no auth", server.Options{Host: ""}, false, false},
		{"LAN address, no auth", server.Options{Host: "192.168.1.10"}, false, false},
		{"0.0.0.0, AllowAnonymous", server.Options{Host: "0.0.0.0"}, true, true},
		{"0.0.0.0, users", server.Options{Host: "0.0.0.0", Users: []*server.User{{Username: "a", Password: "p"}}}, false, true},
		{"0.0.0.0, nkeys", server.Options{Host: "0.0.0.0", Nkeys: []*server.NkeyUser{{Nkey: "U..."}}}, false, true},
		{"0.0.0.0, single user", server.Options{Host: "0.0.0.0", Username: "a", Password: "p"}, false, true},
		{"0.0.0.0, token", server.Options{Host: "0.0.0.0", Authorization: "t"}, false, true},
		{"0.0.0.0, operator", server.Options{Host: "0.0.0.0", TrustedKeys: []string{"O..."}}, false, true},
		{"0.0.0.0, mutual TLS", server.Options{Host: "0.0.0.0", TLSConfig: mutual}, false, true},
		{"0.0.0.0, mutual TLS allowing non-TLS", server.Options{Host: "0.0.0.0", TLSConfig: mutual, AllowNonTLS: true}, false, false},
		{"0.0.0.0, server-only TLS", server.Options{Host: "0.0.0.0", TLSConfig: &tls.Config{}}, false, false},
		{"0.0.0.0, accounts only", server.Options{Host: "0.0.0.0", Accounts: []*server.Account{server.NewAccount("A")}}, false, false},
		{"routes on loopback", server.Options{Host: "127.0.0.1", Cluster: server.ClusterOpts{Host: "127.0.0.1", Port: -1}}, false, true},
		{"routes on 0.0.0.0, no route auth", server.Options{Host: "127.0.0.1", Cluster: server.ClusterOpts{Host: "0.0.0.0", Port: -1}}, false, false},
		{"routes on 0.0.0.0, route user", server.Options{Host: "127.0.0.1", Cluster: server.ClusterOpts{Host: "0.0.0.0", Port: -1, Username: "r", Password: "p"}}, false, true},
		{"routes on 0.0.0.0, route mutual TLS", server.Options{Host: "127.0.0.1", Cluster: server.ClusterOpts{Host: "0.0.0.0", Port: -1, TLSConfig: mutual}}, false, true},
		{"routes on 0.0.0.0, AllowAnonymous", server.Options{Host: "127.0.0.1", Cluster: server.ClusterOpts{Host: "0.0.0.0", Port: -1}}, true, true},
		{"no route listener", server.Options{Host: "127.0.0.1", Cluster: server.ClusterOpts{Host: "0.0.0.0"}}, false, true},
	}
	for _, tt := range tests {
		err := checkExposure(&tt.opts, tt.anonymous)
		if (err == nil) != tt.ok {
			t.Errorf("%s: checkExposure = %v, want ok = %v", tt.name, err, tt.ok)
		}
	}
}
