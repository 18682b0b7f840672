package config_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// TestTLS: with cert_file and key_file, HTTP serves HTTPS (and registers
// an https:// address) and gRPC serves TLS.
func TestTLS(t *testing.T) {
	f := ferrytest.TLS(t)
	cert, key, pool := f.CertFile, f.KeyFile, f.Pool
	svc, ctx := startFromEnv(t, "FERRY_TRANSPORTS_NATS_ENABLED", "false", "FERRY_REGISTRY_KIND", "memory",
		"FERRY_TRANSPORTS_HTTP_ADDR", "127.0.0.1:0", "FERRY_TRANSPORTS_GRPC_ADDR", "127.0.0.1:0", "FERRY_ADMIN_ADDR", "127.0.0.1:0",
		"FERRY_TRANSPORTS_HTTP_TLS_CERT_FILE", cert, "FERRY_TRANSPORTS_HTTP_TLS_KEY_FILE", key,
		"FERRY_TRANSPORTS_GRPC_TLS_CERT_FILE", cert, "FERRY_TRANSPORTS_GRPC_TLS_KEY_FILE", key)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if n := len(svc.Instance().Endpoints); n != 2 {
		t.Fatalf("registered %d endpoints, want HTTP and gRPC", n)
	}
	for _, ep := range svc.Instance().Endpoints {
		var (
			c   transport.Client
			err error
		)
		switch ep.Transport {
		case "http":
			if !strings.HasPrefix(ep.Address, "https://") {
				t.Errorf("registered HTTP address %q, want https://", ep.Address)
			}
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
			defer hc.CloseIdleConnections()
			c, err = fhttp.NewClient(ep.Address, fhttp.WithHTTPClient(hc))
		case "grpc":
			c, err = fgrpc.NewClient(ep.Address, fgrpc.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(tc))))
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := transport.Invoke[echoMsg, echoMsg](ctx, c, "echo", "Echo", &echoMsg{Text: "tls"})
		if err != nil || got.Text != "tls" {
			t.Errorf("Echo over %s with TLS = %v, %v", ep.Transport, got, err)
		}
		if cl, ok := c.(interface{ Close() error }); ok {
			_ = cl.Close()
		}
	}
}

// TestMutualTLS: with client_ca_file too, the transports require a client
// certificate the CA signed.
func TestMutualTLS(t *testing.T) {
	f := ferrytest.TLS(t)
	svc, ctx := startFromEnv(t, "FERRY_TRANSPORTS_NATS_ENABLED", "false", "FERRY_REGISTRY_KIND", "memory",
		"FERRY_TRANSPORTS_HTTP_ADDR", "127.0.0.1:0", "FERRY_TRANSPORTS_GRPC_ADDR", "127.0.0.1:0", "FERRY_ADMIN_ADDR", "127.0.0.1:0",
		"FERRY_TRANSPORTS_HTTP_TLS_CERT_FILE", f.CertFile, "FERRY_TRANSPORTS_HTTP_TLS_KEY_FILE", f.KeyFile,
		"FERRY_TRANSPORTS_HTTP_TLS_CLIENT_CA_FILE", f.CertFile,
		"FERRY_TRANSPORTS_GRPC_TLS_CERT_FILE", f.CertFile, "FERRY_TRANSPORTS_GRPC_TLS_KEY_FILE", f.KeyFile,
		"FERRY_TRANSPORTS_GRPC_TLS_CLIENT_CA_FILE", f.CertFile)
	for _, ep := range svc.Instance().Endpoints {
		if !ep.TLS {
			t.Errorf("registered %s endpoint %+v, want TLS", ep.Transport, ep)
		}
		for _, mutual := range []bool{true, false} {
			var (
				c   transport.Client
				err error
			)
			switch ep.Transport {
			case "http":
				c, err = fhttp.NewClient(ep.Address, fhttp.WithClientTLS(f.Client(mutual)))
			case "grpc":
				c, err = fgrpc.NewClient(ep.Address, fgrpc.WithClientTLS(f.Client(mutual)))
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = transport.Invoke[echoMsg, echoMsg](ctx, c, "echo", "Echo", &echoMsg{Text: "tls"})
			if mutual && err != nil {
				t.Errorf("Echo over %s with a client certificate = %v, want success", ep.Transport, err)
			}
			if !mutual && err == nil {
				t.Errorf("Echo over %s without a client certificate succeeded, want the handshake refused", ep.Transport)
			}
			_ = c.Close()
		}
	}
}
