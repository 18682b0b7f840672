// Package http is Ferry's HTTP transport: a server that serves every
// endpoint of a server.Server over net/http, and a client that calls them.
//
// Import it as fhttp to keep net/http's name free:
//
//	import fhttp "github.com/ferry-go/ferry/transport/http"
//
// # Wire protocol
//
// Every endpoint answers POST /{service}/{Endpoint}. The request body is
// JSON (Content-Type application/json, or none, or the
// application/x-www-form-urlencoded that `curl -d` sends) or protobuf
// (application/protobuf and its aliases); an empty body is the zero
// request. The reply uses the request's encoding:
//
//	curl -s -d '{"name":"Ada"}' localhost:8080/greeter/Hello
//
// Endpoints may add REST routes (server.WithRoute), such as
// "GET /v1/hello/{name}": the body, for POST, PUT and PATCH, is decoded
// first, then path wildcards and query parameters are set into request
// fields by their JSON names. Repeated query parameters fill list fields.
// An idempotent endpoint (server.WithIdempotent) also answers
// GET /{service}/{Endpoint}, its request taken from the query string:
//
//	curl -s 'localhost:8080/greeter/Hello?name=Ada'
//
// Metadata travels as headers both ways. The caller's deadline travels as
// the Ferry-Timeout-Ms header (whole milliseconds); the server bounds the
// handler's context by it — cut to WithMaxTimeout (5m), or
// WithDefaultTimeout (30s) when the header is absent — and cancels it when
// the client goes away. The reply may take WithWriteTimeout (10s) beyond
// the deadline to be written.
//
// Errors are RFC 9457 application/problem+json bodies with the canonical
// code and details as extension members:
//
//	{"type":"about:blank","title":"Not Found","status":404,
//	 "detail":"no such user","code":"not_found","details":[…]}
//
// The status follows errs.HTTPStatus, except for failures of the transport
// itself: 413 for an oversized body (resource_exhausted), 415 for an
// unsupported content type (invalid_argument), 405 with an Allow header for
// a wrong method (unimplemented). The client turns any error status back
// into an *errs.Error with the same code, message and details. It refuses a
// service name with a '.' — a fully qualified gRPC service name, which only
// the gRPC transport calls — with InvalidArgument, sending nothing.
//
// # Tiers
//
// Ferry middleware (server.WithMiddleware, WithClientMiddleware) sees
// decoded requests and runs the same on every transport. WithFilter wraps
// the raw http.Handler instead, for HTTP-only concerns such as CORS.
package http
