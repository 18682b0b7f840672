package config_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/broker"
	brokermemory "github.com/ferry-go/ferry/broker/memory"
	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/registry"
	regmemory "github.com/ferry-go/ferry/registry/memory"
	"github.com/ferry-go/ferry/server"
)

// testPlugSettings are the settings of the test plug-ins: what a Kafka or
// etcd plug-in's look like.
type testPlugSettings struct {
	Addrs   []string      `mapstructure:"addrs" validate:"required,min=1,dive,hostname_port"`
	Timeout time.Duration `mapstructure:"timeout" validate:"gte=100ms"`
	Retries int           `mapstructure:"retries" validate:"gte=0,lte=10"`
}

var plugged struct {
	sync.Mutex
	broker, registry *testPlugSettings
}

func init() {
	config.RegisterBroker("testplug", "example.com/testplug", testPlugSettings{Timeout: time.Second, Retries: 3},
		func(_ context.Context, s testPlugSettings, cfg *config.Config, _ config.Resources) (broker.Broker, error) {
			plugged.Lock()
			plugged.broker = &s
			plugged.Unlock()
			return brokermemory.New()
		})
	config.RegisterRegistry("testplug", "example.com/testplug", testPlugSettings{Timeout: time.Second},
		func(_ context.Context, s testPlugSettings, cfg *config.Config, _ config.Resources) (registry.Registry, error) {
			plugged.Lock()
			plugged.registry = &s
			plugged.Unlock()
			return regmemory.New(), nil
		})
}

// A registered plug-in is selected by kind, gets its settings decoded over
// its defaults, and runs.
func TestPluginSelectedByConfig(t *testing.T) {
	file := writeFile(t, "ferry.yaml", `
service: {name: plug}
transports:
  http: {enabled: true, addr: "127.0.0.1:0"}
  grpc: {enabled: false}
  nats: {enabled: false}
admin: {enabled: false}
log: {level: error}
broker:
  kind: testplug
  settings: {addrs: ["127.0.0.1:9092"], timeout: 2s}
registry:
  kind: testplug
  settings: {addrs: ["etcd:2379"]}
`)
	cfg, err := config.Load(config.Sources{File: file, Env: env()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := config.NewService(cfg, func(_ *ferry.Service, srv *server.Server) {
		server.Handle(srv, "Ping", func(context.Context, *struct{}) (*struct{}, error) { return &struct{}{}, nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	plugged.Lock()
	defer plugged.Unlock()
	if b := plugged.broker; b == nil || strings.Join(b.Addrs, ",") != "127.0.0.1:9092" || b.Timeout != 2*time.Second || b.Retries != 3 {
		t.Errorf("broker settings = %+v, want the file's over the defaults", b)
	}
	if r := plugged.registry; r == nil || strings.Join(r.Addrs, ",") != "etcd:2379" || r.Timeout != time.Second {
		t.Errorf("registry settings = %+v, want the file's over the defaults", r)
	}
}

// Plug-in settings are checked at Load like every key, each problem
// naming its key; unknown plug-in kinds say which package to import.
func TestPluginSettingsChecked(t *testing.T) {
	tests := []struct {
		name, file string
		env        []string
		build      bool
		want       []string
		absent     []string
	}{
		{name: "missing required", file: "service: {name: x}\nbroker: {kind: testplug, settings: {timeout: 2s}}\n",
			want: []string{"broker.settings.addrs", "is required"}, absent: []string{"null"}},
		{name: "unknown key", file: "service: {name: x}\nbroker: {kind: testplug, settings: {addrs: [\"a:1\"], brokers: [\"b:2\"]}}\n",
			want: []string{"broker.settings", "unknown keys: brokers"}},
		{name: "wrong type", file: "service: {name: x}\nregistry: {kind: testplug, settings: {addrs: [\"a:1\"], timeout: soon}}\n",
			want: []string{"registry.settings", "want a duration"}},
		{name: "out of range", file: "service: {name: x}\nbroker: {kind: testplug, settings: {addrs: [\"a:1\"], retries: 11}}\n",
			want: []string{"broker.settings.retries", "11"}},
		{name: "not host:port", file: "service: {name: x}\nbroker: {kind: testplug, settings: {addrs: [\"nohost\"]}}\n",
			want: []string{"broker.settings.addrs[0]", "nohost"}},
		{name: "from the environment", env: []string{"FERRY_SERVICE_NAME", "x", "FERRY_BROKER_KIND", "testplug", "FERRY_BROKER_SETTINGS", `{"addrs": []}`},
			want: []string{"broker.settings.addrs", "from env FERRY_BROKER_SETTINGS"}},
		{name: "settings of a built-in kind", file: "service: {name: x}\nbroker: {kind: memory, settings: {addrs: [\"a:1\"]}}\n",
			want: []string{"broker.settings", "for plug-in kinds only"}},
		{name: "kafka not imported", build: true, file: "service: {name: x}\nbroker: {kind: kafka}\n",
			want: []string{"broker.kind", "unknown broker", "testplug", `import _ "github.com/ferry-go/ferry/contrib/broker/kafka"`}},
		{name: "etcd not imported", build: true, file: "service: {name: x}\nregistry: {kind: etcd}\n",
			want: []string{"registry.kind", `import _ "github.com/ferry-go/ferry/contrib/registry/etcd"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := config.Sources{Env: env(tt.env...)}
			if tt.file != "" {
				src.File = writeFile(t, "ferry.yaml", tt.file)
			}
			cfg, err := config.Load(src)
			if tt.build {
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
			for _, a := range tt.absent {
				if strings.Contains(err.Error(), a) {
					t.Errorf("error = %v, should not say %q", err, a)
				}
			}
		})
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	for name, register := range map[string]func(){
		"twice":    func() { config.RegisterBroker("testplug", "m", struct{}{}, nil) },
		"built in": func() { config.RegisterRegistry("nats", "m", struct{}{}, nil) },
		"empty":    func() { config.RegisterBroker("", "m", struct{}{}, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			register()
		})
	}
}
