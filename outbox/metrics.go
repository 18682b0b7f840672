package outbox

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names of the outbox relay.
const (
	// MetricPublished counts the relay's publish attempts, by outcome
	// (ferry.outcome: sent, failed, dead).
	MetricPublished = "ferry.outbox.published"
	// MetricBacklog is the number of events not yet sent.
	MetricBacklog = "ferry.outbox.backlog"
	// MetricBacklogAge is the age of the oldest event not yet sent, in
	// seconds (0 when there is none).
	MetricBacklogAge = "ferry.outbox.backlog.age"
	// MetricPublishDuration is how long the broker took to take an event.
	MetricPublishDuration = "ferry.outbox.publish.duration"
)

const instrumentationName = "github.com/ferry-go/ferry/outbox"

// OutcomeKey labels MetricPublished.
const OutcomeKey = attribute.Key("ferry.outcome")

var (
	outcomeSent   = metric.WithAttributeSet(attribute.NewSet(OutcomeKey.String("sent")))
	outcomeFailed = metric.WithAttributeSet(attribute.NewSet(OutcomeKey.String("failed")))
	outcomeDead   = metric.WithAttributeSet(attribute.NewSet(OutcomeKey.String("dead")))
)

type relayMetrics struct {
	counter  metric.Int64Counter
	duration metric.Float64Histogram
	reg      metric.Registration
}

func newRelayMetrics(r *Relay) (*relayMetrics, error) {
	mp := r.cfg.mp
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(instrumentationName)
	m := &relayMetrics{}
	var err error
	if m.counter, err = meter.Int64Counter(MetricPublished, metric.WithUnit("{message}"),
		metric.WithDescription("Events the outbox relay tried to publish, by outcome (ferry.outcome: sent, failed, dead).")); err != nil {
		return nil, err
	}
	if m.duration, err = meter.Float64Histogram(MetricPublishDuration, metric.WithUnit("s"),
		metric.WithDescription("How long the broker took to take an event from the outbox relay.")); err != nil {
		return nil, err
	}
	backlog, err := meter.Int64ObservableGauge(MetricBacklog, metric.WithUnit("{message}"),
		metric.WithDescription("Events stored in the outbox and not yet sent."))
	if err != nil {
		return nil, err
	}
	age, err := meter.Float64ObservableGauge(MetricBacklogAge, metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest event stored in the outbox and not yet sent (0 when none)."))
	if err != nil {
		return nil, err
	}
	m.reg, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		n, oldest, err := r.Backlog(ctx)
		if err != nil {
			return err
		}
		o.ObserveInt64(backlog, n)
		a := 0.0
		if !oldest.IsZero() {
			a = max(time.Since(oldest).Seconds(), 0)
		}
		o.ObserveFloat64(age, a)
		return nil
	}, backlog, age)
	return m, err
}

// published records one publish attempt (not its final outcome: sent
// counts rows marked sent, after the round's commit).
func (m *relayMetrics) published(ctx context.Context, err error, d time.Duration) {
	if m == nil {
		return
	}
	switch {
	case err == nil:
		m.duration.Record(ctx, d.Seconds())
	case permanent(err):
		m.counter.Add(ctx, 1, outcomeDead)
	default:
		m.counter.Add(ctx, 1, outcomeFailed)
	}
}

// sent counts events marked sent.
func (m *relayMetrics) sent(ctx context.Context, n int) {
	if m != nil && n > 0 {
		m.counter.Add(ctx, int64(n), outcomeSent)
	}
}

func (m *relayMetrics) close() {
	if m != nil && m.reg != nil {
		_ = m.reg.Unregister()
	}
}
