// Package telemetry traces, measures and logs every Ferry call and event
// the same way whatever transport carried it, and serves /metrics, /livez
// and /readyz on an admin port.
//
//	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "orders", Stdout: true})
//	defer tel.Shutdown(context.Background())
//	srv := server.New("orders", server.WithMiddleware(tel.Middleware()...))
//	client := fnats.NewClient(nc, fnats.WithClientMiddleware(tel.Middleware()...))
//	b := tel.Broker(jetstreamBroker) // producer spans, published/dead-letter counts
//	admin := tel.Admin(":9464")
//	nc := fnats.Connect(url)
//	svc := ferry.New(srv, ferry.WithConnection(nc), ferry.WithComponent(admin), ferry.WithTransport(fhttp.NewServer(":8080")), ..., ferry.WithComponent(admin.DrainSignal()))
//	admin.AddCheck("nats", nc.Check)
//
// # One middleware, every transport
//
// Tracing, Metrics and AccessLog are middleware.Middleware values. They run
// after the transport decoded the call, read it through
// transport.CallFromContext, and so give one span, one set of measurements
// and one log line per call on HTTP, gRPC and NATS alike, on servers,
// clients (Call.Client) and subscriptions (broker.DeliveryFromContext).
// Trace context travels in Call.Request, which every transport carries:
// HTTP headers, gRPC metadata, NATS headers, broker message headers.
// HeaderCarrier writes lower-case keys and reads case-insensitively.
//
// Ferry does not use otelhttp or the otelgrpc stats handler: they would
// trace the HTTP and gRPC wire but not NATS (there is no official NATS
// instrumentation) nor broker messages, name and attribute spans
// differently per transport, and run before Ferry has resolved the
// service, endpoint and canonical error code. Nothing stops an application
// from adding them for wire-level detail (fhttp.WithFilter,
// fgrpc.WithServerOptions); they then produce a second, nested span.
//
// # Semantic conventions
//
// The package follows the OpenTelemetry semantic conventions v1.37.0
// (go.opentelemetry.io/otel/semconv/v1.37.0, SemconvSchemaURL), the last
// release whose RPC conventions use rpc.system, rpc.service and rpc.method.
//
//   - RPC spans are named "{service}/{Endpoint}", kind SERVER or CLIENT,
//     with rpc.system = "grpc" (the convention's value), "http" or "nats"
//     (custom values: the conventions have none for Ferry's HTTP RPC or for
//     NATS request-reply), rpc.service, rpc.method, network.peer.address
//     and network.peer.port where the transport knows the peer (HTTP and
//     gRPC servers; not NATS, nor clients), ferry.code (Ferry's canonical
//     code, "ok" on success), error.type on failure, and over gRPC
//     rpc.grpc.status_code. A SERVER span's status is Error only for
//     server-fault codes (unknown, deadline_exceeded, unimplemented,
//     internal, unavailable, data_loss), as the gRPC conventions say; a
//     CLIENT span's for every error.
//   - Broker spans: PRODUCER "send {topic}" (TraceBroker) and CONSUMER
//     "process {topic}" (Tracing on the subscription), with
//     messaging.system ("nats" for NATS and JetStream, "memory" for the
//     in-process broker: custom values), messaging.operation.name/type,
//     messaging.destination.name, messaging.destination.subscription.name,
//     messaging.consumer.group.name for queue groups, messaging.message.id,
//     messaging.message.body.size and ferry.delivery.attempt. The consumer
//     span is a child of the producer span (one message per delivery).
//   - Metrics (see the constants in metrics.go): rpc.server.duration and
//     rpc.client.duration histograms in seconds (v1.37.0 says
//     milliseconds; newer conventions moved to seconds under
//     rpc.*.call.duration, and Prometheus wants seconds), call counters, an
//     in-flight up-down counter; messaging.process.duration,
//     messaging.client.consumed.messages, messaging.client.sent.messages,
//     and Ferry's ferry.messaging.redelivered.messages and
//     ferry.messaging.dead_lettered.messages. Every transport records into
//     the same instruments with the same attribute keys: through the
//     Prometheus exporter, rpc_server_duration_seconds{rpc_system,
//     rpc_service, rpc_method, ferry_code}.
//
// # Broker counts and their limits
//
// Consumed and redelivered counts (Metrics on the subscription) see only
// deliveries that reached the middleware: a payload that does not decode
// is dead-lettered by broker.Subscribe before any middleware runs.
// Dead-lettered counts (TraceBroker's Subscribe) see every delivery,
// decode failures included, and count a failure that is permanent or on
// the subscription's MaxDeliver-th attempt — what the broker decides; a
// dead letter whose publish then fails (JetStream keeps redelivering it)
// is counted again on each later last attempt. Core NATS never redelivers,
// so its failures count neither as redelivered nor as dead-lettered.
//
// # Health
//
// Admin is a ferry.Component: list it first so /metrics and /livez outlive
// the transports' drain, and its DrainSignal last so /readyz goes 503
// before any transport begins draining (the Service stops components in
// reverse order). Readiness checks are plain funcs (NATSConnected, Closed
// for a Service's Ready channel, or your own). The gRPC transport's health
// service goes NOT_SERVING only when the gRPC transport itself stops; it
// is not yet tied to these checks (transport/grpc exposes no hook for it yet).
package telemetry
