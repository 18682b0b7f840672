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
// The caller's deadline travels in the Ferry-Timeout-Ms header as a whole
// number of milliseconds, cut to the server's WithMaxTimeout (5m); a request
// without it gets the server's default timeout (30s). A malformed value is an InvalidArgument error. A client
// call whose context has no deadline sends none: the client stops waiting
// after its own default timeout, and the server applies its default.
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
// request is still running after 50µs, another worker (started on demand,
// kept until Stop) takes over waiting. So a stream of fast requests runs on
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
// # Client
//
// [Client] implements transport.Client with nats.Conn.RequestMsgWithContext.
// No responders becomes Unavailable at once, so a caller fails fast when no
// instance is running; a payload over the server's max_payload becomes
// ResourceExhausted; the context's deadline and cancellation become
// DeadlineExceeded and Canceled. A call without a deadline gets the
// client's default timeout (30s), so no call waits forever. A service or
// endpoint name that is not one subject token is InvalidArgument, sending
// nothing; a service name with a '.' is a fully qualified gRPC service name,
// which only the gRPC transport calls, and the error says so.
package nats
