package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// DefaultDeadLetterStream is the stream New provisions for dead letters,
// on the subjects "dlq.>".
const DefaultDeadLetterStream = "FERRY_DEAD_LETTERS"

// Option configures a Broker.
type Option func(*options)

// DefaultPrefetch is how many messages a subscription fetches ahead of its
// handlers by default.
const DefaultPrefetch = 64

type options struct {
	prefetch int
	streams  []jetstream.StreamConfig
	dlq      *jetstream.StreamConfig
	logger   *slog.Logger
	errs     []error
}

// WithStream makes New create the stream, or update it to cfg if it
// exists. Give it once per stream; topics published or subscribed must be
// captured by some stream's subjects.
func WithStream(cfg jetstream.StreamConfig) Option {
	return func(o *options) {
		if cfg.Name == "" || len(cfg.Subjects) == 0 {
			o.errs = append(o.errs, fmt.Errorf("stream %q: want a name and subjects", cfg.Name))
			return
		}
		o.streams = append(o.streams, cfg)
	}
}

// WithDeadLetterStream replaces the default dead-letter stream
// (DefaultDeadLetterStream on "dlq.>", one replica) with cfg.
func WithDeadLetterStream(cfg jetstream.StreamConfig) Option {
	return func(o *options) {
		if cfg.Name == "" || len(cfg.Subjects) == 0 {
			o.errs = append(o.errs, fmt.Errorf("dead-letter stream %q: want a name and subjects", cfg.Name))
			return
		}
		o.dlq = &cfg
	}
}

// WithoutDeadLetterStream stops New from provisioning a dead-letter
// stream: dead letters then need a stream of your own capturing their
// subjects, or dead-lettering fails and the message is retried.
func WithoutDeadLetterStream() Option {
	return func(o *options) { o.dlq = &jetstream.StreamConfig{} }
}

// WithPrefetch sets how many messages each subscription fetches ahead of
// its handlers (default DefaultPrefetch, and never fewer than twice its
// Concurrency or 8: nats.go 1.55 can stall on smaller pull batches). Fetched messages wait in the client without heart-beats:
// keep prefetch ÷ Concurrency × the handlers' duration well under
// AckWait, or the stream redelivers messages still waiting (a duplicate,
// not a loss). Lower it for slow handlers; raise it for throughput.
func WithPrefetch(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.errs = append(o.errs, fmt.Errorf("prefetch %d: want at least 1", n))
			return
		}
		o.prefetch = n
	}
}

// WithLogger sets the logger for subscription failures (default
// slog.Default()); a subscription's broker.WithLogger wins for its own.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.errs = append(o.errs, errors.New("nil logger"))
			return
		}
		o.logger = l
	}
}

// Broker is a broker.Broker on JetStream. Create it with New; it is safe
// for concurrent use.
type Broker struct {
	js       jetstream.JetStream
	logger   *slog.Logger
	prefetch int

	subs broker.Subscriptions[*subscription]
}

var _ broker.Broker = (*Broker)(nil)

// New returns a broker on js, creating or updating the streams of
// WithStream and the dead-letter stream first; ctx bounds that set-up.
// Invalid options are an InvalidArgument error; a server that refuses a
// stream (overlapping subjects, say), an error naming the stream.
func New(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Broker, error) {
	o := options{logger: slog.Default(), prefetch: DefaultPrefetch}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if js == nil {
		o.errs = append(o.errs, errors.New("nil JetStream"))
	}
	if err := errors.Join(o.errs...); err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker/jetstream: %w", err)
	}
	streams := o.streams
	switch {
	case o.dlq == nil:
		streams = append(streams, jetstream.StreamConfig{
			Name:        DefaultDeadLetterStream,
			Description: "Ferry dead letters: messages whose handlers gave up, with ferry-dead-letter-* headers",
			Subjects:    []string{strings.TrimSuffix(broker.DeadLetterPrefix, ".") + ".>"},
		})
	case o.dlq.Name != "":
		streams = append(streams, *o.dlq)
	}
	for _, cfg := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return nil, failure(ctx, "create stream "+cfg.Name, err)
		}
	}
	return &Broker{js: js, logger: o.logger, prefetch: o.prefetch}, nil
}

// Publish stores m in the stream capturing its topic and returns once the
// stream acknowledged it. m.ID (generated when empty) is its Nats-Msg-Id.
func (b *Broker) Publish(ctx context.Context, m *broker.Message) error {
	if m == nil {
		return errs.New(errs.InvalidArgument, "broker/jetstream: nil message")
	}
	if err := broker.ValidTopic(m.Topic, false); err != nil {
		return err
	}
	if b.isClosed() {
		return broker.ErrClosed
	}
	id := m.ID
	if id == "" {
		id = nuid.Next()
	}
	_, err := b.js.PublishMsg(ctx, toMsg(m), jetstream.WithMsgID(id))
	if err != nil {
		return failure(ctx, fmt.Sprintf("publish to %q (message %s)", m.Topic, id), err)
	}
	return nil
}

// toMsg turns m into a NATS message; header keys stay lower-case.
func toMsg(m *broker.Message) *nats.Msg {
	msg := &nats.Msg{Subject: m.Topic, Data: m.Data}
	if len(m.Header) > 0 {
		msg.Header = make(nats.Header, len(m.Header)+1)
		for k, vs := range m.Header {
			msg.Header[strings.ToLower(k)] = vs
		}
	}
	return msg
}

// Subscribe starts a subscription; see the package documentation for
// what the consumer looks like. ctx bounds creating the consumer.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, cfg broker.SubscribeConfig) (broker.Subscription, error) {
	if err := broker.ValidTopic(topic, true); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker/jetstream: subscribe %q: nil handler", topic)
	}
	if cfg.Logger == nil {
		cfg.Logger = b.logger
	}
	if err := cfg.Check("broker/jetstream", topic); err != nil {
		return nil, err
	}
	s, err := b.subs.Open(ctx, func() (*subscription, error) { return b.subscribe(ctx, topic, h, cfg) })
	if err != nil {
		return nil, err // not a nil *subscription in the interface
	}
	return s, nil
}

func (b *Broker) forget(s *subscription) { b.subs.Remove(s) }

func (b *Broker) isClosed() bool { return b.subs.Closed() }

// Close drains every open subscription until ctx ends; later Publish and
// Subscribe calls fail with broker.ErrClosed. It leaves the connection and
// the streams alone.
func (b *Broker) Close(ctx context.Context) error {
	subs, _ := b.subs.Close()
	return broker.DrainAll(ctx, subs)
}

// failure turns a JetStream error into an *errs.Error saying what failed.
func failure(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return errs.Newf(errs.CodeOf(ctx.Err()), "broker/jetstream: %s: not acknowledged before the context ended: %w", what, err)
	}
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return errs.Newf(errs.Unavailable, "broker/jetstream: %s: no stream answered (no stream captures the subject, or JetStream is unavailable): %w", what, err)
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return errs.Newf(errs.DeadlineExceeded, "broker/jetstream: %s: not acknowledged in time: %w", what, err)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
		return errs.Newf(errs.Unavailable, "broker/jetstream: %s: connection closed: %w", what, err)
	case errors.As(err, &apiErr):
		code := errs.FailedPrecondition
		if apiErr.Code >= 500 {
			code = errs.Unavailable
		}
		return errs.Newf(code, "broker/jetstream: %s: %w", what, err)
	}
	return errs.Newf(errs.Unavailable, "broker/jetstream: %s: %w", what, err)
}
