package config_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"
	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite docs/CONFIG.md")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a fake environment.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "ferry.yaml", `
service: {name: from-file, version: 1.2.3}
transports:
  http: {addr: ":1111"}
  grpc: {addr: ":1112"}
log: {level: debug}
shutdown_timeout: 3s
`)
	cfg, err := config.Load(config.Sources{
		File:  file,
		Env:   env("FERRY_TRANSPORTS_HTTP_ADDR", ":2222", "FERRY_TRANSPORTS_GRPC_ADDR", ":2223", "FERRY_LOG_LEVEL", "error"),
		Flags: flags(t, "--grpc-addr", ":3333", "--set", "log.level=warn"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key, got, want, source string
	}{
		{"service.name", cfg.Service.Name, "from-file", "file " + file},
		{"transports.http.addr", cfg.Transports.HTTP.Addr, ":2222", "env FERRY_TRANSPORTS_HTTP_ADDR"},
		{"transports.grpc.addr", cfg.Transports.GRPC.Addr, ":3333", "flag --grpc-addr"},
		{"log.level", cfg.Log.Level, "warn", "flag --set log.level"},
		{"log.format", cfg.Log.Format, "text", "default"},
	} {
		if c.got != c.want || cfg.Source(c.key) != c.source {
			t.Errorf("%s = %q from %q, want %q from %q", c.key, c.got, cfg.Source(c.key), c.want, c.source)
		}
	}
	if cfg.ShutdownTimeout != 3*time.Second {
		t.Errorf("shutdown_timeout = %v, want 3s", cfg.ShutdownTimeout)
	}
}

// TestEnvOnly is viper's AutomaticEnv + Unmarshal trap: a key set only in
// the environment — in no file, nested, of every type — must arrive.
func TestEnvOnly(t *testing.T) {
	cfg, err := config.Load(config.Sources{Env: env(
		"FERRY_SERVICE_NAME", "envonly",
		"FERRY_TRANSPORTS_GRPC_ENABLED", "false",
		"FERRY_REGISTRY_KIND", "nats",
		"FERRY_REGISTRY_NATS_TTL", "3s",
		"FERRY_REGISTRY_NATS_REPLICAS", "3",
		"FERRY_BROKER_JETSTREAM_STREAMS", `[{"name":"ORDERS","subjects":["orders.>"],"max_age":"1h"}]`,
		"FERRY_MIDDLEWARE", `[{"name":"bulkhead","settings":{"max":10}}]`,
	)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Service.Name != "envonly" || cfg.Transports.GRPC.Enabled || cfg.Registry.Kind != "nats" ||
		cfg.Registry.NATS.TTL != 3*time.Second || cfg.Registry.NATS.Replicas != 3 ||
		len(cfg.Broker.JetStream.Streams) != 1 || cfg.Broker.JetStream.Streams[0].MaxAge != time.Hour ||
		cfg.Broker.JetStream.Streams[0].Subjects[0] != "orders.>" || len(cfg.Middleware) != 1 {
		t.Errorf("config from env only = %+v", cfg)
	}
	// The real environment too, through os.LookupEnv.
	t.Setenv("FERRY_SERVICE_NAME", "realenv")
	t.Setenv("FERRY_LOG_FORMAT", "json")
	cfg, err = config.Load(config.Sources{File: writeFile(t, "empty.yaml", "{}\n")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Service.Name != "realenv" || cfg.Log.Format != "json" {
		t.Errorf("config from the process environment = %+v", cfg)
	}
}

// TestBadConfig: every bad configuration fails at load (or build, or
// start) with a message naming the key, where the value came from, and
// what was expected.
func TestBadConfig(t *testing.T) {
	named := "FERRY_SERVICE_NAME"
	tests := []struct {
		name   string
		file   string // YAML; "" for none
		env    []string
		flags  []string
		want   []string // substrings of the error
		stage  string   // "load" (default), "build"
		noFile bool     // point --config at a missing file
	}{
		{name: "malformed duration in env", env: []string{named, "x", "FERRY_SHUTDOWN_TIMEOUT", "5 parsecs"},
			want: []string{`shutdown_timeout = "5 parsecs" (from env FERRY_SHUTDOWN_TIMEOUT): want a duration such as 500ms, 10s or 1m30s`}},
		{name: "malformed duration in file", file: "service: {name: x}\nregistry: {nats: {ttl: soon}}\n",
			want: []string{`registry.nats.ttl = "soon" (from file `, "want a duration"}},
		{name: "missing required key", want: []string{"service.name (from default): is required"}},
		{name: "unknown key in file", file: "service: {name: x}\ntransports: {htp: {addr: ':1'}}\n",
			want: []string{"transports.htp.addr (from file ", "unknown key (did you mean transports.http.addr?)"}},
		{name: "unreadable file", noFile: true, env: []string{named, "x"},
			want: []string{"config", "(from flag --config): cannot read the configuration file"}},
		{name: "bad level from flag", env: []string{named, "x"}, flags: []string{"--log-level", "loud"},
			want: []string{`log.level = "loud" (from flag --log-level): want one of: debug, info, warn, error`}},
		{name: "enabled without address", env: []string{named, "x", "FERRY_TRANSPORTS_HTTP_ADDR", ""},
			want: []string{"transports.http.addr (from env FERRY_TRANSPORTS_HTTP_ADDR): is required when transports.http.enabled is true"}},
		{name: "address without port", env: []string{named, "x"}, flags: []string{"--http-addr", "8080"},
			want: []string{`transports.http.addr = "8080" (from flag --http-addr): want host:port`}},
		{name: "not a number", env: []string{named, "x", "FERRY_NATS_EMBEDDED_PORT", "four"},
			want: []string{`nats.embedded.port = "four" (from env FERRY_NATS_EMBEDDED_PORT): want a whole number`}},
		{name: "port out of range", env: []string{named, "x", "FERRY_NATS_EMBEDDED_PORT", "70000"},
			want: []string{`nats.embedded.port = "70000" (from env FERRY_NATS_EMBEDDED_PORT): want at most 65535`}},
		{name: "bad boolean", env: []string{named, "x", "FERRY_TRANSPORTS_NATS_ENABLED", "yes please"},
			want: []string{"transports.nats.enabled", "want true or false"}},
		{name: "certificate without key", file: "service: {name: x}\ntransports: {grpc: {tls: {cert_file: /etc/hostname}}}\n",
			want: []string{"transports.grpc.tls.key_file", "is required with transports.grpc.tls.cert_file"}},
		{name: "bad service name", env: []string{named, "1bad"},
			want: []string{`service.name = "1bad" (from env FERRY_SERVICE_NAME): want a letter, then letters, digits, '-' or '_'`}},
		{name: "malformed --set", env: []string{named, "x"}, flags: []string{"--set", "novalue"},
			want: []string{`set = "novalue" (from flag --set): want KEY=VALUE`}},
		{name: "unknown --set key", env: []string{named, "x"}, flags: []string{"--set", "transport.http.addr=:1"},
			want: []string{"transport.http.addr (from flag --set transport.http.addr): unknown key (did you mean transports.http.addr?)"}},
		{name: "bad JSON list in env", env: []string{named, "x", "FERRY_BROKER_JETSTREAM_STREAMS", "[{"},
			want: []string{"broker.jetstream.streams", "(from env FERRY_BROKER_JETSTREAM_STREAMS): want JSON"}},
		{name: "unknown registry", stage: "build", file: "service: {name: x}\nregistry: {kind: consul}\n",
			want: []string{`registry.kind = "consul" (from file `, "unknown registry; known: dns, memory, nats, none, srv, static"}},
		{name: "unknown broker", stage: "build", env: []string{named, "x", "FERRY_BROKER_KIND", "kafka"},
			want: []string{`broker.kind = "kafka" (from env FERRY_BROKER_KIND): unknown broker; known: jetstream, memory, nats, none`}},
		{name: "unknown middleware", stage: "build", file: "service: {name: x}\nmiddleware: [{name: magic}]\n",
			want: []string{`middleware[0] = "magic" (from file `, "unknown middleware; known: auth, bulkhead, ratelimit, requestid, shed, timeout, validate"}},
		{name: "bad middleware settings", stage: "build", file: "service: {name: x}\nmiddleware: [{name: bulkhead, settings: {max: 0}}]\n",
			want: []string{`middleware[0] = "bulkhead" (from file `, "settings.max = 0: want at least 1"}},
		{name: "bulkhead without max", stage: "build", file: "service: {name: x}\nmiddleware: [{name: bulkhead}]\n",
			want: []string{`middleware[0] = "bulkhead"`, "want settings.max (the most calls in flight)"}},
		{name: "timeout not a duration", stage: "build", file: "service: {name: x}\nmiddleware: [{name: timeout, settings: {timeout: soon}}]\n",
			want: []string{`middleware[0] = "timeout"`, "settings:", "soon"}},
		{name: "timeout negative", stage: "build", file: "service: {name: x}\nmiddleware: [{name: timeout, settings: {timeout: -1s}}]\n",
			want: []string{`middleware[0] = "timeout"`, "want a positive duration"}},
		{name: "ratelimit unknown setting", stage: "build", file: "service: {name: x}\nmiddleware: [{name: ratelimit, settings: {per_second: 5, brust: 2}}]\n",
			want: []string{`middleware[0] = "ratelimit"`, "brust"}},
		{name: "ratelimit zero rate", stage: "build", file: "service: {name: x}\nmiddleware: [{name: ratelimit, settings: {per_second: 0}}]\n",
			want: []string{`middleware[0] = "ratelimit"`, "settings.per_second = 0: want more than 0"}},
		{name: "shed without max", stage: "build", file: "service: {name: x}\nmiddleware: [{name: shed, settings: {retry_after: 2s}}]\n",
			want: []string{`middleware[0] = "shed"`, "want settings.max"}},
		{name: "requestid takes no settings", stage: "build", file: "service: {name: x}\nmiddleware: [{name: requestid, settings: {header: X-Id}}]\n",
			want: []string{`middleware[0] = "requestid"`, "header"}},
		{name: "validate takes no settings", stage: "build", file: "service: {name: x}\nmiddleware: [{name: validate, settings: {strict: true}}]\n",
			want: []string{`middleware[0] = "validate"`, "strict"}},
		{name: "auth without credentials", stage: "build", file: "service: {name: x}\nmiddleware: [{name: auth, settings: {issuer: me}}]\n",
			want: []string{`middleware[0] = "auth"`, "want settings.hmac_secret_env or settings.api_keys_file"}},
		{name: "auth secret env unset", stage: "build", file: "service: {name: x}\nmiddleware: [{name: auth, settings: {hmac_secret_env: FERRY_TEST_UNSET_SECRET}}]\n",
			want: []string{`middleware[1-9]?`[:0] + `middleware[0] = "auth"`, "FERRY_TEST_UNSET_SECRET is empty or unset"}},
		{name: "clients: bad service name", file: "service: {name: x}\nclients: {9lives: {timeout: 1s}}\n",
			want: []string{`clients[9lives] = "9lives" (from file `, "want a letter, then letters, digits, '-' or '_'"}},
		{name: "clients: unknown transport", file: "service: {name: x}\nclients: {payments: {transports: [quic]}}\n",
			want: []string{"clients[payments].transports[0]", "want one of: nats, grpc, http"}},
		{name: "clients: unknown key", file: "service: {name: x}\nclients: {payments: {timeuot: 1s}}\n",
			want: []string{"clients = ", "want a map", "'[payments]' has invalid keys: timeuot"}},
		{name: "clients: certificate without key", file: "service: {name: x}\nclients: {payments: {tls: {cert_file: /etc/hostname}}}\n",
			want: []string{"clients[payments].tls.key_file", "is required with clients[payments].tls.cert_file"}},
		{name: "client: too many attempts", env: []string{named, "x", "FERRY_CLIENT_RETRY_MAX_ATTEMPTS", "9"},
			want: []string{`client.retry.max_attempts = "9" (from env FERRY_CLIENT_RETRY_MAX_ATTEMPTS): want at most 5`}},
		{name: "client: unknown gRPC compressor", env: []string{named, "x", "FERRY_CLIENT_GRPC_COMPRESSION", "zstd"},
			want: []string{`client.grpc_compression = "zstd" (from env FERRY_CLIENT_GRPC_COMPRESSION): want one of: gzip, identity`}},
		{name: "clients: unknown gRPC compressor", file: "service: {name: x}\nclients: {payments: {grpc_compression: br}}\n",
			want: []string{"clients[payments].grpc_compression", "want one of: gzip, identity"}},
		{name: "client: CA file without certificates", stage: "build", env: []string{named, "x", "FERRY_CLIENT_TLS_CA_FILE", "/etc/hostname"},
			want: []string{`client.tls.ca_file = "/etc/hostname" (from env FERRY_CLIENT_TLS_CA_FILE): holds no PEM certificate`}},
		{name: "gateway without a registry or NATS", stage: "build", env: []string{named, "x", "FERRY_GATEWAY_ENABLED", "true", "FERRY_TRANSPORTS_NATS_ENABLED", "false"},
			want: []string{"gateway.enabled = \"true\" (from env FERRY_GATEWAY_ENABLED): the gateway routes the services of a registry, or those NATS discovery finds: set registry.kind", "enable NATS (transports.nats.enabled)"}},
		{name: "gateway route path", file: "service: {name: x}\ngateway: {routes: [{service: greeter, endpoint: Hello, path: api/hello}]}\n",
			want: []string{"gateway.routes[0].path", "want it to start with /"}},
		{name: "gateway pin without endpoint", stage: "build", file: "service: {name: x}\nregistry: {kind: memory}\ngateway: {enabled: true, routes: [{service: greeter, pin: true}]}\n",
			want: []string{"gateway.routes (from file ", "path and pin need an endpoint"}},
		{name: "gateway max body zero", env: []string{named, "x", "FERRY_GATEWAY_MAX_BODY", "0"},
			want: []string{`gateway.max_body = "0" (from env FERRY_GATEWAY_MAX_BODY): cannot be 0`}},
		{name: "nothing enabled", stage: "build", env: []string{named, "x", "FERRY_TRANSPORTS_HTTP_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ENABLED", "false", "FERRY_TRANSPORTS_NATS_ENABLED", "false"},
			want: []string{"no transport is enabled and there is no broker"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := config.Sources{Env: env(tt.env...)}
			if tt.file != "" {
				src.File = writeFile(t, "ferry.yaml", tt.file)
			}
			args := tt.flags
			if tt.noFile {
				args = append(args, "--config", filepath.Join(t.TempDir(), "missing.yaml"))
			}
			src.Flags = flags(t, args...)
			cfg, err := config.Load(src)
			if tt.stage == "build" {
				if err != nil {
					t.Fatalf("Load = %v, want it to pass", err)
				}
				_, err = config.NewService(cfg, nil)
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v, want a *config.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	file := writeFile(t, "ferry.yaml", "service: {name: x}\nadmin: {enabled: false}\ntransports: {grpc: {enabled: false}, nats: {enabled: false}, http: {addr: '"+ln.Addr().String()+"'}}\n")
	cfg, err := config.Load(config.Sources{File: file, Env: env()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := config.NewService(cfg, register)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = svc.Start(ctx)
	if err == nil {
		_ = svc.Stop(ctx)
		t.Fatal("Start on a port in use = nil, want an error")
	}
	if want := "transports.http.addr (from file " + file + "): http: listen on"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Start = %q, want it to contain %q and the listen error", err, want)
	}
}

// startFromEnv runs a service "echo" configured by kv (environment
// variables; errors-only logs) until the end of the test.
func startFromEnv(t *testing.T, kv ...string) (*ferry.Service, context.Context) {
	t.Helper()
	return startConfigured(t, register, append([]string{"FERRY_SERVICE_NAME", "echo"}, kv...)...), ferrytest.Context(t)
}

// startConfigured builds a service from environment variables kv (and
// errors-only logs) with register, and runs it until the end of the test.
func startConfigured(t *testing.T, register func(*ferry.Service, *server.Server), kv ...string) *ferry.Service {
	t.Helper()
	return startWith(t, register, nil, kv...)
}

// startWith is startConfigured with NewService options.
func startWith(t *testing.T, register func(*ferry.Service, *server.Server), opts []config.Option, kv ...string) *ferry.Service {
	t.Helper()
	cfg, err := config.Load(config.Sources{Env: env(append([]string{"FERRY_LOG_LEVEL", "error"}, kv...)...)})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := config.NewService(cfg, register, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ferrytest.Context(t)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), ferrytest.WaitBound)
		defer cancel()
		_ = svc.Stop(sctx)
	})
	return svc
}

type echoMsg struct {
	Text string `json:"text"`
}

func register(_ *ferry.Service, srv *server.Server) {
	server.Handle(srv, "Echo", func(_ context.Context, m *echoMsg) (*echoMsg, error) { return m, nil })
}

// TestOneBinaryTwoConfigs: the same code serves HTTP only with one file
// and gRPC + NATS with another; an environment variable overrides the
// file.
func TestOneBinaryTwoConfigs(t *testing.T) {
	httpOnly := writeFile(t, "http.yaml", `
service: {name: echo}
transports:
  http: {enabled: true, addr: "127.0.0.1:1"}  # overridden by the environment
  grpc: {enabled: false}
  nats: {enabled: false}
registry: {kind: memory}
log: {level: error}
admin: {addr: "127.0.0.1:0"}
`)
	grpcNATS := writeFile(t, "grpc-nats.yaml", `
service: {name: echo}
transports:
  http: {enabled: false}
  grpc: {enabled: true, addr: "127.0.0.1:0"}
  nats: {enabled: true}
nats:
  embedded: {port: 0, jetstream: false}
registry: {kind: memory}
log: {level: error}
admin: {addr: "127.0.0.1:0"}
`)
	for _, tc := range []struct {
		file string
		env  []string
		want []string // transports served
	}{
		{httpOnly, []string{"FERRY_TRANSPORTS_HTTP_ADDR", "127.0.0.1:0"}, []string{"http"}},
		{grpcNATS, nil, []string{"grpc", "nats"}},
	} {
		cfg, err := config.Load(config.Sources{File: tc.file, Env: env(tc.env...)})
		if err != nil {
			t.Fatal(err)
		}
		svc, err := config.NewService(cfg, register)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := svc.Start(ctx); err != nil {
			cancel()
			t.Fatalf("%s: Start = %v", filepath.Base(tc.file), err)
		}
		var served []string
		for _, ep := range svc.Instance().Endpoints {
			served = append(served, ep.Transport)
			var c transport.Client
			switch ep.Transport {
			case "http":
				c, err = fhttp.NewClient(ep.Address)
			case "grpc":
				c, err = fgrpc.NewClient(ep.Address)
			case "nats":
				var nc *nats.Conn
				nc, err = nats.Connect(ep.Address)
				if err == nil {
					defer nc.Close()
					c = fnats.NewClient(nc)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := transport.Invoke[echoMsg, echoMsg](ctx, c, "echo", "Echo", &echoMsg{Text: ep.Transport})
			if err != nil || got.Text != ep.Transport {
				t.Errorf("%s: Echo over %s = %v, %v", filepath.Base(tc.file), ep.Transport, got, err)
			}
			if cl, ok := c.(interface{ Close() error }); ok {
				_ = cl.Close()
			}
		}
		if strings.Join(served, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: serves %v, want exactly %v", filepath.Base(tc.file), served, tc.want)
		}
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("Stop = %v", err)
		}
		cancel()
	}
}

// TestNATSOnlyForRegistry: a NATS registry next to HTTP only connects to
// NATS (embedded) without serving over it.
func TestNATSOnlyForRegistry(t *testing.T) {
	port := freePort(t)
	svc, ctx := startFromEnv(t,
		"FERRY_TRANSPORTS_HTTP_ADDR", "127.0.0.1:0", "FERRY_TRANSPORTS_GRPC_ENABLED", "false", "FERRY_TRANSPORTS_NATS_ENABLED", "false",
		"FERRY_NATS_EMBEDDED_PORT", strconv.Itoa(port), "FERRY_REGISTRY_KIND", "nats", "FERRY_ADMIN_ADDR", "127.0.0.1:0")
	in := svc.Instance()
	if len(in.Endpoints) != 1 || in.Endpoints[0].Transport != "http" {
		t.Errorf("registered endpoints = %v, want HTTP only", in.Endpoints)
	}
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, err = transport.Invoke[echoMsg, echoMsg](ctx, fnats.NewClient(nc), "echo", "Echo", &echoMsg{})
	if errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("Echo over NATS = %v, want unavailable (not served)", err)
	}
}

func TestReference(t *testing.T) {
	const path = "../docs/CONFIG.md"
	got := config.Reference()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./config -run TestReference -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s is out of date: run go test ./config -run TestReference -update", path)
	}
	for _, k := range config.Keys() {
		if !strings.Contains(got, "`"+k+"`") || !strings.Contains(got, config.EnvName(k)) {
			t.Errorf("reference misses %s", k)
		}
	}
}

// TestTelemetryFromConfig: by default a configured service measures every
// call and serves /metrics, /livez and /readyz on the admin address.
func TestTelemetryFromConfig(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := ln.Addr().String()
	ln.Close()
	svc, ctx := startFromEnv(t,
		"FERRY_TRANSPORTS_HTTP_ADDR", "127.0.0.1:0", "FERRY_TRANSPORTS_GRPC_ENABLED", "false", "FERRY_TRANSPORTS_NATS_ENABLED", "false",
		"FERRY_REGISTRY_KIND", "memory", "FERRY_ADMIN_ADDR", adminAddr)
	c, err := fhttp.NewClient(svc.Instance().Endpoints[0].Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := transport.Invoke[echoMsg, echoMsg](ctx, c, "echo", "Echo", &echoMsg{Text: "m"}); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `http_server_request_duration_seconds_count{`) || !strings.Contains(body, `ferry_endpoint="echo/Echo"`) {
		t.Errorf("/metrics = %d, want the call's duration histogram; got:\n%.2000s", code, body)
	} else {
		for _, m := range []string{"go_goroutines ", "go_memstats_heap_alloc_bytes ", "process_cpu_seconds_total ", "process_resident_memory_bytes "} {
			if !strings.Contains(body, "\n"+m) {
				t.Errorf("/metrics has no %s: want the Go runtime and process metrics", m)
			}
		}
	}
	for _, p := range []string{"/livez", "/readyz"} {
		if code, body := get(p); code != 200 {
			t.Errorf("%s = %d %s, want 200", p, code, body)
		}
	}
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestMiddlewareByName: every built-in middleware can be configured by name
// from a file, and the service built from it serves through them.
func TestMiddlewareByName(t *testing.T) {
	keys := writeFile(t, "keys.txt", "# key subject\nk-0123456789abcdef ada\n")
	t.Setenv("FERRY_TEST_JWT_SECRET", "0123456789abcdef0123456789abcdef")
	file := writeFile(t, "ferry.yaml", `service: {name: echo}
admin: {enabled: false}
telemetry: {enabled: false}
transports: {grpc: {enabled: false}, nats: {enabled: false}, http: {addr: '127.0.0.1:0'}}
middleware:
  - {name: requestid}
  - {name: shed, settings: {max: 100, retry_after: 2s, exempt: [Echo]}}
  - {name: ratelimit, settings: {per_second: 1000, burst: 50, max_keys: 100}}
  - {name: bulkhead, settings: {max: 10}}
  - {name: timeout, settings: {timeout: 2s}}
  - {name: auth, settings: {hmac_secret_env: FERRY_TEST_JWT_SECRET, api_keys_file: `+keys+`, public: [Echo]}}
  - {name: validate}
`)
	cfg, err := config.Load(config.Sources{File: file, Env: env()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := config.NewService(cfg, register)
	if err != nil {
		t.Fatalf("NewService with every middleware = %v", err)
	}
	ctx := ferrytest.Context(t)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(ctx)
	addr, _ := svc.Addr("http")
	c, err := fhttp.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := transport.Invoke[echoMsg, echoMsg](ctx, c, "echo", "Echo", &echoMsg{Text: "through seven"})
	if err != nil || got.Text != "through seven" {
		t.Errorf("Echo through every configured middleware = %v, %v", got, err)
	}
}

// Every built-in middleware has its settings in the reference.
func TestReferenceListsEveryMiddleware(t *testing.T) {
	ref := config.Reference()
	for name := range config.DefaultFactories().Middleware {
		if !strings.Contains(ref, "| `"+name+"` |") {
			t.Errorf("docs/CONFIG.md has no settings row for middleware %q", name)
		}
	}
}

// TestLogOutput: WithLogOutput takes the service's logs, access log lines
// included, in the configured format (JSON here), with the call's trace
// ID although no exporter is configured.
func TestLogOutput(t *testing.T) {
	var buf ferrytest.Buffer
	svc := startWith(t, register, []config.Option{config.WithLogOutput(&buf)},
		"FERRY_SERVICE_NAME", "echo", "FERRY_LOG_LEVEL", "info", "FERRY_LOG_FORMAT", "json",
		"FERRY_TRANSPORTS_HTTP_ADDR", "127.0.0.1:0", "FERRY_TRANSPORTS_GRPC_ENABLED", "false",
		"FERRY_TRANSPORTS_NATS_ENABLED", "false", "FERRY_ADMIN_ENABLED", "false")
	addr, ok := svc.Addr("http")
	if !ok {
		t.Fatal("no HTTP address")
	}
	c, err := fhttp.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := transport.Invoke[echoMsg, echoMsg](ferrytest.Context(t), c, "echo", "Echo", &echoMsg{Text: "m"}); err != nil {
		t.Fatal(err)
	}
	var access map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if rec["msg"] == "access" {
			access = rec
		}
	}
	if access == nil {
		t.Fatalf("no access line in the log output:\n%s", buf.String())
	}
	if tid, _ := access["trace_id"].(string); len(tid) != 32 || access["endpoint"] != "Echo" {
		t.Errorf("access line %v: want endpoint Echo and a trace_id", access)
	}
}
