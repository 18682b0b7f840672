package config_test

import (
	"crypto/tls"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/transport"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
)

// natsOnly are the variables of a service served over NATS alone on an
// embedded server at port, without JetStream.
func natsOnly(port int, kv ...string) []string {
	return append([]string{"FERRY_TRANSPORTS_HTTP_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ENABLED", "false",
		"FERRY_ADMIN_ENABLED", "false", "FERRY_NATS_EMBEDDED_JETSTREAM", "false",
		"FERRY_NATS_EMBEDDED_PORT", strconv.Itoa(port)}, kv...)
}

// natsAddress is the NATS server address svc serves on.
func natsAddress(t *testing.T, svc *ferry.Service) string {
	t.Helper()
	addr, ok := svc.Addr("nats")
	if !ok {
		t.Fatal("the service serves no NATS address")
	}
	return addr
}

// echoOver calls echo's Echo on nc.
func echoOver(t *testing.T, nc *nats.Conn, text string) {
	t.Helper()
	got, err := transport.Invoke[echoMsg, echoMsg](ferrytest.Context(t), fnats.NewClient(nc), "echo", "Echo", &echoMsg{Text: text})
	if err != nil || got.Text != text {
		t.Fatalf("Echo over NATS = %v, %v, want %q", got, err, text)
	}
}

// Issue #12: the embedded server requires the credentials the service's
// own connection is configured with. The service starts and serves over
// NATS; a client without them is refused, one with them calls.
func TestEmbeddedRequiresServiceCredentials(t *testing.T) {
	for _, tc := range []struct {
		name  string
		creds []string
		opt   nats.Option
	}{
		{"user and password", []string{"FERRY_NATS_USER", "orders", "FERRY_NATS_PASSWORD", "s3cret"}, nats.UserInfo("orders", "s3cret")},
		{"token", []string{"FERRY_NATS_TOKEN", "t0ken"}, nats.Token("t0ken")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			svc, _ := startFromEnv(t, natsOnly(port, tc.creds...)...)
			url := natsAddress(t, svc)
			if want := "nats://127.0.0.1:" + strconv.Itoa(port); url != want {
				t.Errorf("NATS address %q, want %q", url, want)
			}
			if nc, err := nats.Connect(url); err == nil {
				nc.Close()
				t.Error("a client without credentials connected to the embedded server, want it refused")
			} else if !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("connect without credentials = %v, want %v", err, nats.ErrAuthorization)
			}
			nc, err := nats.Connect(url, tc.opt)
			if err != nil {
				t.Fatalf("connect with the service's credentials = %v", err)
			}
			defer nc.Close()
			echoOver(t, nc, "authenticated")
		})
	}
}

