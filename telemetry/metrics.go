package telemetry

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Metric names. Calls over HTTP are measured by the HTTP conventions'
// instruments, calls over gRPC and NATS by the RPC conventions' (v1.43.0);
// every call series also carries ferry.endpoint and (except in-flight
// counts) ferry.code, so one query covers an endpoint on every transport.
const (
	HTTPServerDuration = "http.server.request.duration" // histogram, s: http.request.method, http.route, http.response.status_code, url.scheme, error.type, ferry.endpoint, ferry.code
	HTTPClientDuration = "http.client.request.duration" // histogram, s: http.request.method, server.address, server.port, http.response.status_code, error.type, ferry.endpoint, ferry.code
	HTTPServerActive   = "http.server.active_requests"  // up-down counter: http.request.method, url.scheme, ferry.endpoint
	HTTPClientActive   = "http.client.active_requests"  // up-down counter: http.request.method, server.address, server.port, ferry.endpoint

	RPCServerDuration = "rpc.server.call.duration"      // histogram, s: rpc.system.name, rpc.method, rpc.response.status_code, error.type, ferry.endpoint, ferry.code
	RPCClientDuration = "rpc.client.call.duration"      // histogram, s: same attributes
	RPCServerActive   = "ferry.rpc.server.active_calls" // up-down counter: rpc.system.name, rpc.method, ferry.endpoint (the conventions define none)
	RPCClientActive   = "ferry.rpc.client.active_calls" // up-down counter: same

	ProcessDuration = "messaging.process.duration"             // histogram, s: messaging.system, messaging.destination.name, messaging.destination.subscription.name, ferry.code
	Consumed        = "messaging.client.consumed.messages"     // counter: same attributes
	Redelivered     = "ferry.messaging.redelivered.messages"   // counter: deliveries with Attempt > 1, same attributes
	Published       = "messaging.client.sent.messages"         // counter (TraceBroker): messaging.system, messaging.destination.name, ferry.code
	DeadLettered    = "ferry.messaging.dead_lettered.messages" // counter (TraceBroker): messaging.system, messaging.destination.name, messaging.destination.subscription.name, ferry.code
)

// durationBuckets are histogram bounds in seconds, from 100µs to 30s
// (finer at the low end than the conventions' advisory 5ms..10s: Ferry
// calls are often sub-millisecond).
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// maxCachedSets bounds the attribute set cache; beyond it sets are built
// per call (in-flight sets, which carry their count, are always kept).
const maxCachedSets = 4096

type callInstruments struct {
	duration metric.Float64Histogram
	// active is observed: each in-flight set counts its calls in an
	// atomic, which the collection reads (two atomic additions per call
	// instead of two measurements through the SDK).
	active metric.Int64ObservableUpDownCounter
}

type metricsMW struct {
	httpServer, httpClient callInstruments
	rpcServer, rpcClient   callInstruments
	process                metric.Float64Histogram
	consumed               metric.Int64Counter
	redelivered            metric.Int64Counter

	mu       sync.RWMutex
	sets     map[setKey]*setOptions
	inFlight []*setOptions // the in-flight sets, for the collection
}

// setOptions are one attribute set as the options the instruments take,
// made once: a measurement then allocates nothing.
type setOptions struct {
	add []metric.AddOption
	rec []metric.RecordOption
	obs []metric.ObserveOption

	// For an in-flight set: the calls in flight, the instrument they are
	// reported on, and the set of the same call when it ends ok (the
	// common end, so that it costs no second look-up).
	calls  atomic.Int64
	active metric.Int64ObservableUpDownCounter
	ok     atomic.Pointer[setOptions]
}

func newSetOptions(s attribute.Set) *setOptions {
	o := metric.WithAttributeSet(s)
	return &setOptions{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}, obs: []metric.ObserveOption{o}}
}

// setKey is everything a call's or a delivery's attribute set depends on;
// fields a style does not use stay zero (never the server side's peer:
// its ports are ephemeral).
type setKey struct {
	service, endpoint string    // a delivery's subscription and topic
	method, route     string    // Call.Method, Call.Route (HTTP server)
	peer              string    // Call.Peer (HTTP client)
	code              errs.Code // 0: ok
	kind              transport.Kind
	style             style
	client, tls       bool
	event, noCode     bool
	noStatus          bool // an HTTP client call without a response
}

