package etcd

import (
	"context"
	"time"

	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Kind is the registry.kind this package registers when imported.
const Kind = "etcd"

// Settings are the registry.settings of registry.kind: etcd. Load checks
// them; each problem names its key (registry.settings.endpoints[0], ...).
type Settings struct {
	// Endpoints are the cluster's client URLs: host:port, or a URL such as
	// http://10.0.0.5:2379 (https:// for TLS with the system's roots).
	Endpoints []string `mapstructure:"endpoints" validate:"required,min=1,dive,hostname_port|url"`
	// Prefix is the key prefix of the instances. Default DefaultPrefix.
	Prefix string `mapstructure:"prefix" validate:"required,startswith=/"`
	// TTL is the TTL of an instance's lease, whole seconds. Default
	// DefaultTTL.
	TTL time.Duration `mapstructure:"ttl" validate:"gte=1s"`
	// DialTimeout bounds the connection and the first read at start.
	DialTimeout time.Duration `mapstructure:"dial_timeout" validate:"gt=0"`
	// Username and Password authenticate to a cluster with auth enabled.
	Username string `mapstructure:"username" validate:"required_with=Password"`
	Password string `mapstructure:"password" validate:"required_with=Username"`
}

// DefaultSettings are the settings a configuration starts from.
func DefaultSettings() Settings {
	return Settings{Prefix: DefaultPrefix, TTL: DefaultTTL, DialTimeout: 5 * time.Second}
}

func init() {
	config.RegisterRegistry(Kind, "github.com/ferry-go/ferry/contrib/registry/etcd", DefaultSettings(), factory)
}

// factory is the registry of registry.kind: etcd: one that owns its
// client, which the service closes at stop after deregistering; lost
// leases are logged with the service's logger.
func factory(ctx context.Context, s Settings, cfg *config.Config, _ config.Resources) (registry.Registry, error) {
	return Dial(ctx, clientv3.Config{
		Endpoints:   s.Endpoints,
		DialTimeout: s.DialTimeout,
		Username:    s.Username,
		Password:    s.Password,
	}, WithPrefix(s.Prefix), WithTTL(s.TTL), WithLogger(config.NewLogger(cfg.Log)))
}