// nats.embedded.users are other clients with their own permissions: a
// caller allowed to publish echo.* calls; an intruder denied echo.> gets a
// permissions violation when it joins the service's queue group.
func TestEmbeddedUsers(t *testing.T) {
	port := freePort(t)
	file := writeFile(t, "ferry.yaml", `service: {name: echo}
admin: {enabled: false}
log: {level: error}
transports: {http: {enabled: false}, grpc: {enabled: false}}
nats:
  user: echo
  embedded:
    port: `+strconv.Itoa(port)+`
    jetstream: false
    users:
      - {name: caller, password: caller-secret, publish: {allow: ["echo.*"]}, subscribe: {allow: ["_INBOX.>"]}}
      - {name: intruder, password: intruder-secret, subscribe: {deny: ["echo.>"]}}
`)
	cfg, err := config.Load(config.Sources{File: file, Env: env("FERRY_NATS_PASSWORD", "echo-secret")})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := config.NewService(cfg, register)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ferrytest.Context(t)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(ctx)
	url := natsAddress(t, svc)

	caller, err := nats.Connect(url, nats.UserInfo("caller", "caller-secret"))
	if err != nil {
		t.Fatalf("connect as caller = %v", err)
	}
	defer caller.Close()
	echoOver(t, caller, "permitted")

	var violations ferrytest.NATSErrors
	intruder, err := nats.Connect(url, nats.UserInfo("intruder", "intruder-secret"), violations.Option())
	if err != nil {
		t.Fatalf("connect as intruder = %v", err)
	}
	defer intruder.Close()
	if _, err := intruder.QueueSubscribe("echo.*", "echo", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	violations.AwaitViolation(t, "the intruder's queue subscription to echo.* refused", "echo.*")
}

// Embedded TLS: the service's own connection trusts the server's
// certificate (pinned, or through nats.tls.ca_file) and, with a client CA,
// presents nats.tls.cert_file; other clients need TLS and, with a client
// CA, a certificate it signed.
func TestEmbeddedTLS(t *testing.T) {
	for _, tc := range []struct {
		name           string
		mutual, caFile bool
	}{
		{"server certificate pinned", false, false},
		{"server certificate through nats.tls.ca_file", false, true},
		{"client certificates required", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := ferrytest.TLS(t)
			port := freePort(t)
			kv := natsOnly(port, "FERRY_NATS_EMBEDDED_TLS_CERT_FILE", ca.CertFile, "FERRY_NATS_EMBEDDED_TLS_KEY_FILE", ca.KeyFile)
			if tc.mutual {
				own := ca.Sign(t)
				kv = append(kv, "FERRY_NATS_EMBEDDED_TLS_CLIENT_CA_FILE", ca.CertFile,
					"FERRY_NATS_TLS_CERT_FILE", own.CertFile, "FERRY_NATS_TLS_KEY_FILE", own.KeyFile)
			}
			if tc.caFile {
				kv = append(kv, "FERRY_NATS_TLS_CA_FILE", ca.CertFile)
			}
			svc, _ := startFromEnv(t, kv...)
			url := natsAddress(t, svc)
			if want := "tls://127.0.0.1:" + strconv.Itoa(port); url != want {
				t.Errorf("NATS address %q, want %q", url, want)
			}
			if nc, err := nats.Connect("nats://127.0.0.1:" + strconv.Itoa(port)); err == nil {
				nc.Close()
				t.Error("a client without TLS connected, want it refused")
			}
			if tc.mutual {
				if nc, err := nats.Connect(url, nats.Secure(ca.Client(false))); err == nil {
					nc.Close()
					t.Error("a client without a certificate connected, want it refused")
				}
			}
			client := ca.Client(false)
			if tc.mutual {
				client.Certificates = []tls.Certificate{ca.Sign(t).Cert}
			}
			nc, err := nats.Connect(url, nats.Secure(client))
			if err != nil {
				t.Fatalf("connect over TLS = %v", err)
			}
			defer nc.Close()
			echoOver(t, nc, "over tls")
		})
	}
}

