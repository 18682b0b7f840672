package rabbitmq

import (
	"context"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/config"
)

// Settings are the broker.settings of broker.kind: rabbitmq.
type Settings struct {
	// URL is the server, amqp://user:password@host:5672/vhost or amqps://.
	URL string `mapstructure:"url" validate:"required,url,startswith=amqp"`
	// Exchange is the topic exchange (default DefaultExchange).
	Exchange string `mapstructure:"exchange" validate:"required,max=100"`
	// QueueType is the type of durable queues: quorum (default) or classic.
	QueueType string `mapstructure:"queue_type" validate:"oneof=quorum classic"`
	// DeadLetterQueue declares "<exchange>.dead-letters" bound to "dlq.#"
	// (default true).
	DeadLetterQueue bool `mapstructure:"dead_letter_queue"`
	// PublishTimeout bounds a publish whose context has no deadline
	// (default DefaultPublishTimeout).
	PublishTimeout time.Duration `mapstructure:"publish_timeout" validate:"gte=100ms"`
}

// DefaultSettings are the settings a configuration starts from; url has
// no default.
var DefaultSettings = Settings{Exchange: DefaultExchange, QueueType: Quorum, DeadLetterQueue: true, PublishTimeout: DefaultPublishTimeout}

func init() {
	config.RegisterBroker("rabbitmq", "github.com/ferry-go/ferry/contrib/broker/rabbitmq", DefaultSettings, Factory)
}

// Factory makes the broker of broker.kind: rabbitmq from its settings;
// importing the package registers it.
func Factory(ctx context.Context, s Settings, _ *config.Config, _ config.Resources) (broker.Broker, error) {
	opts := []Option{WithExchange(s.Exchange), WithQueueType(s.QueueType), WithPublishTimeout(s.PublishTimeout)}
	if !s.DeadLetterQueue {
		opts = append(opts, WithoutDeadLetterQueue())
	}
	return New(ctx, s.URL, opts...)
}
