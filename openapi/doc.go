// Package openapi describes the HTTP surface of a Ferry service as an
// OpenAPI 3.1 document (JSON): Document builds it, Handler serves it. A
// service is meant to serve it at GET /openapi.json (Path):
//
//	mux.Handle("GET "+openapi.Path, openapi.Handler(srv))
//
// The document describes what Ferry's HTTP transport (transport/http)
// serves for srv, and nothing else:
//
//   - info: the service's name as the title, its version and description;
//     "servers" as given by WithServer (none: the host serving the
//     document); one tag, the service's name, on every operation.
//   - Every endpoint: POST /{service}/{Endpoint}, operationId the
//     endpoint's name, the request as a JSON body (and as
//     application/protobuf when its types map to protobuf messages, which
//     is answered in protobuf) and the reply as a 200 JSON response. The
//     body is required when the request has required fields, since an
//     empty body is the zero request.
//   - Each REST route (server.WithRoute): its method and path, {name}
//     wildcards as required path parameters ({name...} as one parameter,
//     {$} dropped), every other request field a query can set as a query
//     parameter — the fields of Endpoint.ParamKinds for a plain struct,
//     the scalar and repeated scalar fields by JSON name for a protobuf
//     message — with the field's schema; a list is the parameter repeated.
//     A query parameter is required on a route without a body when the
//     request requires its field. POST, PUT and PATCH routes take the body
//     too, which need not hold the fields the path gives. operationIds are
//     the endpoint's name and the method ("Get_get", then "Get_get2").
//   - An idempotent endpoint (server.WithIdempotent): GET
//     /{service}/{Endpoint} with every field as a query parameter.
//   - Every operation lists the optional Ferry-Timeout-Ms header (the
//     component parameter FerryTimeoutMs) and its error responses: one
//     per status errs.HTTPStatus gives a code (400, 401, 403, 404, 409,
//     429, 500, 501, 503, 504), 413 and 415 when it reads a body, and a
//     default. Each is application/problem+json whose schema is the
//     shared Problem schema — exactly the members the transport writes:
//     type, title, status, detail, code, reason, domain, metadata and
//     details [{field, reason}] — narrowed to its status and the codes
//     that give it. (The schema is called ferry.Problem when a type of the
//     service already has the name Problem.)
//
// # Schemas
//
// Request and reply schemas are those of package schema: JSON Schema
// 2020-12, as Ferry's codec writes JSON (protojson for protobuf messages),
// with the rules of validate struct tags as keywords and verbatim under
// "x-validate". One schema.Generator serves the whole document, so each
// named type is one entry of components/schemas, referenced with $ref
// wherever it is used; nothing is left in $defs. The rules are enforced
// when the service runs middleware/validate; the document states them
// either way.
//
// # Streams
//
// OpenAPI 3.1 has no way to describe a stream of messages (3.2 adds
// itemSchema, which a 3.1 document may not use), so streams are described
// by extensions:
//
//   - A server stream is POST /{service}/{Endpoint} with the request as
//     the body, and GET with the request in the query. The 200 response
//     has two media types, text/event-stream (Server-Sent Events) and
//     application/x-ndjson (one JSON value a line), chosen by Accept,
//     whose "schema" is a string (the body as a whole) and whose
//     "x-ferry-item-schema" (ItemSchemaKey) is the schema of each message.
//     The operation carries "x-ferry-stream": "server_streaming".
//   - A client or bidirectional stream is GET /{service}/{Endpoint}
//     answered 101 Switching Protocols: a WebSocket. Its
//     "x-ferry-websocket" (WebSocketKey) is {"kind": "client_streaming" or
//     "bidi_streaming", "request": schema of each message the caller sends,
//     "response": schema of each message (or the one reply) the service
//     sends}.
//
// Routes of client and bidirectional streams are not described.
//
// # Limits
//
// Metadata headers other than Ferry-Timeout-Ms, and security, are not
// described: they belong to the middleware a service chooses. Two routes
// whose paths differ only in their wildcards' names (GET /a/{x} and
// DELETE /a/{y}) make a document OpenAPI calls invalid, though net/http
// serves both. The codec's leniency when it reads JSON (unknown members
// ignored, names matched without case) is not described: schemas give
// what it writes.
package openapi
