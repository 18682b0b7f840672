package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
)

// Subscription defaults.
const (
	// DefaultConcurrency is how many handlers of one subscription run at
	// once.
	DefaultConcurrency = 8
	// DefaultMaxDeliver is how many times a message is delivered before it
	// is dead-lettered.
	DefaultMaxDeliver = 5
	// DefaultAckWait is how long a broker waits for a handler's outcome
	// (heart-beats included) before redelivering.
	DefaultAckWait = 30 * time.Second
	// DeadLetterPrefix prefixes a topic to make its default dead-letter
	// subject: "orders.placed" → "dlq.orders.placed".
	DeadLetterPrefix = "dlq."
)

// DefaultBackoff is the delay before each redelivery after a handler
// error: the n-th redelivery waits DefaultBackoff[n-1], the last value
// repeating.
var DefaultBackoff = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second}

// SubscribeConfig is a subscription's resolved settings, as
// implementations receive them. Build it with NewSubscribeConfig.
type SubscribeConfig struct {
	errs []error // invalid options, reported by the constructor

	// Queue is the competing-consumer group: each message goes to one
	// subscription of the group (JetStream: the durable consumer's name).
	// Empty means fan-out: this subscription gets every message.
	Queue string
	// Concurrency bounds the handlers running at once (≥ 1).
	Concurrency int
	// MaxDeliver is the number of deliveries before dead-lettering (≥ 1).
	MaxDeliver int
	// Backoff holds the redelivery delays after handler errors.
	Backoff []time.Duration
	// AckWait is how long the broker waits for an outcome before
	// redelivering; a running handler heart-beats every AckWait/3.
	AckWait time.Duration
	// DeadLetter is the subject dead messages go to; empty disables dead
	// letters (a dead message is then dropped after logging).
	DeadLetter string
	// Ordered delivers one message at a time, in order: the next message
	// waits until the previous one is acknowledged or dead-lettered.
	Ordered bool
	// DeliverNew starts a new durable subscription at messages published
	// from now on instead of everything its stream still holds.
	DeliverNew bool
	// Middleware wraps the handler (typed Subscribe applies it).
	Middleware []middleware.Middleware
	// Logger receives dead letters and failures to acknowledge.
	Logger *slog.Logger

	deadLetterSet bool
	// newEvent is NewDelivery's allocation of the typed Subscribe.
	newEvent func(context.Context) (context.Context, *Delivery)
}

// fail records an invalid option for the constructor to report.
func (c *SubscribeConfig) fail(err error) { c.errs = append(c.errs, err) }

// SubscribeOption configures a subscription.
type SubscribeOption func(*SubscribeConfig)

// Queue makes the subscription a member of a competing-consumer group.
func Queue(name string) SubscribeOption {
	return func(c *SubscribeConfig) {
		if err := checkName(name); err != nil {
			c.fail(fmt.Errorf("queue %q: %w", name, err))
			return
		}
		c.Queue = name
	}
}

// Concurrency sets how many handlers run at once (default
// DefaultConcurrency).
func Concurrency(n int) SubscribeOption {
	return func(c *SubscribeConfig) {
		if n < 1 {
			c.fail(fmt.Errorf("concurrency %d: want at least 1", n))
			return
		}
		c.Concurrency = n
	}
}

// MaxDeliver sets how many deliveries a message gets before it is
// dead-lettered (default DefaultMaxDeliver).
func MaxDeliver(n int) SubscribeOption {
	return func(c *SubscribeConfig) {
		if n < 1 {
			c.fail(fmt.Errorf("max deliver %d: want at least 1", n))
			return
		}
		c.MaxDeliver = n
	}
}

// Backoff sets the redelivery delays after handler errors (default
// DefaultBackoff); the last one repeats.
func Backoff(delays ...time.Duration) SubscribeOption {
	return func(c *SubscribeConfig) {
		if len(delays) == 0 {
			c.fail(errors.New("backoff: want at least one delay"))
			return
		}
		for _, d := range delays {
			if d < 0 {
				c.fail(fmt.Errorf("backoff delay %v: want ≥ 0", d))
				return
			}
		}
		c.Backoff = append([]time.Duration(nil), delays...)
	}
}

// AckWait sets how long the broker waits for a handler's outcome before
// redelivering (default DefaultAckWait). Handlers heart-beat every third
// of it, so only a handler whose process died is redelivered.
func AckWait(d time.Duration) SubscribeOption {
	return func(c *SubscribeConfig) {
		if d < 100*time.Millisecond {
			c.fail(fmt.Errorf("ack wait %v: want at least 100ms", d))
			return
		}
		c.AckWait = d
	}
}

