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
// The package follows the OpenTelemetry semantic conventions v1.43.0
// (go.opentelemetry.io/otel/semconv/v1.43.0, SemconvSchemaURL) for what
// carried each call: the HTTP conventions over HTTP, the RPC conventions
// over gRPC and NATS, the messaging conventions for events. The
// transports give what the conventions need in transport.Call's wire
// fields (Method, Route, Target, TLS, Peer). Every call span and series
// also carries Ferry's own ferry.endpoint ("payments/Charge") and
// ferry.code (the canonical code, "ok" on success) — constant across
// transports, so one query finds an endpoint whatever carried it.
//
// HTTP (transport/http):
//
//   - SERVER span "{method} {route}" ("POST /greeter/Hello", "GET
//     /v1/hello/{name}"): http.request.method, http.route (the matched
//     pattern), url.path, url.scheme, network.peer.address/port,
//     user_agent.original, http.response.status_code; Error only for a
//     5xx status.
//   - CLIENT span "{method} {url.template}" ("POST /greeter/Hello"):
//     http.request.method, url.full, url.template, server.address and
//     server.port (the dialled instance), http.response.status_code (none
//     when no response came); Error for every failure.
//   - http.server.request.duration (s): http.request.method, http.route,
//     url.scheme, http.response.status_code; http.client.request.duration
//     (s): http.request.method, server.address, server.port,
//     http.response.status_code; http.server.active_requests
//     (http.request.method, url.scheme) and http.client.active_requests
//     (http.request.method, server.address, server.port).
//
// The status code is the one the HTTP transport writes for the call's
// code (errs.HTTPStatus; 200 on success), on the client the one the
// reply's code maps to — what a Ferry server sent.
//
// gRPC (transport/grpc):
//
//   - SERVER and CLIENT spans named by rpc.method, the full method without
//     its leading slash ("payments.Payments/Charge"): rpc.system.name
//     "grpc", rpc.method, rpc.response.status_code (the gRPC status code
//     name: "OK", "UNAVAILABLE"; Ferry's codes are gRPC's),
//     network.peer.address/port on the server, server.address/port on the
//     client. A SERVER span is Error only for server faults (UNKNOWN,
//     DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS),
//     a CLIENT span for every non-OK code.
//   - rpc.server.call.duration / rpc.client.call.duration (s):
//     rpc.system.name, rpc.method, rpc.response.status_code; the
//     conventions define no in-flight counter, so Ferry's own
//     ferry.rpc.server.active_calls / ferry.rpc.client.active_calls count
//     calls in flight (rpc.system.name, rpc.method).
//
// NATS request-reply (transport/nats), and plug-in transports:
//
//   - spans and metrics as for gRPC, with rpc.system.name "nats" (a custom
//     value: the conventions list none for NATS; a plug-in transport's
//     kind likewise) and rpc.method Ferry's logical name
//     "service/Endpoint" ("payments/Charge"), which also names the span.
//     rpc.response.status_code is the gRPC name of the Ferry code the
//     reply carried. A NATS client's network.peer.address/port is the
//     NATS server it is connected to — not the service, so not
//     server.address. The subject is not recorded: it is
//     "service.Endpoint", rpc.method spelt with a dot, and
//     messaging.destination.name on an RPC span would make backends
//     classify the call as messaging.
//
// On every transport error.type holds the Ferry code of a call that
// failed in the conventions' sense — every error on a client, a server
// fault on a server (a server that answered not_found did its job;
// ferry.code still says not_found).
//
// Events (broker): PRODUCER "send {topic}" (TraceBroker) and CONSUMER
// "process {topic}" (Tracing on the subscription), with messaging.system
// ("nats" for NATS and JetStream, "memory" for the in-process broker:
// custom values), messaging.operation.name/type, messaging.destination.name,
// messaging.destination.subscription.name, messaging.consumer.group.name
// for queue groups, messaging.message.id, messaging.message.body.size and
// ferry.delivery.attempt. The consumer span is a child of the producer
// span (one message per delivery). Metrics: messaging.process.duration,
// messaging.client.consumed.messages, messaging.client.sent.messages, and
// Ferry's ferry.messaging.redelivered.messages and
// ferry.messaging.dead_lettered.messages.
//
// Through the Prometheus exporter the names become, for example,
// http_server_request_duration_seconds{http_request_method, http_route,
// http_response_status_code, url_scheme, ferry_endpoint, ferry_code} and
// rpc_server_call_duration_seconds{rpc_system_name, rpc_method,
// rpc_response_status_code, ferry_endpoint, ferry_code}; a histogram's
// count is the call count. Durations are in seconds with buckets from
// 100µs to 30s. Span attributes are built only for spans that record.
//
// # Spans nothing exports
//
// A Setup with no exporter (no OTLP endpoint, no Stdout, no TracerOptions)
// gives Tracing and Broker spans that record nothing but carry the span
// context the SDK would give them: trace and span IDs for the logs, the
// sampler's decision and trace state for the services called. Recording
// spans nobody reads cost a served call more than the rest of the
// middleware together (bench/README.md, "Server cost per request").
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
