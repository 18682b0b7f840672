// Package http is Ferry's HTTP transport: a server that serves every
// endpoint of a server.Server over net/http, and a client that calls them.
//
// Import it as fhttp to keep net/http's name free:
//
//	import fhttp "github.com/ferry-go/ferry/transport/http"
//
// # Wire protocol
//
// Every unary endpoint answers POST /{service}/{Endpoint} (streams: see
// Streams below). The request body is
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
// # Streams
//
// Streaming endpoints (server.HandleServerStream, HandleClientStream,
// HandleBidiStream) have no REST routes: they are served at their default
// path, and their messages are JSON.
//
// A server stream answers POST /{service}/{Endpoint} with the request in
// the body — decoded, limited and refused exactly as a unary request — and
// GET /{service}/{Endpoint} with the request's fields in the query string,
// as an idempotent endpoint's GET takes them. The Accept header picks the
// format of the replies:
//
//   - text/event-stream: Server-Sent Events. Each message is an event
//     "data: <json>"; a clean end is an "end" event whose data is
//     {"trailer": {…}}; a failure is an "error" event whose data is the
//     problem+json document unary errors use (with the trailer in a
//     "trailer" member).
//   - application/x-ndjson — the default, for */* or no Accept; also
//     application/jsonl — one JSON message per line. The end is in HTTP
//     trailers: Ferry-Stream-End "ok", or "error" with Ferry-Error holding
//     the problem document (compact, ASCII); the handler's trailer comes as
//     trailers too. A body that ends without Ferry-Stream-End was cut off.
//
// Any other Accept is answered 406. A stream that fails before its first
// message — a bad request, an unknown endpoint, admission, a handler that
// fails at once — is answered as a failed unary call, with its status; from
// the first message on the status is 200 and the error is in the stream.
// The reply metadata the handler set before its first message are the
// response's headers. Every message is flushed as it is sent, and the
// handler's Send blocks while the caller is not reading. A stream has the
// deadline its caller sent in Ferry-Timeout-Ms (not cut to
// WithMaxTimeout) and none without it: it lasts until either side ends
// it. The server's read and write timeouts do not apply to streams.
//
//	curl -N -i -d '{"customer":"c-1"}' localhost:8080/orders/Watch
//	HTTP/1.1 200 OK
//	Content-Type: application/x-ndjson
//	Trailer: Ferry-Stream-End
//	Trailer: Ferry-Error
//	…
//
//	{"id":"o-1","state":"paid"}
//	{"id":"o-1","state":"shipped"}
//	Ferry-Stream-End: ok
//	X-Count: 2
//
//	curl -N -H 'Accept: text/event-stream' 'localhost:8080/orders/Watch?customer=c-1'
//	data: {"id":"o-1","state":"paid"}
//
//	event: end
//	data: {"trailer":{}}
//
// In a browser, an EventSource reads a server stream. Close it on "end" and
// on "error", or it reconnects and the stream starts over; an "error" event
// without data is the EventSource's own (the connection failed):
//
//	const es = new EventSource("/orders/Watch?customer=c-1");
//	es.onmessage = (e) => show(JSON.parse(e.data));
//	es.addEventListener("end", () => es.close());
//	es.addEventListener("error", (e) => { es.close(); if (e.data) fail(JSON.parse(e.data)); });
//
// Client and bidirectional streams are WebSockets on GET
// /{service}/{Endpoint} (a POST, or a GET that is no WebSocket handshake,
// is answered 426). The handshake's headers are the request metadata and
// may carry Ferry-Timeout-Ms. Every frame is a JSON text frame holding one
// envelope. The caller sends {"msg": <message>} for each message and
// {"end": true} when it has no more; the server sends {"header": {"key":
// ["value"]}} once, before its first message, if the handler set reply
// metadata, {"msg": <message>} for each message (a client stream's one
// reply), then {"end": {"trailer": {…}}} or {"error": <problem+json>}, and
// closes normally. A frame that is not an envelope, or a message or end
// after {"end": true}, ends the stream with an invalid_argument error
// envelope naming what was wrong and close code 1008; a message over the
// server's body limit (WithMaxBodyBytes) with resource_exhausted and close
// code 1009. When the caller closes the socket, or the connection breaks,
// the handler's context is canceled. Pages of another origin than the
// server's are refused (403) unless WithWebSocketOrigins lets them in;
// clients that send no Origin, as non-browser clients do, are not
// affected.
//
// Flow control. A caller that offers the subprotocol "ferry.v1", as
// Ferry's Client does, gets it, and with it credits both ways; the server
// never requires it. Each side then sends {"credit": n} envelopes — n a
// JSON integer from 1 to 2147483647 — granting its peer n more messages.
// The server's first frame, before any header or message, grants its
// window (WithStreamWindow, 32 messages by default); the caller's first
// frame should grant its own (Ferry's Client: WithClientStreamWindow, 32).
// A side may send a msg envelope only while it holds credit: the grants
// it received, less the messages it sent. Header, end, error and credit
// envelopes take none, nor does a client stream's one reply. Each side
// grants credit as its application takes messages, never as they arrive —
// Ferry grants half its window at a time — so it holds at most its window
// of messages; a caller still grants after its {"end": true}, since it
// still receives. The server reads all the time, so it sees the caller
// close, or the connection break, at once, however long its handler has
// not received. A caller that sends a message beyond its credit breaks the
// protocol: invalid_argument naming the window, close code 1008. The
// handler's Send blocks until the caller grants credit (a caller that
// never does gets no message but a client stream's reply), the stream
// ends, or its context does; Ferry's Client, which reads all the time
// too, blocks in Send the same way on the server's credit.
//
// Without "ferry.v1" — a browser's new WebSocket(url), wscat — no credit
// envelopes are sent either way (one from the caller ends the stream:
// close code 1008, naming the subprotocol), and TCP is the flow control: the server
// reads ahead at most WithStreamWindow messages its handler has not
// received, then stops reading until it does, so the caller's sends back
// up (a browser's WebSocket buffers them, its bufferedAmount growing); the
// handler's Send blocks while the connection is full. Such a caller is not
// held to a window it never heard of, so a page that sends a burst to a
// slow handler works; the price is that while the server holds a full
// window its handler does not take, it sees the caller close or the
// connection break only once the handler receives again (or its context
// ends otherwise: give such streams a deadline). A caller that must not
// wait on that asks for "ferry.v1".
//
//	const ws = new WebSocket("ws://localhost:8080/chat/Talk");
//	ws.onopen = () => ws.send(JSON.stringify({msg: {text: "hi"}}));
//	ws.onmessage = (e) => {
//		const env = JSON.parse(e.data);
//		if (env.msg) show(env.msg);
//		else if (env.error) fail(env.error);
//	};
//	// later: ws.send(JSON.stringify({end: true}));
//
//	wscat -c ws://localhost:8080/chat/Talk
//	> {"msg":{"text":"hi"}}
//	< {"msg":{"text":"hi","from":"bot"}}
//
// The same with credits: the page grants its window first, sends only
// while it holds credit, and grants back half its window as it takes
// messages.
//
//	const ws = new WebSocket("ws://localhost:8080/chat/Talk", "ferry.v1");
//	const win = 32, out = [];
//	let credit = 0, taken = 0;
//	const flush = () => { while (credit > 0 && out.length) { credit--; ws.send(JSON.stringify({msg: out.shift()})); } };
//	const send = (m) => { out.push(m); flush(); };
//	ws.onopen = () => { ws.send(JSON.stringify({credit: win})); send({text: "hi"}); };
//	ws.onmessage = (e) => {
//		const env = JSON.parse(e.data);
//		if (env.credit) { credit += env.credit; flush(); }
//		else if (env.msg) {
//			show(env.msg);
//			if (++taken >= win / 2) { ws.send(JSON.stringify({credit: taken})); taken = 0; }
//		}
//		else if (env.error) fail(env.error);
//	};
//
//	wscat -s ferry.v1 -c ws://localhost:8080/chat/Talk
//	< {"credit":32}
//	> {"credit":32}
//	> {"msg":{"text":"hi"}}
//	< {"msg":{"text":"hi","from":"bot"}}
//
// The Client implements transport.Streamer: it reads server streams as
// NDJSON, or as Server-Sent Events with WithStreamFormat(SSE), and opens
// client and bidirectional streams as WebSockets with "ferry.v1" through
// its http.Client (TLS included), holding at most WithClientStreamWindow
// messages the application has not received. Each message it receives is
// bounded by WithMaxReplyBytes.
//
// Stop waits for open streams — WebSockets too, which http.Server.Shutdown
// does not track — until its context ends, then cancels their handlers and
// closes their connections.
//
// # OpenAPI
//
// The server describes its HTTP surface — every endpoint, REST route and
// stream, with JSON Schemas carrying the validate tags' constraints and the
// problem+json errors — as an OpenAPI 3.1 document at GET /openapi.json
// (package openapi). WithoutOpenAPI turns it off.
//
// # Tiers
//
// Ferry middleware (server.WithMiddleware, WithClientMiddleware) sees
// decoded requests and runs the same on every transport. WithFilter wraps
// the raw http.Handler instead, for HTTP-only concerns such as CORS.
package http
