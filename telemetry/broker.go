package telemetry

import (
	"context"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/broker/memory"
	"github.com/ferry-go/ferry/errs"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// BrokerOption configures TraceBroker.
type BrokerOption func(*brokerConfig)

type brokerConfig struct {
	tp     trace.TracerProvider
	mp     metric.MeterProvider
	prop   propagation.TextMapPropagator
	system string
}

// WithTracerProvider sets the tracer provider of producer spans (default
// otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) BrokerOption {
	return func(c *brokerConfig) { c.tp = tp }
}

// WithMeterProvider sets the meter provider of the published and
// dead-lettered counters (default otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) BrokerOption {
	return func(c *brokerConfig) { c.mp = mp }
}

// WithPropagator sets the propagator that injects the producer span's
// context into message headers (default W3C trace context plus baggage).
func WithPropagator(p propagation.TextMapPropagator) BrokerOption {
	return func(c *brokerConfig) { c.prop = p }
}

// WithMessagingSystem sets the messaging.system value of producer spans and
// broker metrics: by default "memory" for broker/memory and "nats" for
// anything else (every other built-in broker runs on NATS).
func WithMessagingSystem(s string) BrokerOption {
	return func(c *brokerConfig) { c.system = s }
}

// TraceBroker decorates b so that:
//
//   - Publish runs in a PRODUCER span ("send {topic}") whose context is
//     injected into a copy of the message's headers (the caller's Message
//     and Header map are never modified), and counts
//     messaging.client.sent.messages;
//   - Subscribe counts ferry.messaging.dead_lettered.messages: deliveries
//     whose handler failed permanently (broker.IsPermanent, which includes
//     payloads that do not decode) or on the subscription's last allowed
//     delivery (SubscribeConfig.MaxDeliver).
//
// The CONSUMER span is made by Tracing on the subscription's middleware
// (broker.WithMiddleware), and consumed/redelivered counts by Metrics.
func TraceBroker(b broker.Broker, opts ...BrokerOption) broker.Broker {
	cfg := brokerConfig{}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	if cfg.prop == nil {
		cfg.prop = defaultPropagator()
	}
	if cfg.system == "" {
		cfg.system = "nats"
		if _, ok := b.(*memory.Broker); ok {
			cfg.system = "memory"
		}
	}
	meter := cfg.mp.Meter(instrumentationName, metric.WithSchemaURL(SemconvSchemaURL))
	tb := &tracedBroker{
		Broker: b,
		cfg:    cfg,
		tracer: cfg.tp.Tracer(instrumentationName, trace.WithSchemaURL(SemconvSchemaURL)),
		system: semconv.MessagingSystemKey.String(cfg.system),
	}
	tb.sent, _ = meter.Int64Counter(Published,
		metric.WithUnit("{message}"), metric.WithDescription("Messages a producer attempted to publish, by outcome (ferry.code)."))
	tb.dead, _ = meter.Int64Counter(DeadLettered,
		metric.WithUnit("{message}"), metric.WithDescription("Deliveries that failed for good: permanently, or on their last allowed attempt."))
	return tb
}

type tracedBroker struct {
	broker.Broker
	cfg    brokerConfig
	tracer trace.Tracer
	system attribute.KeyValue
	sent   metric.Int64Counter
	dead   metric.Int64Counter
}

// Publish implements broker.Broker.
func (b *tracedBroker) Publish(ctx context.Context, m *broker.Message) error {
	if m == nil {
		return b.Broker.Publish(ctx, m)
	}
	var span trace.Span
	if _, light := b.tracer.(*contextTracer); light { // records nothing: no attributes to build
		ctx, span = b.tracer.Start(ctx, m.Topic, producerKind...)
	} else {
		ctx, span = b.startSend(ctx, m)
	}
	cp := *m
	cp.Header = m.Header.Clone()
	b.cfg.prop.Inject(ctx, HeaderCarrier{cp.Header})
	err := b.Broker.Publish(ctx, &cp)
	code := codeName(err)
	if span.IsRecording() {
		span.SetAttributes(CodeKey.String(code))
		if err != nil {
			span.SetAttributes(semconv.ErrorTypeKey.String(code))
			span.RecordError(err)
			span.SetStatus(codes.Error, code)
		}
	}
	span.End()
	b.sent.Add(ctx, 1, metric.WithAttributes(b.system, semconv.MessagingDestinationName(m.Topic), CodeKey.String(code)))
	return err
}

// startSend starts the PRODUCER span of m, with its attributes.
func (b *tracedBroker) startSend(ctx context.Context, m *broker.Message) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		b.system,
		semconv.MessagingOperationName("send"),
		semconv.MessagingOperationTypeSend,
		semconv.MessagingDestinationName(m.Topic),
		semconv.MessagingMessageBodySize(len(m.Data)),
	}
	if m.ID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(m.ID))
	}
	return b.tracer.Start(ctx, "send "+m.Topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
}

// Subscribe implements broker.Broker.
func (b *tracedBroker) Subscribe(ctx context.Context, topic string, h broker.Handler, cfg broker.SubscribeConfig) (broker.Subscription, error) {
	if h == nil {
		return b.Broker.Subscribe(ctx, topic, h, cfg)
	}
	maxDeliver := cfg.MaxDeliver
	wrapped := func(ctx context.Context, d *broker.Delivery) error {
		err := h(ctx, d)
		if err != nil && (broker.IsPermanent(err) || (maxDeliver > 0 && d.Attempt >= maxDeliver)) {
			b.dead.Add(ctx, 1, metric.WithAttributes(b.system,
				semconv.MessagingDestinationName(d.Topic),
				semconv.MessagingDestinationSubscriptionName(d.Subscription),
				CodeKey.String(errs.CodeOf(err).String())))
		}
		return err
	}
	return b.Broker.Subscribe(ctx, topic, wrapped, cfg)
}
