// Package dashboard is Ferry's live development dashboard (issue #13): a
// page a developer keeps open while working, like Encore's local
// development dashboard. It lists the services a registry holds, shows each
// endpoint's schema and live figures, calls endpoints through the API
// gateway (the API explorer), and draws the traces dev/traces receives as
// waterfalls.
//
// It is an http.Handler built from server-rendered html/template pages, a
// stylesheet and a small script embedded in the binary: no CDN, no web
// fonts, no build step; it works offline. Every page reads without
// JavaScript; the script adds live refresh and the explorer's Send.
//
//	d, err := dashboard.New(dashboard.Options{
//		Catalog: reg,                        // a registry.Catalog (required)
//		Traces:  store,                      // a *traces.Store (optional)
//		Stats:   dashboard.NATSStats(nc),    // $SRV.STATS (optional)
//	})
//	...
//	err = d.Start(ctx)         // follows the catalogue, samples the stats
//	defer d.Stop(ctx)
//	mux.Handle("/_ferry/", d) // beside a gateway at "/": mux.Handle("/", gw)
//
// # Mounting
//
// The dashboard lives under Options.Prefix (default "/_ferry/"), which its
// links, stylesheet and script use. Mount it either way: by a mux pattern
// (mux.Handle("/_ferry/", d)), where requests keep the prefix, or behind
// http.StripPrefix("/_ferry", d), where they do not; ServeHTTP serves both.
// "/_ferry" without the slash redirects. Served by the gateway under
// /_ferry/, the explorer calls the gateway's routes on the same origin;
// with Options.Gateway an URL (a gateway in another process, as ferry dev
// may run it) the dashboard forwards the explorer's calls itself, at
// <prefix>call/<service>/<Endpoint>.
//
// # Pages
//
//   - <prefix> — the catalogue: every service, with its versions, its
//     instances (ID, version, each transport's address and TLS, how long
//     the dashboard has seen it: present in the registry means up) and its
//     endpoints (routes, the idempotent flag, live figures). Metadata that
//     does not parse is reported on the service, never a failure of the
//     page.
//   - <prefix>services/<service>/<Endpoint> — one endpoint: routes and
//     their parameter kinds, live figures, the request and response JSON
//     Schemas as field tables (name, type, required, the validator rules of
//     x-validate, description; nested objects as dotted names) with the raw
//     schema behind a disclosure — or, when the service publishes none
//     (registry.MetadataSchemas), the Go type names $SRV.INFO gives — and the
//     explorer.
//   - <prefix>explorer?endpoint=<service>/<Endpoint> — the explorer with an
//     endpoint picker. The request body is pre-filled with a skeleton of
//     the request schema (its required properties, or all of them when it
//     marks none, with the schema's const/default/example/enum value or ""
//     / 0 / false / [] / a nested skeleton). A transport selector (auto,
//     nats, http, grpc) sends Ferry-Transport: <name> to the gateway (auto
//     sends none). Send posts the body and shows the status, the time taken
//     (in the browser, fetch to last byte), the response headers and the
//     pretty-printed body; an error's problem+json (title, code, detail,
//     field details) is highlighted. Each call carries a W3C traceparent
//     made in the browser, which the gateway's tracing middleware
//     continues, so the page links to the call's trace before it is
//     received (a traceparent or Ferry-Trace-Id reply header, should the
//     gateway send one, wins).
//   - <prefix>traces — the last traces in the store, newest first: start,
//     root service and span, services, span count, duration, error flag;
//     refreshed live.
//   - <prefix>traces/<id> — a waterfall: one row per span in start order,
//     indented by depth, its bar placed by start and duration relative to
//     the trace (server-rendered SVG), coloured by service, with the span
//     kind and the transport (rpc.system.name, http, messaging.system);
//     error spans in red. A row opens (a <details>, no script needed) to
//     show status, times, ids, attributes, events and the resource.
//
// JSON, each with Content-Type application/json: <prefix>api/catalog (a
// Catalog; its ETag is the catalogue's version), <prefix>api/figures
// (Figures), <prefix>api/traces and <prefix>api/traces/<id> (dev/traces'
// API; 404 when tracing is off). Every response carries a
// Content-Security-Policy of default-src 'self' (no inline script or
// style; bars are SVG attributes), X-Content-Type-Options: nosniff and
// Referrer-Policy: no-referrer; all text is escaped by html/template.
//
// # Live figures, and where each comes from
//
// The catalogue's endpoint rows and the endpoint page poll
// <prefix>api/figures every second; trace lists and pages poll
// <prefix>api/traces (and the catalogue <prefix>api/catalog) every two
// seconds with If-None-Match and re-render when it changes.
//
//   - calls/s and error rate: from $SRV.STATS (Options.Stats; NATSStats
//     gathers every instance's answer on a NATS connection), sampled every
//     StatsInterval (1 s). Calls, errors and processing time are the
//     differences of each instance's counters between the newest sample
//     and the newest one at least RateWindow (10 s) older, summed over the
//     service's instances; calls/s is calls over that window's length,
//     error rate errors over calls. An instance that restarted (counters
//     went down) counts from zero; one that appeared within the window
//     counts whole when it started within it. $SRV.STATS counts the calls
//     the NATS transport serves only: calls over HTTP or gRPC are not in
//     it. An endpoint no instance reports in $SRV.STATS takes calls/s and
//     error rate from its server spans of the last minute instead (spans
//     over 60 s; errors: ferry.code not "ok"). The page says which.
//   - p50 and p99: from the trace store, over the SERVER spans of the
//     endpoint that ended within the last LatencyWindow (1 min) — spans
//     whose ferry.endpoint attribute is "service/Endpoint" and whose
//     resource service.name is that service, so a gateway's span for the
//     same endpoint is not counted — by nearest rank. They cover every
//     transport, but only sampled, exported calls. Without a trace store
//     they are "–", and the average processing time from $SRV.STATS (over
//     the window's calls, or since start) is shown instead.
//   - totals: the $SRV.STATS counters summed over the instances that
//     answered, since each started.
//
// # Test ids
//
// Elements a browser test drives carry data-testid attributes, stable
// across releases:
//
//	nav-catalog, nav-explorer, nav-traces    the top navigation
//	tracing-state                            "tracing on" / "tracing off"
//	catalog-summary, catalog-empty           the catalogue's head / no services
//	service-<service>                        a service's card
//	instance-<service>-<id>                  an instance's row, with
//	instance-up                              how long it has been up
//	endpoint-<service>-<Endpoint>            the link to an endpoint's page
//	endpoint-title, endpoint-routes          the endpoint page's head and routes
//	endpoint-idempotent                      its idempotent tag
//	figures                                  its live figures, with
//	fig-calls, fig-errors, fig-p50, fig-p99, fig-avg, fig-total
//	schema-request, schema-response          the schema cards
//	field-<name>                             a field's row ("field-address.city")
//	schema-missing, request-type, response-type   no schema published; Go types
//	explorer                                 the explorer form (data-call-url)
//	                                         (body[data-ready="true"] once the script has run)
//	explorer-endpoint, explorer-open         the picker (explorer page)
//	explorer-url                             the URL called
//	explorer-transport                       the transport <select>
//	explorer-request                         the request body <textarea>
//	explorer-send                            the Send button
//	explorer-result                          the reply, hidden until sent, with
//	explorer-status                          "200 OK" / "400 Bad Request"
//	explorer-time                            the time taken
//	explorer-body                            the response body, pretty JSON
//	explorer-headers                         the response headers
//	explorer-error                           the highlighted problem (errors only)
//	explorer-trace                           the trace link (data-trace-id)
//	trace-list, trace-row                    the trace table; a row (data-trace-id)
//	traces-empty, tracing-off                no traces yet; no store
//	waterfall                                a trace's waterfall
//	span-<service>                           a span's row (data-span-id)
//	span-detail                              its attributes, events, status
//	trace-error, trace-missing               a trace's error tag; not in the store
//
// The live figure cells carry data-fig (calls_per_s, error_rate, p50_ms,
// p99_ms, avg_ms, total_calls, total_errors) inside an element whose
// data-fig-key is "service/Endpoint".
//
// TestBrowser drives all of it in headless Chromium through the real
// gateway (internal/browser finds and starts Chromium, or skips naming
// scripts/install-chromium), and writes screenshots to $FERRY_ARTIFACTS
// when set, else to the test's temporary directory.
package dashboard
