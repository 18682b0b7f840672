// Package gateway is Ferry's API gateway: one HTTP entry point for every
// service a registry lists.
//
// A POST to /<service>/<Endpoint> with a JSON body is forwarded to a live
// instance of the service through a client — normally a client.Client on
// the same registry, so the instance is picked by its selector, over the
// transport it prefers, with the JSON bytes passing through unchanged (over
// NATS and HTTP as the body; over gRPC as an application/grpc+json call,
// which Ferry's gRPC servers answer in JSON, so the gateway needs no Go
// types or protobuf schema), with its retries (idempotent endpoints only), circuit
// breakers and outlier ejection. The reply is answered with 200 and the
// service's JSON; an error exactly as the service's own HTTP transport
// answers it (status of the code, RFC 9457 problem+json with code, reason,
// domain, metadata and details), except that Unavailable names only the
// service, never an address the gateway dialled.
//
// Routes follow the registry (registry.Catalog): a service is routed once
// an instance registers, for the endpoints the instance lists
// (registry.MetadataEndpoints, which every ferry.Service registers), and no
// longer once its last instance is gone — 404 then, as for a path that
// never existed. An endpoint the instances do not list is 404 too, without
// a backend call. Instances that list no endpoints (registered by hand)
// are routed for any name, and the backend answers an unknown one in its
// protocol's standard: 404 over HTTP and NATS, 501 over gRPC, whose code
// for an unknown method is Unimplemented. Rules pin, rename or hide routes (WithRules). Without a
// registry, registry/natssrv is a catalogue of every service answering NATS
// $SRV discovery, Ferry's with their endpoints and routes (the NATS
// transport announces them in $SRV.INFO):
//
//	reg, _ := natssrv.New(nc)
//	c, _ := client.New(reg, client.WithNATS(nc))
//	gw, _ := gateway.New(reg, c)
//
// The edge middleware (WithMiddleware) runs before any backend call:
// authentication, rate limits, request ids, tracing, metrics and access
// logs see a transport.Call naming the backend service and endpoint, with
// the HTTP request's headers; a request they reject never reaches a
// service. Request headers are forwarded as call metadata — not hop-by-hop
// ones, nor what clients say of themselves (User-Agent, Accept…, which the
// edge middleware still sees); WithoutForwarding drops more — the caller's
// Ferry-Timeout-Ms
// bounds the call (capped by WithTimeouts), and the service's reply
// metadata comes back as response headers. CORS wraps the gateway like any
// http.Handler (transport/http/cors).
//
// REST routes (server.WithRoute: "GET /v1/hello/{name}") and the GET of
// idempotent endpoints (GET /<service>/<Endpoint>?field=…) are served too,
// over any transport: the service registers them with the kinds of its
// request fields (registry.MetadataRoutes), and the gateway turns path
// wildcards and query parameters into the JSON request — a value of the
// wrong kind or an unknown parameter is a 400 naming it, without a backend
// call. Two services claiming one pattern: the first (by name) keeps it,
// and the other's is logged.
//
// The request header Ferry-Transport (TransportHeader: "nats", "http",
// "grpc") pins the transport of one call, as a dashboard's API explorer
// does: an unknown name is a 400 naming it, a transport the service's
// instances do not offer a 503 naming the service and the transport, both
// without a backend call; the header is not forwarded. The gateway passes
// the pin to its client with client.WithCallTransport.
//
// ferrytest.GatewayConformance is the gateway's conformance suite (issue
// #13): run on each catalogue and preferred transport in this package's
// TestConformance.
//
// Request headers that gRPC metadata cannot carry (names outside
// [0-9A-Za-z-_.], values beyond printable ASCII unless the name ends in
// "-bin") are not forwarded over any transport, so a call reads the same
// whichever transport the client picks.
//
// Streams: Ferry endpoints are unary on every transport today, so the
// gateway forwards one request and one reply. Server-streaming endpoints
// (issue #15) will pass through as Server-Sent Events.
package gateway
