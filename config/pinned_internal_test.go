package config

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/ferrytest"
)

// The service's own connection to its embedded TLS server accepts exactly
// the certificate that server was configured with: a server presenting
// another certificate — even one for the same host, from a CA the system
// might trust — is refused.
func TestPinned(t *testing.T) {
	own, other := ferrytest.TLS(t), ferrytest.TLS(t)
	for _, tc := range []struct {
		name   string
		server tls.Certificate
		ok     bool
	}{
		{"the pinned certificate", own.Cert, true},
		{"another certificate", other.Cert, false},
		{"a certificate the pinned one signed", own.Sign(t).Cert, false},
	} {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{tc.server}, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			c, err := ln.Accept()
			if err == nil {
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		// Dial by the unspecified address, as a service whose embedded
		// server listens on 0.0.0.0 does: no host name to match.
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		c, err := tls.Dial("tcp", net.JoinHostPort("0.0.0.0", port), pinned(own.Cert))
		if err == nil {
			c.Close()
		}
		ln.Close()
		<-done
		if tc.ok && err != nil {
			t.Errorf("%s: handshake = %v, want success", tc.name, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "embedded server's certificate")) {
			t.Errorf("%s: handshake = %v, want the pin to refuse it", tc.name, err)
		}
	}
}
