package kafka

import (
	"context"
	"crypto/tls"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/config"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Settings are the settings of broker.kind: kafka, under broker.settings:
//
//	broker:
//	  kind: kafka
//	  settings:
//	    brokers: ["kafka-1:9092", "kafka-2:9092"]
//	    client_id: orders          # default: service.name
//	    auto_create_topics: false  # default true, for development
//	    partitions: 12             # of topics Subscribe creates; -1: the cluster's default
//	    tls: true                  # TLS with the system's roots
//
// SASL, client certificates and other franz-go options need code:
// build the broker with New and WithClientOptions, and give it to the
// service with ferry.WithBroker.
type Settings struct {
	// Brokers are the seed brokers, host:port each.
	Brokers []string `mapstructure:"brokers" validate:"required,min=1,dive,hostname_port"`
	// ClientID is the Kafka client ID; empty: the service's name.
	ClientID string `mapstructure:"client_id" validate:"omitempty,max=255,printascii"`
	// AutoCreateTopics creates missing topics on publish and subscribe.
	AutoCreateTopics bool `mapstructure:"auto_create_topics"`
	// Partitions of the topics Subscribe creates; -1: the cluster's
	// num.partitions.
	Partitions int32 `mapstructure:"partitions" validate:"gte=-1,ne=0,lte=100000"`
	// TLS connects over TLS, trusting the system's roots.
	TLS bool `mapstructure:"tls"`
}

// DefaultSettings are the settings a configuration starts from.
var DefaultSettings = Settings{AutoCreateTopics: true, Partitions: -1}

func init() {
	config.RegisterBroker("kafka", "github.com/ferry-go/ferry/contrib/broker/kafka", DefaultSettings, fromSettings)
}

// fromSettings builds the broker of broker.kind: kafka.
func fromSettings(ctx context.Context, s Settings, cfg *config.Config, _ config.Resources) (broker.Broker, error) {
	return New(ctx, s.options(cfg.Service.Name)...)
}

// options turns s into options; service names the client by default.
func (s Settings) options(service string) []Option {
	id := s.ClientID
	if id == "" {
		id = service
	}
	opts := []Option{WithSeeds(s.Brokers...), WithAutoCreateTopics(s.AutoCreateTopics), WithPartitions(s.Partitions, -1)}
	if id != "" {
		opts = append(opts, WithClientID(id))
	}
	if s.TLS {
		opts = append(opts, WithClientOptions(kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12})))
	}
	return opts
}
