package kafka_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ferry.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func noEnv(string) (string, bool) { return "", false }

// broker.kind: kafka, selected by configuration, runs a subscription end
// to end.
func TestPluginFromConfig(t *testing.T) {
	addr := newCluster(t)
	file := writeConfig(t, `
service: {name: kplug}
transports:
  http: {enabled: true, addr: "127.0.0.1:0"}
  grpc: {enabled: false}
  nats: {enabled: false}
admin: {enabled: false}
telemetry: {enabled: false}
log: {level: error}
broker:
  kind: kafka
  settings: {brokers: ["`+addr+`"], partitions: 2}
`)
	cfg, err := config.Load(config.Sources{File: file, Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	svc, err := config.NewService(cfg, func(svc *ferry.Service, _ *server.Server) {
		ferry.Subscribe(svc, "plug.events", func(ctx context.Context, e *broker.Event[Job]) error {
			got.Add(int64(e.Data.N))
			return nil
		}, broker.Queue("plugged"))
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ferrytest.Context(t)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(ctx)
	for i := 1; i <= 3; i++ {
		if err := broker.Publish(ctx, svc.Broker(), "plug.events", &Job{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	ferrytest.Eventually(t, "the three events", func() bool { return got.Load() == 6 })
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// Bad settings are problems naming broker.settings.<key>.
func TestPluginSettingsChecked(t *testing.T) {
	for name, tt := range map[string]struct{ settings, want string }{
		"missing brokers":   {`{client_id: x}`, "broker.settings.brokers"},
		"not host:port":     {`{brokers: ["kafka"]}`, "broker.settings.brokers[0]"},
		"zero partitions":   {`{brokers: ["k:9092"], partitions: 0}`, "broker.settings.partitions"},
		"unknown key":       {`{brokers: ["k:9092"], seeds: ["k:9092"]}`, "unknown keys: seeds"},
		"wrong type":        {`{brokers: ["k:9092"], tls: maybe}`, "broker.settings"},
		"client id control": {"{brokers: [\"k:9092\"], client_id: \"a\\tb\"}", "broker.settings.client_id"},
	} {
		t.Run(name, func(t *testing.T) {
			file := writeConfig(t, "service: {name: x}\nbroker: {kind: kafka, settings: "+tt.settings+"}\n")
			_, err := config.Load(config.Sources{File: file, Env: noEnv})
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load = %v, want a *config.Error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %q\nwant it to name %q", err, tt.want)
			}
		})
	}
}
