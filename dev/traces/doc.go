// Package traces is the trace half of the development dashboard (ferry dev):
// an in-process OTLP/HTTP trace receiver, a bounded store of the last traces
// it received, and the JSON API a page draws its trace list and waterfalls
// from.
//
// Wire the three together and point the services at the receiver:
//
//	store := traces.NewStore(200) // the last 200 traces
//	mux := http.NewServeMux()
//	mux.Handle("/v1/traces", traces.NewReceiver(store))              // OTLP/HTTP
//	mux.Handle("/api/", http.StripPrefix("/api", traces.API(store))) // GET /api/traces, /api/traces/{id}
//	go http.Serve(ln, mux)                                           // ln listening on 127.0.0.1:PORT
//
// then start each service with
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:PORT
//
// which any OpenTelemetry SDK's OTLP/HTTP exporter reads (adding /v1/traces),
// or, for a Ferry service, with telemetry.otlp_endpoint set to
// 127.0.0.1:PORT (FERRY_TELEMETRY_OTLP_ENDPOINT; plain HTTP on loopback).
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:PORT/v1/traces
// points only the traces there, should a service export metrics or logs
// over OTLP too: the receiver takes traces only.
//
// The Receiver takes OTLP/HTTP in protobuf and in JSON, gzipped or not, and
// flattens each span into a Span: ids in hex, times as time.Time, the
// service from the resource's service.name, attribute values as plain Go
// values — string, bool, int64, float64 (NaN and ±Inf as the strings "NaN",
// "Infinity", "-Infinity"), []any for arrays, map[string]any for key-value
// lists, bytes as a base64 string — and events (a recorded error is an
// "exception" event with exception.type, exception.message and
// exception.stacktrace).
//
// WithForward sends every accepted export on to another OTLP/HTTP receiver
// (a collector, Jaeger) as protobuf, in the background and best effort, so
// that the spans a dashboard shows reach a team's tracing backend too.
//
// The Store groups spans by trace and keeps a Summary of each (root span and
// its service, start, duration, span count, services, error flag). It is
// bounded: the trace that received a span the longest ago is dropped when a
// new one would pass the limit, and a trace keeps its first spans up to the
// per-trace limit (WithMaxSpans) and its root, counting the rest as
// dropped. A span that
// arrives after its trace was dropped starts the trace again, with what
// arrives from then on. Store.List gives the summaries, newest first;
// Store.Get one trace with its spans sorted by start and each span's depth
// in the tree, for a waterfall; Store.Version and Store.Changed tell a page
// whether there is anything new.
package traces