// Metrics returns middleware that measures every call and event it wraps
// with the OTel metrics API on mp (nil means otel.GetMeterProvider()):
//
//   - calls over HTTP: the http.server.request.duration /
//     http.client.request.duration histograms in seconds, whose count is
//     the call count (http_server_request_duration_seconds_count in
//     Prometheus; no separate counter is kept, each measurement costs),
//     and the http.server.active_requests / http.client.active_requests
//     in-flight up-down counters, with the HTTP conventions' attributes;
//   - calls over gRPC, NATS or a plug-in transport: the
//     rpc.server.call.duration / rpc.client.call.duration histograms in
//     seconds and Ferry's ferry.rpc.server.active_calls /
//     ferry.rpc.client.active_calls in-flight counters (the RPC
//     conventions define none), with rpc.system.name, rpc.method and (not
//     in flight) rpc.response.status_code;
//   - every call series also carries ferry.endpoint and (not in flight)
//     ferry.code, and error.type on failure; the constants above list each
//     instrument's attributes;
//   - events (a broker.Delivery in the context): the
//     messaging.process.duration histogram, the
//     messaging.client.consumed.messages counter and, for Attempt > 1,
//     ferry.messaging.redelivered.messages, with attributes
//     messaging.system, messaging.destination.name,
//     messaging.destination.subscription.name and ferry.code.
//
// Attribute sets are built once per distinct set and cached, so a call
// measured costs no allocation.
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
	m := &metricsMW{sets: map[setKey]*setOptions{}}
	mk := func(dur, durDesc, active, activeUnit, activeDesc string) callInstruments {
		var r callInstruments
		r.duration, _ = meter.Float64Histogram(dur, metric.WithUnit("s"), metric.WithDescription(durDesc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		r.active, _ = meter.Int64ObservableUpDownCounter(active, metric.WithUnit(activeUnit), metric.WithDescription(activeDesc))
		return r
	}
	m.httpServer = mk(HTTPServerDuration, "Duration of HTTP server requests.",
		HTTPServerActive, "{request}", "Number of active HTTP server requests.")
	m.httpClient = mk(HTTPClientDuration, "Duration of HTTP client requests.",
		HTTPClientActive, "{request}", "Number of active HTTP requests.")
	m.rpcServer = mk(RPCServerDuration, "Measures the duration of an incoming Remote Procedure Call (RPC).",
		RPCServerActive, "{call}", "RPC server calls in flight.")
	m.rpcClient = mk(RPCClientDuration, "Measures the duration of an outgoing Remote Procedure Call (RPC).",
		RPCClientActive, "{call}", "RPC client calls in flight.")
	m.process, _ = meter.Float64Histogram(ProcessDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of event handlers."), metric.WithExplicitBucketBoundaries(durationBuckets...))
	m.consumed, _ = meter.Int64Counter(Consumed, metric.WithUnit("{message}"),
		metric.WithDescription("Deliveries handled, by outcome (ferry.code)."))
	m.redelivered, _ = meter.Int64Counter(Redelivered, metric.WithUnit("{message}"),
		metric.WithDescription("Deliveries that were redeliveries (attempt > 1), by outcome."))
	_, _ = meter.RegisterCallback(m.observe, m.httpServer.active, m.httpClient.active, m.rpcServer.active, m.rpcClient.active)
	return m
}

// observe reports the calls in flight of every in-flight set.
func (m *metricsMW) observe(_ context.Context, o metric.Observer) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, s := range m.inFlight {
		o.ObserveInt64(s.active, s.calls.Load(), s.obs...)
	}
	return nil
}

func (m *metricsMW) middleware(next middleware.Handler) middleware.Handler {
	return func(ctx context.Context, req any) (any, error) {
		call, ok := transport.CallFromContext(ctx)
		if !ok {
			return next(ctx, req)
		}
		if d, dok := deliveryOf(ctx, call); isEvent(call, d, dok) {
			began := time.Now()
			resp, err := next(ctx, req)
			took := time.Since(began).Seconds()
			set := m.set(setKey{service: d.Subscription, endpoint: d.Topic, code: errs.CodeOf(err), kind: d.Kind, event: true})
			m.process.Record(ctx, took, set.rec...)
			m.consumed.Add(ctx, 1, set.add...)
			if d.Attempt > 1 {
				m.redelivered.Add(ctx, 1, set.add...)
			}
			return resp, err
		}
		k := callKey(call)
		inst := m.instruments(k)
		k.noCode = true
		flight := m.set(k)
		flight.calls.Add(1)
		began := time.Now()
		resp, err := next(ctx, req)
		took := time.Since(began).Seconds()
		flight.calls.Add(-1)
		var done *setOptions
		if err == nil {
			done = flight.ok.Load()
		}
		if done == nil {
			k.noCode, k.code = false, errs.CodeOf(err)
			// An HTTP client call that failed before a response came has
			// no status code.
			k.noStatus = k.style == httpStyle && call.Client && err != nil && call.Reply == nil
			done = m.set(k)
			if err == nil {
				flight.ok.Store(done)
			}
		}
		inst.duration.Record(ctx, took, done.rec...)
		return resp, err
	}
}

// instruments returns the instruments of a call with key k.
func (m *metricsMW) instruments(k setKey) *callInstruments {
	switch {
	case k.style == httpStyle && k.client:
		return &m.httpClient
	case k.style == httpStyle:
		return &m.httpServer
	case k.client:
		return &m.rpcClient
	}
	return &m.rpcServer
}

// callKey returns the set key of call, with the fields its style uses.
func callKey(call *transport.Call) setKey {
	k := setKey{service: call.Service, endpoint: call.Endpoint, kind: call.Kind, client: call.Client, style: styleOf(call)}
	switch k.style {
	case httpStyle:
		k.method, k.tls = call.Method, call.TLS
		if call.Client {
			k.peer = call.Peer
		} else {
			k.route = call.Route
		}
	case grpcStyle:
		k.method = call.Method
	}
	return k
}

// set returns the attribute set of k as options, cached.
func (m *metricsMW) set(k setKey) *setOptions {
	m.mu.RLock()
	s, ok := m.sets[k]
	m.mu.RUnlock()
	if ok {
		return s
	}
	s = newSetOptions(attribute.NewSet(k.attrs()...))
	m.mu.Lock()
	defer m.mu.Unlock()
	if cached, ok := m.sets[k]; ok { // made meanwhile by another call
		return cached
	}
	if k.noCode && !k.event {
		s.active = m.instruments(k).active
		m.sets[k] = s
		m.inFlight = append(m.inFlight, s)
	} else if len(m.sets) < maxCachedSets {
		m.sets[k] = s
	}
	return s
}

// attrs returns the attributes of k's set.
func (k setKey) attrs() []attribute.KeyValue {
	if k.event {
		kvs := []attribute.KeyValue{messagingSystem(k.kind), semconv.MessagingDestinationName(k.endpoint),
			semconv.MessagingDestinationSubscriptionName(k.service)}
		if !k.noCode {
			kvs = append(kvs, CodeKey.String(codeString(k.code)))
		}
		return kvs
	}
	kvs := make([]attribute.KeyValue, 0, 10)
	kvs = append(kvs, EndpointKey.String(k.service+"/"+k.endpoint))
	switch k.style {
	case httpStyle:
		m, _ := httpMethod(k.method)
		kvs = append(kvs, semconv.HTTPRequestMethodKey.String(m))
		if k.client {
			kvs = serverAttrs(k.peer, defaultPort(k.tls), kvs)
		} else {
			kvs = append(kvs, urlScheme(k.tls))
			if !k.noCode && k.route != "" { // not on active_requests
				kvs = append(kvs, semconv.HTTPRoute(k.route))
			}
		}
	case grpcStyle:
		kvs = append(kvs, semconv.RPCSystemNameGRPC, semconv.RPCMethod(k.method[1:]))
	default:
		kvs = append(kvs, rpcSystem(k.kind), semconv.RPCMethod(k.service+"/"+k.endpoint))
	}
	if k.noCode {
		return kvs
	}
	if failed(k.style, k.client, k.code) {
		kvs = append(kvs, semconv.ErrorTypeKey.String(k.code.String()))
	}
	if k.style == httpStyle {
		if !k.noStatus {
			kvs = append(kvs, semconv.HTTPResponseStatusCode(httpStatus(k.code)))
		}
	} else {
		kvs = append(kvs, semconv.RPCResponseStatusCode(statusName(k.code)))
	}
	return append(kvs, CodeKey.String(codeString(k.code)))
}
