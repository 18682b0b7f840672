// Package nats serves a Ferry server over NATS request/reply and calls
// services over NATS. Users import it as
//
//	fnats "github.com/ferry-go/ferry/transport/nats"
//
// # Wire format
//
// Endpoint Hello of service greeter listens on subject "greeter.Hello" in
// queue group "greeter", so the instances of a service share the load. The
// request body is JSON unless the Content-Type header says
// application/protobuf; the reply uses the request's encoding. Metadata
// travels as NATS headers: request metadata from the client's context,
// reply metadata set by the handler (written with lower-case keys). Header
// reads are case-insensitive although NATS headers are not.
//
// The caller's deadline travels as a whole number of milliseconds (the
// time left, rounded up, at least 1), cut to the server's WithMaxTimeout
// (5m); a request without one gets the server's default timeout (30s). A
// client call whose context has no deadline sends none: the client stops
// waiting after its own default timeout, and the server applies its
// default. The deadline travels in one of two ways, and the server reads
// both:
//
//   - the Ferry-Timeout-Ms header, which any caller may send (`nats req -H
//     Ferry-Timeout-Ms:500`); a malformed value is an InvalidArgument
//     error. The header comes first when a request has both;
//   - the last token of the reply subject, "ferry-t<ms>": Ferry's Client
//     sends a call that needs no other header (JSON, no metadata) with the
//     reply subject "<inbox>.<n>.ferry-t<ms>" and no header at all. A NATS
//     message with headers costs the server nats.go's decoding of them (a
//     map, four allocations) and the client their encoding: with the
//     header, a call with a deadline had 76–91% of the throughput of one
//     without. A last token that is not exactly "ferry-t" and a
//     whole number > 0 is some other caller's reply subject and is left
//     alone (nats.go's inboxes are letters and digits only).
//
// Compatibility. A server reads both, so callers that send the header
// (earlier Ferry clients, plain nats.go code, the nats CLI) keep working
// unchanged. A server that predates the reply-subject deadline answers a
// newer client's calls as before (the reply subject is only where it
// answers to) but applies its own default timeout instead of the caller's
// deadline; the caller still gives up at its deadline. So upgrade servers
// before clients, or give such clients WithTimeoutHeader, which sends every
// deadline in the header as before. WithTimeoutHeader is also the choice
// for calls that cross NATS accounts through a service import: the NATS
// server replaces the reply subject of an imported request, and the
// deadline in it is lost (the server's default applies).
//
// An error reply carries the NATS Services API headers Nats-Service-Error
// (the message) and Nats-Service-Error-Code (the HTTP status for the code,
// as `nats req` and other micro clients expect), plus Ferry-Error-Code (the
// canonical code name, e.g. not_found) and a JSON body
// {"code":..,"message":..,"details":[..]}. The client reads the Ferry code
// first and falls back to the HTTP status, so it also understands services
// written with nats.go/micro.
//
// # Discovery
//
// Each server answers the NATS Services API discovery subjects
// $SRV.PING|INFO|STATS, $SRV.<verb>.<service> and $SRV.<verb>.<service>.<id>
// with the JSON documents of nats.go/micro (micro.Ping, micro.Info,
// micro.Stats), so `nats micro ls`, `nats micro info greeter` and
// `nats micro stats greeter` list Ferry services like any other.
//
// The protocol is implemented here rather than by micro.AddService, reusing
// micro's types and constants. micro runs each endpoint's handler inside the
// subscription callback, one request at a time, and updates the statistics
// when the callback returns. Serving requests concurrently would mean
// returning from the callback before the handler finishes, which makes
// micro count every request as done (and successful) at once; and
// micro.Service.Stop only drains subscriptions, with no way to wait for
// handlers still running. micro also installs process-wide hooks on the
// connection's closed and error handlers. Owning the small discovery
// protocol gives concurrent handlers, correct statistics and a graceful
// Stop.
//
// # Concurrency and shutdown
//
// One queue subscription on "<service>.*" receives every call; an endpoint
// name missing from the service gets a NotFound reply. Requests run on a
// pool of worker goroutines, at most WithMaxConcurrent (default 1024) at
// once. One worker waits for the next request and runs it itself; if the
// request is still running after 50µs (a timer pushed back by each
// request, stopped when the worker waits), another worker (started on
// demand, kept until Stop) takes over waiting. So a stream of fast requests runs on
// one goroutine with its replies batched, as with a plain nats.go
// subscription, while slow or blocking handlers run concurrently. When all
// workers are busy, requests wait in the subscription's queue, up to
// WithMaxQueued (default 8192); past that, each request taken is answered at
// once with ResourceExhausted ("overloaded") until the backlog is back under
// the bound, so a burst is refused quickly instead of timing out. Should
// requests arrive faster than even that, nats.go's own queue (the
// connection's SyncQueueLen) overflows and drops some — their callers time
// out — and the transport logs it and goes on serving. Server.Check (and so
// Service.Check and /readyz) fails once the subscription has ended. A
// request's deadline (from Ferry-Timeout-Ms or the default) counts from the
// moment a worker picks it up.
//
// (A goroutine per request was measured first: handing each request to a
// fresh goroutine cost about twice the CPU of a plain subscription, from
// scheduler wake-ups, stack growth and replies flushed one by one.)
//
// Stop unsubscribes from discovery, drains the endpoint subscription so that
// requests already delivered to this instance are still served, and waits
// for running handlers. If its context ends first, Stop cancels the
// handlers' contexts, waits for them to return, and returns the context's
// error; requests still queued are then answered Unavailable, as are
// handlers that fail with the cancellation. A handler that ignores its
// context delays Stop until it returns. No goroutine of the transport
// outlives Stop. The connection belongs to the caller and stays open.
//
// # Streams
//
// Streaming endpoints (server.HandleServerStream, HandleClientStream and
// HandleBidiStream) are served by Ferry's stream protocol: plain NATS
// messages, which this section specifies completely, so that a client in
// another language needs nothing else. TestStreamWireProtocol speaks it
// with a bare nats.go connection.
//
// Subjects. A caller subscribes a stream inbox, a subject only it uses;
// Ferry's Client subscribes "<inbox>.*" once (nats.Conn.NewInbox as
// <inbox>) and gives each stream "<inbox>.<n>", so a thousand streams cost
// one subscription. It opens the stream by publishing an open to the
// endpoint's usual subject, "<service>.<Endpoint>", with its stream inbox
// as reply subject. The serving instance answers on that inbox with frames
// whose reply subject is its own stream inbox, where the caller then sends
// its frames; Ferry's is "<service>._stream.<instance id>.<n>", but a
// caller takes it from the reply subject and assumes nothing of its shape.
// Every frame goes to the peer's stream inbox with the sender's own as
// reply subject, so each side always knows where to answer, a receiver
// drops frames that do not carry its peer's inbox, and once a peer's
// inbox has no subscriber the NATS server answers the next frame sent to
// it with a no-responders status (header "Status: 503", no body) on the
// sender's inbox: the peer is gone.
//
// The open carries as body the request of a server stream, encoded as a
// unary request is, and nothing for a client or bidirectional stream, with
// these headers:
//
//	Ferry-Stream        the endpoint's kind: server_streaming, client_streaming or bidi_streaming (required)
//	Ferry-Credit        the caller's window: messages the server may send before more credit (required, 1 to 2147483647)
//	Ferry-Heartbeat-Ms  the caller's heartbeat interval (absent or 0: the caller sends no pings)
//	Ferry-Timeout-Ms    the stream's deadline, as for a unary call (absent: none)
//	Content-Type        the encoding of every message of the stream, both ways (absent: JSON)
//	any other           request metadata
//
// Frames. A frame names its type in Ferry-Frame and carries its number in
// Ferry-Seq: each side numbers the frames it sends on a stream 1, 2, 3…
// (the open is not numbered). NATS keeps the order of the frames of a
// stream, since they go from one connection to one subscription, and the
// protocol relies on it (chunks included); but NATS drops messages on a
// reconnect or to a slow consumer, so a receiver checks the numbers follow
// on and ends the stream on a gap (Unavailable) rather than lose a message
// or a credit without a word. The frames:
//
//	accept  server  the stream runs; Ferry-Heartbeat-Ms, and for client and bidi streams Ferry-Credit, the server's window (required)
//	msg     both    one message as body, or the last piece of a chunked one (from the caller: client and bidi streams)
//	chunk   both    a piece of a message too large for one frame; the first carries Ferry-Size, the message's size in bytes
//	header  server  the reply metadata, when the stream ends before a message carried it
//	credit  both    Ferry-Credit: the peer may send that many more messages (from the server: client and bidi streams)
//	end     both    caller: no more messages (CloseSend; client and bidi streams); server: a clean end, with the trailer metadata as headers
//	error   server  a failed end: the trailer metadata and the error headers and JSON body of a unary error reply
//	cancel  caller  the caller gives up (Close, its context ended): the handler's context is canceled, nothing more is sent
//	ping    both    nothing: a heartbeat
//
// Header names are read case-insensitively (Ferry writes them as spelt
// here); frame types and stream kinds are the lower-case words above, and
// numbers plain decimal. Headers a frame type does not use are ignored.
//
// The server's first frame is an accept, or an error frame with Ferry-Seq
// 1 and no reply subject that refuses the open before any handler ran: an
// unknown endpoint (NotFound, as for a unary call), a malformed open or
// request, or a kind other than the endpoint's (InvalidArgument), more
// than WithMaxStreams streams or a server past WithMaxQueued
// (ResourceExhausted), a server stopping (Unavailable). A no-responders
// status instead means that no instance serves the service (Unavailable,
// as for a unary call). The reply metadata the handler set rides on the
// first msg or chunk frame, or on a header frame when the stream ends
// before any message; later frames carry none. A plain request (no
// Ferry-Stream) to a streaming endpoint gets a unary InvalidArgument
// error; an open of a unary endpoint, an InvalidArgument error frame.
//
// Flow control. A sender may begin a message only while it holds credit,
// and each message takes one, however many chunks it needs. Its credit is
// the window the peer gave (Ferry-Credit on the open for the server, on
// the accept for the caller) plus every credit frame since. A receiver
// grants credit as its application takes messages, never as frames
// arrive, so it holds at most its window; Ferry grants half the window at
// a time. A message beyond the credit granted is a protocol error. Send
// blocks while it has no credit, until credit comes, the stream ends or
// its context does, so a reader that stops stops the writer. The server's
// window is WithStreamWindow, the client's WithClientStreamWindow (64
// messages each by default).
//
// Large messages. A frame, headers included, must fit the connection's
// max payload (nats.Conn.MaxPayload; 1 MiB unless the NATS server says
// otherwise). A larger message goes as chunk frames and a last msg frame.
// The first chunk carries Ferry-Size, which the receiver checks against
// its limit before taking more — the server's WithMaxRequestBytes (or the
// max payload), the client's WithMaxStreamMessageBytes — and which the
// pieces must add up to exactly. A message over the limit ends the stream
// with ResourceExhausted naming the limit. So a stream carries messages as
// large as its limit allows, not only up to max_payload; a server
// stream's request rides on the open and fits the max payload, as a unary
// request does.
//
// Heartbeats. A side that sent nothing for its heartbeat interval sends a
// ping (Ferry looks every half interval, so it is never silent for more
// than one and a half); one that hears nothing for HeartbeatMisses (3) of
// its peer's intervals takes the peer for gone: the caller's Recv returns Unavailable,
// the server cancels the handler's context. Ferry's interval is 5s
// (WithHeartbeat, WithClientHeartbeat). With no-responders, this ends the
// streams of a peer that crashed, hung or lost its connection.
//
// Ending. The server ends the stream once its handler returns: an end
// frame for nil (after a client stream's one reply, a msg frame), an error
// frame with the code, message and details of an error. The caller's Recv
// returns the messages before it, then io.EOF or the error; Header and
// Trailer return the reply and trailer metadata. The caller ends it early
// with a cancel. A side sends nothing after its last frame (the server's
// end or error, the caller's cancel), and drops frames that reach it after
// the stream ended there. A frame that breaks the protocol ends the
// stream: the server answers with an error frame (InvalidArgument) that
// names what was wrong; a Ferry client cancels the stream and returns
// Internal.
//
// Deadlines. A stream has the deadline of its open's Ferry-Timeout-Ms, cut
// to WithMaxTimeout, and none without one: WithDefaultTimeout is for unary
// calls, while a stream lives until either side ends it. A Ferry client
// that hears nothing for its WithClientTimeout (30s) after an open gives
// up with DeadlineExceeded.
//
// Serving. An open arrives on the endpoint's subscription like a request
// and a worker of the pool checks it and starts the stream on a goroutine
// of its own, so a stream never holds a worker; at most WithMaxStreams
// (4096) run at once. Messages are decoded under the server's admission
// (server.WithAdmission), as requests are. Stop refuses new opens
// (Unavailable), waits for open streams as it does for running handlers,
// and once its context ends cancels them: their handlers see their
// context canceled and their callers get an error frame, Unavailable
// "service is stopping".
//
// Permissions. A service with streaming endpoints subscribes
// "<service>._stream.>" besides its other subjects, and its callers publish
// there (docs/PRODUCTION.md lists the permissions); the stream inbox lives
// in the service's namespace so that a caller needs no right to publish
// into other clients' inboxes. A service without streaming endpoints does
// not subscribe it.
//
// Example: a server stream of two messages; the caller's inbox is
// _INBOX.q.7 and the serving instance's id X.
//
//	subject              reply                headers                                                       body
//	streams.Count        _INBOX.q.7           Ferry-Stream: server_streaming, Ferry-Credit: 64,             {"num":2}
//	                                          Ferry-Heartbeat-Ms: 5000
//	_INBOX.q.7           streams._stream.X.1  Ferry-Frame: accept, Ferry-Seq: 1, Ferry-Heartbeat-Ms: 5000
//	_INBOX.q.7           streams._stream.X.1  Ferry-Frame: msg, Ferry-Seq: 2, x-reply: yes                  {"num":0}
//	_INBOX.q.7           streams._stream.X.1  Ferry-Frame: msg, Ferry-Seq: 3                                {"num":1}
//	_INBOX.q.7           streams._stream.X.1  Ferry-Frame: end, Ferry-Seq: 4, x-trailer: sent
//
// Had the caller given Ferry-Credit: 1, the server would have waited after
// its frame 2 for the caller's
//
//	streams._stream.X.1  _INBOX.q.7           Ferry-Frame: credit, Ferry-Seq: 1, Ferry-Credit: 1
//
// # Client
//
// [Client] implements transport.Client with nats.Conn.RequestMsgWithContext
// (or, for a call whose deadline rides in the reply subject, a
// subscription "<inbox>.*.*" per connection, shared by its Clients as
// nats.go shares its own for requests, which lasts as long as the
// connection), and transport.Streamer with the stream protocol above.
// No responders becomes Unavailable at once, so a caller fails fast when no
// instance is running; a payload over the server's max_payload becomes
// ResourceExhausted; the context's deadline and cancellation become
// DeadlineExceeded and Canceled. A call without a deadline gets the
// client's default timeout (30s), so no call waits forever. A service or
// endpoint name that is not one subject token is InvalidArgument, sending
// nothing; a service name with a '.' is a fully qualified gRPC service name,
// which only the gRPC transport calls, and the error says so.
package nats
