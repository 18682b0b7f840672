// Package shed is Ferry load-shedding middleware: it caps the calls in
// flight across every handler it wraps and rejects the excess at once with
// errs.ResourceExhausted and a retry-after hint, rather than letting them
// queue up and time out.
//
//	s, err := shed.New(256, shed.WithExempt("Health"))
//	if err != nil { ... }
//	srv := server.New("orders", server.WithMiddleware(s.Middleware()))
//
// How it differs from middleware.Bulkhead: a Middleware is applied to each
// endpoint's handler separately, so Bulkhead listed in server.WithMiddleware
// limits each endpoint on its own (N endpoints may run N×max calls). A
// Shedder keeps one counter for every handler its Middleware wraps — the
// whole server, or whichever group of endpoints shares it — adds the
// retry-after hint (reply metadata; the Retry-After header of the 429 on
// HTTP) that middleware.Retry honours, lets named endpoints (health checks,
// admin calls) through even when full, and reports InFlight for a gauge.
// For a limit per endpoint, middleware.Bulkhead is enough.
//
// On broker subscriptions prefer the subscription's own concurrency option:
// a shed event is an error the broker redelivers (JetStream) or drops (core
// NATS).
package shed