// What the embedded server cannot do safely, or at all, is a configuration
// error naming the key and its source, before anything listens.
func TestEmbeddedBadConfig(t *testing.T) {
	f := ferrytest.TLS(t)
	named := []string{"FERRY_SERVICE_NAME", "x", "FERRY_TRANSPORTS_HTTP_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ENABLED", "false", "FERRY_ADMIN_ENABLED", "false"}
	tests := []struct {
		name string
		file string // YAML; "" for none
		env  []string
		want []string
	}{
		{name: "0.0.0.0 without credentials", env: []string{"FERRY_NATS_EMBEDDED_HOST", "0.0.0.0"},
			want: []string{`nats.embedded.host = "0.0.0.0" (from env FERRY_NATS_EMBEDDED_HOST)`, "nats.user and nats.password", "allow_anonymous"}},
		{name: "LAN address without credentials", file: "nats: {embedded: {host: 192.168.1.10}}\n",
			want: []string{`nats.embedded.host = "192.168.1.10" (from file `}},
		{name: "creds file", env: []string{"FERRY_NATS_CREDS_FILE", f.CertFile},
			want: []string{"nats.creds_file", "(from env FERRY_NATS_CREDS_FILE)", "cannot check JWT credentials", "nats.url"}},
		{name: "nkey file", env: []string{"FERRY_NATS_NKEY_FILE", f.KeyFile},
			want: []string{"nats.nkey_file", "(from env FERRY_NATS_NKEY_FILE)", "cannot check NKeys", "nats.url"}},
		{name: "users without the service's user", file: "nats: {embedded: {users: [{name: a, password: p}]}}\n",
			want: []string{"nats.user (from default): is required with nats.embedded.users"}},
		{name: "users with a token", file: "nats: {token: t, embedded: {users: [{name: a, password: p}]}}\n",
			want: []string{"nats.embedded.users (from file ", "cannot be used with nats.token"}},
		{name: "user twice", file: "nats: {user: a, password: p, embedded: {users: [{name: a, password: q}]}}\n",
			want: []string{`nats.embedded.users = "a" (from file `, "listed twice"}},
		{name: "client CA without the service's certificate", env: []string{"FERRY_NATS_EMBEDDED_TLS_CERT_FILE", f.CertFile,
			"FERRY_NATS_EMBEDDED_TLS_KEY_FILE", f.KeyFile, "FERRY_NATS_EMBEDDED_TLS_CLIENT_CA_FILE", f.CertFile},
			want: []string{"nats.tls.cert_file (from default): is required with nats.embedded.tls.client_ca_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := config.Sources{Env: env(append(slices.Clone(named), tt.env...)...)}
			if tt.file != "" {
				src.File = writeFile(t, "ferry.yaml", tt.file)
			}
			cfg, err := config.Load(src)
			if err != nil {
				t.Fatalf("Load = %v, want it to pass", err)
			}
			_, err = config.NewService(cfg, nil)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("NewService = %v, want a *config.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// Credentials, TLS client certificates or allow_anonymous let an
// embedded server listen beyond loopback (the services are built, not
// started: nothing listens on 0.0.0.0).
func TestEmbeddedNonLoopbackAllowed(t *testing.T) {
	f := ferrytest.TLS(t)
	for name, kv := range map[string][]string{
		"user":            {"FERRY_NATS_USER", "a", "FERRY_NATS_PASSWORD", "p"},
		"token":           {"FERRY_NATS_TOKEN", "t"},
		"allow_anonymous": {"FERRY_NATS_EMBEDDED_ALLOW_ANONYMOUS", "true"},
		"client certificates": {"FERRY_NATS_EMBEDDED_TLS_CERT_FILE", f.CertFile, "FERRY_NATS_EMBEDDED_TLS_KEY_FILE", f.KeyFile,
			"FERRY_NATS_EMBEDDED_TLS_CLIENT_CA_FILE", f.CertFile, "FERRY_NATS_TLS_CERT_FILE", f.CertFile, "FERRY_NATS_TLS_KEY_FILE", f.KeyFile},
	} {
		cfg, err := config.Load(config.Sources{Env: env(append([]string{"FERRY_SERVICE_NAME", "x", "FERRY_NATS_EMBEDDED_HOST", "0.0.0.0",
			"FERRY_TELEMETRY_ENABLED", "false", "FERRY_ADMIN_ENABLED", "false"}, kv...)...)})
		if err != nil {
			t.Fatalf("%s: Load = %v", name, err)
		}
		if _, err := config.NewService(cfg, nil); err != nil {
			t.Errorf("%s: NewService with host 0.0.0.0 = %v, want nil", name, err)
		}
	}
}

// nats.embedded.users is checked at load: subjects as nats-server checks
// them, and its passwords are never printed.
func TestEmbeddedUsersInvalid(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want []string
	}{
		{"[{name: a, password: hunter2, publish: {allow: [a..b]}}]", []string{`nats.embedded.users[0].publish.allow[0] = "a..b" (from file `, "want a NATS subject"}},
		{"[{name: a, password: hunter2, publish: {allow: ['a.* q']}}]", []string{"nats.embedded.users[0].publish.allow[0]"}},
		{"[{name: a, password: hunter2, subscribe: {deny: ['a.* q r']}}]", []string{"nats.embedded.users[0].subscribe.deny[0]", "optionally a space and a queue group"}},
		{"[{name: a, password: hunter2, subscribe: {allow: ['a.* q']}}, {password: hunter2}]", []string{"nats.embedded.users[1].name (from file ", "is required"}},
		{"[{name: a, password: hunter2, permissions: {}}]", []string{`nats.embedded.users = "(redacted)" (from file`}},
	} {
		file := writeFile(t, "ferry.yaml", "service: {name: x}\nnats: {user: s, password: p, embedded: {users: "+tc.yaml+"}}\n")
		_, err := config.Load(config.Sources{File: file, Env: env()})
		if err == nil {
			t.Errorf("Load(users: %s) = nil, want an error", tc.yaml)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Load(users: %s) = %q\nwant it to contain %q", tc.yaml, err, w)
			}
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Load(users: %s) = %q, shows a password", tc.yaml, err)
		}
	}
}
