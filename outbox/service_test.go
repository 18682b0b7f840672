package outbox_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/internal/dbtest"
	"github.com/ferry-go/ferry/outbox"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A relay added to a service with ferry.WithComponent publishes to the
// service's broker, starts after it and stops before it.
func TestRelayInAService(t *testing.T) {
	db := dbtest.SQLite(t)
	b := newFaulty(t)
	got := collect(t, b, "orders.placed")
	relay := outbox.NewRelay(db, outbox.WithLogger(quiet()), outbox.WithPollInterval(time.Hour))
	svc := ferry.New(server.New("orders"), ferry.WithBroker(b), ferry.WithComponent(relay), ferry.WithLogger(quiet()))
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(ctx)
	place(t, db, &Order{ID: "o-1"})
	ferrytest.Eventually(t, "the event published through the service's broker", func() bool { return got.n() == 1 })
}

// The trace context of the request that stored an event travels with it:
// a traced broker's producer span is a child of the request's span, and
// the delivered message carries the same trace.
func TestTraceContextTravelsWithTheEvent(t *testing.T) {
	db := dbtest.SQLite(t)
	migrate(t, db)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "POST /orders")
	if err := outbox.Transact(ctx, db, func(tx *sql.Tx) error { // in the request's span
		return outbox.Publish(ctx, tx, "orders.placed", &Order{ID: "o-1"})
	}); err != nil {
		t.Fatal(err)
	}
	span.End()
	b := newFaulty(t)
	got := collect(t, b, "orders.placed")
	startRelay(t, db, outbox.WithBroker(telemetry.TraceBroker(b, telemetry.WithTracerProvider(tp))))
	ferrytest.Eventually(t, "the event delivered", func() bool { return got.n() == 1 })
	want := span.SpanContext()
	var producer sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindProducer {
			producer = s
		}
	}
	if producer == nil {
		t.Fatal("no producer span")
	}
	if producer.Parent().SpanID() != want.SpanID() || producer.SpanContext().TraceID() != want.TraceID() {
		t.Fatalf("producer span %v has parent %v, want a child of the request span %v", producer.SpanContext(), producer.Parent(), want)
	}
	tp2 := got.all()[0].Header.Get("traceparent")
	if tp2 == "" || tp2[3:35] != want.TraceID().String() {
		t.Fatalf("delivered traceparent %q, want trace %s", tp2, want.TraceID())
	}
}

// The backlog gauges show the events waiting and the age of the oldest,
// and the publish counter the outcomes.
func TestRelayMetrics(t *testing.T) {
	db := dbtest.SQLite(t)
	migrate(t, db)
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	b := newFaulty(t)
	b.down.Store(true)
	got := collect(t, b, "orders.placed")
	for i := range 4 {
		place(t, db, &Order{Seq: i})
	}
	startRelay(t, db, outbox.WithBroker(b), outbox.WithMeterProvider(mp), outbox.WithMaxBackoff(100*time.Millisecond))
	ferrytest.Eventually(t, "failed publishes counted", func() bool { return collectMetrics(t, reader).sum(outbox.MetricPublished, "failed") > 0 })
	m := collectMetrics(t, reader)
	if n := m.gaugeInt(outbox.MetricBacklog); n != 4 {
		t.Fatalf("backlog = %d, want 4", n)
	}
	if a := m.gaugeFloat(outbox.MetricBacklogAge); a <= 0 {
		t.Fatalf("backlog age = %v, want > 0", a)
	}
	b.down.Store(false)
	ferrytest.Eventually(t, "all 4 delivered", func() bool { return got.n() == 4 })
	ferrytest.Eventually(t, "4 counted sent, backlog 0", func() bool {
		m := collectMetrics(t, reader)
		return m.sum(outbox.MetricPublished, "sent") == 4 && m.gaugeInt(outbox.MetricBacklog) == 0
	})
}

type metrics map[string]metricdata.Aggregation

func collectMetrics(t *testing.T, r *sdkmetric.ManualReader) metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

func (m metrics) gaugeInt(name string) int64 {
	g, ok := m[name].(metricdata.Gauge[int64])
	if !ok || len(g.DataPoints) == 0 {
		return -1
	}
	return g.DataPoints[0].Value
}

func (m metrics) gaugeFloat(name string) float64 {
	g, ok := m[name].(metricdata.Gauge[float64])
	if !ok || len(g.DataPoints) == 0 {
		return -1
	}
	return g.DataPoints[0].Value
}

func (m metrics) sum(name, outcome string) int64 {
	s, ok := m[name].(metricdata.Sum[int64])
	if !ok {
		return 0
	}
	var n int64
	for _, p := range s.DataPoints {
		if v, _ := p.Attributes.Value(outbox.OutcomeKey); v.AsString() == outcome {
			n += p.Value
		}
	}
	return n
}
