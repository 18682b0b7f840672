package telemetry

import (
	"context"
	"sync"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// Metric names. The same instruments, with the same attribute keys, record
// calls over HTTP, gRPC and NATS; only the rpc.system value differs.
const (
	ServerDuration = "rpc.server.duration"     // histogram, s: rpc.system, rpc.service, rpc.method, ferry.code
	ClientDuration = "rpc.client.duration"     // histogram, s: same attributes
	ServerActive   = "rpc.server.active_calls" // up-down counter: rpc.system, rpc.service, rpc.method
	ClientActive   = "rpc.client.active_calls" // up-down counter: same

	ProcessDuration = "messaging.process.duration"             // histogram, s: messaging.system, messaging.destination.name, messaging.destination.subscription.name, ferry.code
	Consumed        = "messaging.client.consumed.messages"     // counter: same attributes
	Redelivered     = "ferry.messaging.redelivered.messages"   // counter: deliveries with Attempt > 1, same attributes
	Published       = "messaging.client.sent.messages"         // counter (TraceBroker): messaging.system, messaging.destination.name, ferry.code
	DeadLettered    = "ferry.messaging.dead_lettered.messages" // counter (TraceBroker): messaging.system, messaging.destination.name, messaging.destination.subscription.name, ferry.code
)

// durationBuckets are histogram bounds in seconds, from 100µs to 30s.
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// maxCachedSets bounds the per-(service, endpoint, transport, code)
// attribute set cache; beyond it sets are built per call.
const maxCachedSets = 4096

type rpcInstruments struct {
	duration metric.Float64Histogram
	active   metric.Int64UpDownCounter
}

type metricsMW struct {
	server, client rpcInstruments
	process        metric.Float64Histogram
	consumed       metric.Int64Counter
	redelivered    metric.Int64Counter

	mu   sync.RWMutex
	sets map[setKey]attribute.Set
}

type setKey struct {
	service, endpoint, code string
	kind                    transport.Kind
	client, event, noCode   bool
}

// Metrics returns middleware that measures every call and event it wraps
// with the OTel metrics API on mp (nil means otel.GetMeterProvider()):
//
//   - calls: rpc.server.duration / rpc.client.duration histograms in
//     seconds, whose count is the call count (rpc_server_duration_seconds_count
//     in Prometheus; no separate counter is kept, each measurement costs),
//     and the rpc.server.active_calls / rpc.client.active_calls in-flight
//     up-down counters, with attributes rpc.system, rpc.service,
//     rpc.method and (except in-flight) ferry.code;
//   - events (a broker.Delivery in the context): the
//     messaging.process.duration histogram, the
//     messaging.client.consumed.messages counter and, for Attempt > 1,
//     ferry.messaging.redelivered.messages, with attributes
//     messaging.system, messaging.destination.name,
//     messaging.destination.subscription.name and ferry.code.
//
// Published and dead-lettered counts come from TraceBroker, which sees
// Publish and the subscription's MaxDeliver.
func Metrics(mp metric.MeterProvider) middleware.Middleware {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := newMetrics(mp)
	return m.middleware
}

func newMetrics(mp metric.MeterProvider) *metricsMW {
	meter := mp.Meter(instrumentationName, metric.WithSchemaURL(SemconvSchemaURL))
	m := &metricsMW{sets: map[setKey]attribute.Set{}}
	mk := func(dur, active, side string) rpcInstruments {
		var r rpcInstruments
		r.duration, _ = meter.Float64Histogram(dur, metric.WithUnit("s"),
			metric.WithDescription("Duration of "+side+" calls, whatever transport carried them."),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		r.active, _ = meter.Int64UpDownCounter(active, metric.WithUnit("{call}"),
			metric.WithDescription(side+" calls in flight."))
		return r
	}
	m.server = mk(ServerDuration, ServerActive, "server")
	m.client = mk(ClientDuration, ClientActive, "client")
	m.process, _ = meter.Float64Histogram(ProcessDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of event handlers."), metric.WithExplicitBucketBoundaries(durationBuckets...))
	m.consumed, _ = meter.Int64Counter(Consumed, metric.WithUnit("{message}"),
		metric.WithDescription("Deliveries handled, by outcome (ferry.code)."))
	m.redelivered, _ = meter.Int64Counter(Redelivered, metric.WithUnit("{message}"),
		metric.WithDescription("Deliveries that were redeliveries (attempt > 1), by outcome."))
	return m
}

func (m *metricsMW) middleware(next middleware.Handler) middleware.Handler {
	return func(ctx context.Context, req any) (any, error) {
		call, ok := transport.CallFromContext(ctx)
		if !ok {
			return next(ctx, req)
		}
		if d, dok := broker.DeliveryFromContext(ctx); isEvent(call, d, dok) {
			began := time.Now()
			resp, err := next(ctx, req)
			took := time.Since(began).Seconds()
			set := metric.WithAttributeSet(m.set(setKey{service: d.Subscription, endpoint: d.Topic, code: codeName(err), kind: d.Kind, event: true}))
			m.process.Record(ctx, took, set)
			m.consumed.Add(ctx, 1, set)
			if d.Attempt > 1 {
				m.redelivered.Add(ctx, 1, set)
			}
			return resp, err
		}
		inst := &m.server
		if call.Client {
			inst = &m.client
		}
		k := setKey{service: call.Service, endpoint: call.Endpoint, kind: call.Kind, client: call.Client, noCode: true}
		active := metric.WithAttributeSet(m.set(k))
		inst.active.Add(ctx, 1, active)
		began := time.Now()
		resp, err := next(ctx, req)
		took := time.Since(began).Seconds()
		inst.active.Add(ctx, -1, active)
		k.noCode, k.code = false, codeName(err)
		set := metric.WithAttributeSet(m.set(k))
		inst.duration.Record(ctx, took, set)
		return resp, err
	}
}

// set returns the attribute set of k, cached.
func (m *metricsMW) set(k setKey) attribute.Set {
	m.mu.RLock()
	s, ok := m.sets[k]
	m.mu.RUnlock()
	if ok {
		return s
	}
	var kvs []attribute.KeyValue
	if k.event {
		kvs = []attribute.KeyValue{messagingSystem(k.kind), semconv.MessagingDestinationName(k.endpoint),
			semconv.MessagingDestinationSubscriptionName(k.service)}
	} else {
		kvs = []attribute.KeyValue{rpcSystem(k.kind), semconv.RPCService(k.service), semconv.RPCMethod(k.endpoint)}
	}
	if !k.noCode {
		kvs = append(kvs, CodeKey.String(k.code))
	}
	s = attribute.NewSet(kvs...)
	m.mu.Lock()
	if len(m.sets) < maxCachedSets {
		m.sets[k] = s
	}
	m.mu.Unlock()
	return s
}