// DeadLetter sets the dead-letter subject (default DeadLetterPrefix +
// topic); "" disables dead letters.
func DeadLetter(subject string) SubscribeOption {
	return func(c *SubscribeConfig) {
		if subject != "" {
			if err := ValidTopic(subject, false); err != nil {
				c.fail(fmt.Errorf("dead letter: %w", err))
				return
			}
		}
		c.DeadLetter = subject
		c.deadLetterSet = true
	}
}

// Ordered processes messages one at a time in publish order (per
// subscription group); a failing message holds back the ones after it
// until it succeeds or is dead-lettered. It implies Concurrency(1).
func Ordered() SubscribeOption {
	return func(c *SubscribeConfig) { c.Ordered = true }
}

// DeliverNew starts a new durable subscription at messages published from
// now on; by default it starts with everything its stream holds.
func DeliverNew() SubscribeOption {
	return func(c *SubscribeConfig) { c.DeliverNew = true }
}

// WithMiddleware appends handler middleware; the first runs outermost.
func WithMiddleware(mws ...middleware.Middleware) SubscribeOption {
	return func(c *SubscribeConfig) { c.Middleware = append(c.Middleware, mws...) }
}

// WithLogger sets where dead letters and acknowledgement failures are
// logged (default slog.Default()).
func WithLogger(l *slog.Logger) SubscribeOption {
	return func(c *SubscribeConfig) {
		if l == nil {
			c.fail(errors.New("nil logger"))
			return
		}
		c.Logger = l
	}
}

// NewSubscribeConfig resolves opts for a subscription to topic, with the
// defaults filled in. Invalid options or topic are an InvalidArgument
// error naming each problem.
func NewSubscribeConfig(topic string, opts ...SubscribeOption) (SubscribeConfig, error) {
	c := SubscribeConfig{
		Concurrency: DefaultConcurrency,
		MaxDeliver:  DefaultMaxDeliver,
		Backoff:     DefaultBackoff,
		AckWait:     DefaultAckWait,
	}
	var problems []error
	if err := ValidTopic(topic, true); err != nil {
		problems = append(problems, err)
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		o(&c)
	}
	problems = append(problems, c.errs...)
	if err := errors.Join(problems...); err != nil {
		return SubscribeConfig{}, errs.Newf(errs.InvalidArgument, "broker: subscribe %q: %w", topic, err)
	}
	if !c.deadLetterSet {
		c.DeadLetter = DeadLetterPrefix + wildcardFree(topic)
	}
	if c.Ordered {
		c.Concurrency = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Check reports a configuration not built by NewSubscribeConfig (missing
// the defaults implementations rely on) as an InvalidArgument error; an
// implementation calls it first thing in Subscribe.
func (c *SubscribeConfig) Check(impl, topic string) error {
	if c.Concurrency < 1 || c.MaxDeliver < 1 || c.AckWait <= 0 || c.Logger == nil {
		return errs.Newf(errs.InvalidArgument, "%s: subscribe %q: configuration without defaults; build it with broker.NewSubscribeConfig", impl, topic)
	}
	return nil
}

// Delay returns the redelivery delay after a failed delivery attempt
// (from 1).
func (c *SubscribeConfig) Delay(attempt int) time.Duration {
	if len(c.Backoff) == 0 {
		return 0
	}
	return c.Backoff[min(max(attempt, 1), len(c.Backoff))-1]
}

// Name returns the subscription's name: its queue, or its topic.
func (c *SubscribeConfig) Name(topic string) string {
	if c.Queue != "" {
		return c.Queue
	}
	return topic
}

// PublishOption configures one typed publish.
type PublishOption func(*publishConfig)

type publishConfig struct {
	id     string
	key    string
	header map[string]string
	codec  string
}

// WithID sets the message ID used for de-duplication; publishing the same
// ID twice within the broker's window stores the message once.
func WithID(id string) PublishOption { return func(c *publishConfig) { c.id = id } }

// WithKey sets the message's ordering key (Message.Key): the outbox relay
// publishes the messages of one key in the order they were stored.
func WithKey(key string) PublishOption { return func(c *publishConfig) { c.key = key } }

// WithHeader adds a header to the message (metadata from
// transport.WithMetadata on the context is added too).
func WithHeader(key, value string) PublishOption {
	return func(c *publishConfig) {
		if c.header == nil {
			c.header = map[string]string{}
		}
		c.header[key] = value
	}
}

// WithProto encodes the event as protobuf instead of JSON.
func WithProto() PublishOption { return func(c *publishConfig) { c.codec = "proto" } }
