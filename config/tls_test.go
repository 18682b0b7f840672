package config_test

import (
	"crypto/tls"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/errs"
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

// TestClientTLSFromConfig (issue #12): config.Client dials the TLS
// endpoints the registry lists with client.tls — per transport, with mutual
// TLS: with the client certificate the call succeeds, without it the
// callee refuses the handshake. clients.<service>.tls is merged over
// client.tls key by key.
func TestClientTLSFromConfig(t *testing.T) {
	f := ferrytest.TLS(t)
	natsURL := startNATS(t)
	startConfigured(t, backRegister(nil), "FERRY_SERVICE_NAME", "back", "FERRY_ADMIN_ENABLED", "false",
		"FERRY_TRANSPORTS_NATS_ENABLED", "false", "FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats",
		"FERRY_TRANSPORTS_HTTP_ADDR", "127.0.0.1:0", "FERRY_TRANSPORTS_GRPC_ADDR", "127.0.0.1:0",
		"FERRY_TRANSPORTS_HTTP_TLS_CERT_FILE", f.CertFile, "FERRY_TRANSPORTS_HTTP_TLS_KEY_FILE", f.KeyFile,
		"FERRY_TRANSPORTS_HTTP_TLS_CLIENT_CA_FILE", f.CertFile,
		"FERRY_TRANSPORTS_GRPC_TLS_CERT_FILE", f.CertFile, "FERRY_TRANSPORTS_GRPC_TLS_KEY_FILE", f.KeyFile,
		"FERRY_TRANSPORTS_GRPC_TLS_CLIENT_CA_FILE", f.CertFile)
	for _, tr := range []string{"grpc", "http"} {
		t.Run(tr, func(t *testing.T) {
			caller := func(kv ...string) transport.Client {
				svc := startConfigured(t, register, append([]string{"FERRY_SERVICE_NAME", "front", "FERRY_ADMIN_ENABLED", "false",
					"FERRY_TRANSPORTS_GRPC_ENABLED", "false", "FERRY_TRANSPORTS_NATS_ENABLED", "false", "FERRY_TRANSPORTS_HTTP_ADDR", "127.0.0.1:0",
					"FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats", "FERRY_CLIENT_TRANSPORTS", tr,
					"FERRY_CLIENT_RETRY_MAX_ATTEMPTS", "1"}, kv...)...)
				return config.Client(svc)
			}
			ctx := ferrytest.Context(t)
			mutual := caller("FERRY_CLIENTS", `{"back": {"tls": {"cert_file": "`+f.CertFile+`", "key_file": "`+f.KeyFile+`"}}}`,
				"FERRY_CLIENT_TLS_CA_FILE", f.CertFile)
			ferrytest.Eventually(t, "back found and called over "+tr+" with TLS", func() bool {
				got, err := backEcho.Call(ctx, mutual, &echoMsg{Text: "tls"})
				return err == nil && got.Text == "tls>back"
			})
			noCert := caller("FERRY_CLIENT_TLS_CA_FILE", f.CertFile)
			if _, err := backEcho.Call(ctx, noCert, &echoMsg{Text: "tls"}); errs.CodeOf(err) != errs.Unavailable {
				t.Errorf("call without a client certificate = %v, want Unavailable (handshake refused)", err)
			}
			noCA := caller()
			if _, err := backEcho.Call(ctx, noCA, &echoMsg{Text: "tls"}); errs.CodeOf(err) != errs.Unavailable {
				t.Errorf("call without the CA = %v, want Unavailable (certificate not trusted)", err)
			}
		})
	}
}

// TestStaticRegistryTLS: an instance of the static registry listed with
// tls: [grpc] is dialled with TLS (client.tls), as one the NATS registry
// learnt from the service itself.
func TestStaticRegistryTLS(t *testing.T) {
	f := ferrytest.TLS(t)
	grpcAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	startConfigured(t, backRegister(nil), "FERRY_SERVICE_NAME", "back", "FERRY_ADMIN_ENABLED", "false",
		"FERRY_TRANSPORTS_NATS_ENABLED", "false", "FERRY_TRANSPORTS_HTTP_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ADDR", grpcAddr,
		"FERRY_TRANSPORTS_GRPC_TLS_CERT_FILE", f.CertFile, "FERRY_TRANSPORTS_GRPC_TLS_KEY_FILE", f.KeyFile,
		"FERRY_TRANSPORTS_GRPC_TLS_CLIENT_CA_FILE", f.CertFile)
	ctx := ferrytest.Context(t)
	for _, tlsList := range []string{`["grpc"]`, `[]`} {
		front := startConfigured(t, register, "FERRY_SERVICE_NAME", "front", "FERRY_ADMIN_ENABLED", "false",
			"FERRY_TRANSPORTS_GRPC_ENABLED", "false", "FERRY_TRANSPORTS_NATS_ENABLED", "false", "FERRY_TRANSPORTS_HTTP_ADDR", "127.0.0.1:0",
			"FERRY_REGISTRY_KIND", "static", "FERRY_REGISTRY_STATIC", `[{"service": "back", "id": "b1", "endpoints": {"grpc": "`+grpcAddr+`"}, "tls": `+tlsList+`}]`,
			"FERRY_CLIENT_RETRY_MAX_ATTEMPTS", "1",
			"FERRY_CLIENT_TLS_CA_FILE", f.CertFile, "FERRY_CLIENT_TLS_CERT_FILE", f.CertFile, "FERRY_CLIENT_TLS_KEY_FILE", f.KeyFile)
		got, err := backEcho.Call(ctx, config.Client(front), &echoMsg{Text: "static"})
		if tlsList != `[]` && (err != nil || got.Text != "static>back") {
			t.Errorf("call to a static instance listed with tls = %v, %v; want success over TLS", got, err)
		}
		if tlsList == `[]` && err == nil {
			t.Error("call to a TLS instance listed without tls succeeded: want it refused (plaintext to a TLS server)")
		}
	}
}
