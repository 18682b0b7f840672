package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/config"
	etcdreg "github.com/ferry-go/ferry/contrib/registry/etcd"
	"github.com/ferry-go/ferry/contrib/registry/etcd/internal/etcdtest"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// load loads yaml as the configuration file, with no environment.
func load(t *testing.T, yaml string) (*config.Config, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "ferry.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Load(config.Sources{File: file, Env: func(string) (string, bool) { return "", false }})
}

const serviceYAML = `
service: {name: etcdplug}
transports:
  http: {enabled: true, addr: "127.0.0.1:0"}
  grpc: {enabled: false}
  nats: {enabled: false}
admin: {enabled: false}
telemetry: {enabled: false}
log: {level: error}
registry:
  kind: etcd
  settings: %s
`

// registry.kind: etcd selects the plug-in: the service registers in etcd
// at start, under the configured prefix and on a lease of the configured
// TTL, and deregisters at stop.
func TestConfigSelectsEtcd(t *testing.T) {
	ctx := ferrytest.Context(t)
	s := etcdtest.Start(t)
	cfg, err := load(t, fmt.Sprintf(serviceYAML, `{endpoints: ["`+s.URL+`"], prefix: /plug, ttl: 3s}`))
	if err != nil {
		t.Fatalf("Load = %v, want nil", err)
	}
	svc, err := config.NewService(cfg, func(_ *ferry.Service, srv *server.Server) {
		server.Handle(srv, "Ping", func(context.Context, *struct{}) (*struct{}, error) { return &struct{}{}, nil })
	})
	if err != nil {
		t.Fatalf("NewService = %v, want nil", err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("Start = %v, want nil", err)
	}
	in := svc.Instance()
	cli := s.Client(t)
	key := "/plug/etcdplug/" + in.ID
	resp, err := cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("Get(%s) after Start = %v, %v, want the instance", key, resp, err)
	}
	if ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil || ttl.GrantedTTL != 3 {
		t.Errorf("lease of %s = %+v, %v, want granted TTL 3", key, ttl, err)
	}
	r := newRegistry(t, cli, etcdreg.WithPrefix("/plug"))
	got, err := r.Lookup(ctx, "etcdplug")
	if err != nil || len(got) != 1 || got[0].ID != in.ID {
		t.Fatalf("Lookup(etcdplug) = %v, %v, want the service's instance", got, err)
	}
	if _, ok := got[0].Endpoint("http"); !ok {
		t.Errorf("instance %+v, want its http endpoint", got[0])
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatalf("Stop = %v, want nil", err)
	}
	if got, err := r.Lookup(ctx, "etcdplug"); err != nil || len(got) != 0 {
		t.Errorf("Lookup(etcdplug) after Stop = %v, %v, want [], nil", got, err)
	}
}

// An etcd that cannot be reached fails the start, within dial_timeout.
func TestConfigUnreachable(t *testing.T) {
	cfg, err := load(t, fmt.Sprintf(serviceYAML, `{endpoints: ["127.0.0.1:1"], dial_timeout: 300ms}`))
	if err != nil {
		t.Fatalf("Load = %v, want nil", err)
	}
	svc, err := config.NewService(cfg, func(_ *ferry.Service, srv *server.Server) {
		server.Handle(srv, "Ping", func(context.Context, *struct{}) (*struct{}, error) { return &struct{}{}, nil })
	})
	if err != nil {
		t.Fatalf("NewService = %v, want nil", err)
	}
	err = svc.Start(ferrytest.Context(t))
	if err == nil {
		_ = svc.Stop(context.Background())
		t.Fatal("Start with an unreachable etcd = nil, want an error")
	}
	for _, want := range []string{"registry.kind = etcd", "127.0.0.1:1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start = %v, want it to contain %q", err, want)
		}
	}
}

// Bad settings are problems of Load, each naming its key.
func TestConfigBadSettings(t *testing.T) {
	for _, tt := range []struct {
		name, settings string
		want           []string
	}{
		{"no endpoints", `{prefix: /x}`, []string{"registry.settings.endpoints", "is required"}},
		{"empty endpoints", `{endpoints: []}`, []string{"registry.settings.endpoints", "at least 1"}},
		{"endpoint not host:port nor URL", `{endpoints: ["127.0.0.1:2379", "nohost"]}`, []string{"registry.settings.endpoints[1]", "nohost"}},
		{"unknown key", `{endpoints: ["a:1"], hosts: ["b:2"]}`, []string{"registry.settings", "unknown keys: hosts"}},
		{"TTL under a second", `{endpoints: ["a:1"], ttl: 500ms}`, []string{"registry.settings.ttl", "at least 1s"}},
		{"TTL not a duration", `{endpoints: ["a:1"], ttl: long}`, []string{"registry.settings", "duration"}},
		{"relative prefix", `{endpoints: ["a:1"], prefix: ferry}`, []string{"registry.settings.prefix", "start with /"}},
		{"zero dial timeout", `{endpoints: ["a:1"], dial_timeout: 0s}`, []string{"registry.settings.dial_timeout"}},
		{"password without username", `{endpoints: ["a:1"], password: secret}`, []string{"registry.settings.username", "is required with registry.settings.password"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, fmt.Sprintf(serviceYAML, tt.settings))
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load = %v, want a *config.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}
