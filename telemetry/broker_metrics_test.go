package telemetry_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/broker/memory"
	"github.com/ferry-go/ferry/telemetry"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// sums collects the int64 sums of rm by metric name and ferry.code.
func sums(rm metricdata.ResourceMetrics) map[string]int64 {
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					code, _ := dp.Attributes.Value(attribute.Key("ferry.code"))
					out[m.Name+"/"+code.AsString()] += dp.Value
				}
			}
		}
	}
	return out
}

// TestBrokerMetrics: published, consumed, redelivered and dead-lettered
// counts for a message that fails twice and succeeds, and one that fails
// permanently.
func TestBrokerMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	mb, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	b := telemetry.TraceBroker(mb, telemetry.WithMeterProvider(mp))
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	ctx := testCtx(t)

	var calls atomic.Int32
	done := make(chan struct{}, 4)
	_, err = broker.Subscribe(ctx, b, "events.work", func(ctx context.Context, e *broker.Event[hop]) error {
		defer func() { done <- struct{}{} }()
		if e.Data.Path == "poison" {
			return broker.Permanent(errors.New("poison"))
		}
		if calls.Add(1) < 3 {
			return errors.New("transient")
		}
		return nil
	}, broker.Queue("workers"), broker.Backoff(time.Millisecond), broker.WithMiddleware(telemetry.Metrics(mp)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"retry", "poison"} {
		if err := broker.Publish(ctx, b, "events.work", &hop{Path: p}); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 { // 3 attempts + 1 poison
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("deliveries did not complete within 5s")
		}
	}
	want := map[string]int64{
		telemetry.Published + "/ok":         2,
		telemetry.Consumed + "/ok":          1,
		telemetry.Consumed + "/unknown":     3,
		telemetry.Redelivered + "/unknown":  1,
		telemetry.Redelivered + "/ok":       1,
		telemetry.DeadLettered + "/unknown": 1,
	}
	var got map[string]int64
	deadline := time.Now().Add(5 * time.Second)
	for {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		got = sums(rm)
		ok := true
		for k, v := range want {
			ok = ok && got[k] == v
		}
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
