package config_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/transport"
	fnats "github.com/ferry-go/ferry/transport/nats"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// secureNATS starts a NATS server that requires TLS and a user/password.
func secureNATS(t *testing.T, f ferrytest.TLSFiles) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Username: "orders", Password: "s3cret",
		TLSConfig: f.Server(false), TLS: true, TLSTimeout: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(ferrytest.WaitBound) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// Issue #11 defect 13: the service's NATS connection takes credentials and
// TLS from the configuration.
func TestNATSCredentialsAndTLS(t *testing.T) {
	f := ferrytest.TLS(t)
	ns := secureNATS(t, f)
	url := "tls://" + ns.Addr().String()
	base := []string{"FERRY_TRANSPORTS_HTTP_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ENABLED", "false",
		"FERRY_ADMIN_ENABLED", "false", "FERRY_NATS_URL", url, "FERRY_NATS_USER", "orders", "FERRY_NATS_TLS_CA_FILE", f.CertFile}

	_, ctx := startFromEnv(t, append(base, "FERRY_NATS_PASSWORD", "s3cret")...)
	nc, err := nats.Connect(url, nats.UserInfo("orders", "s3cret"), nats.RootCAs(f.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got, err := transport.Invoke[echoMsg, echoMsg](ctx, fnats.NewClient(nc), "echo", "Echo", &echoMsg{Text: "secure"})
	if err != nil || got.Text != "secure" {
		t.Fatalf("Echo over NATS with TLS and a password = %v, %v", got, err)
	}

	// A wrong password: the service does not start, and says why.
	cfg, err := config.Load(config.Sources{Env: env(append([]string{"FERRY_SERVICE_NAME", "echo", "FERRY_LOG_LEVEL", "error", "FERRY_NATS_PASSWORD", "wrong"}, base...)...)})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := config.NewService(cfg, register)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := svc.Start(sctx); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("Start with a wrong NATS password = %v, want an authorization error", err)
	}
}

// A configuration error about a secret never prints the secret back.
func TestSecretsRedacted(t *testing.T) {
	_, err := config.Load(config.Sources{Env: env("FERRY_SERVICE_NAME", "echo", "FERRY_NATS_PASSWORD", "hunter2")})
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("Load with a password and no user = %v, want a configuration error", err)
	}
	if msg := err.Error(); strings.Contains(msg, "hunter2") || !strings.Contains(msg, "nats.user") {
		t.Errorf("error = %q, want it to name nats.user and not show the password", msg)
	}
}
