package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ferry test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS: with cert_file and key_file, HTTP serves HTTPS (and registers
// an https:// address) and gRPC serves TLS.
func TestTLS(t *testing.T) {
	cert, key, pool := selfSigned(t)
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
