// Package transport holds what every transport shares: the transport Kind,
// case-insensitive Metadata, the per-call Call information that middleware
// reads from the context, and the Client interface that transport clients
// implement.
//
// The sub-packages http, grpc and nats each hold one transport, with a
// server side (a server.Transport) and a client side (a Client). They know
// this package, the server and middleware packages, and never each other.
package transport

import (
	"context"
	"time"

	"github.com/ferry-go/ferry/transport/internal/ctxkey"
)

// Default bounds of a served call's deadline. Each transport server takes a
// call's deadline from the caller (grpc-timeout, Ferry-Timeout-Ms) but
// never beyond its maximum, and gives a call that carries none its default;
// WithDefaultTimeout and WithMaxTimeout on each server change them.
const (
	DefaultTimeout    = 30 * time.Second
	DefaultMaxTimeout = 5 * time.Minute
)

// Kind names a transport: "http", "grpc", "nats", or a plug-in's own name
// ("quic", say). It is the name a transport advertises in the registry
// (server.Advertiser) and the name client.WithDialer and
// client.WithTransports use, so a plug-in transport works end to end. The
// zero value means unknown.
type Kind string

// The built-in transport kinds.
const (
	HTTP Kind = "http"
	GRPC Kind = "grpc"
	NATS Kind = "nats"
)

// String returns the kind's name, "unknown" for the zero Kind.
func (k Kind) String() string {
	if k == "" {
		return "unknown"
	}
	return string(k)
}

// Call describes one call in flight. On a server the transport puts it in the
// handler's context before middleware runs; on a client the transport client
// puts it in the context its client middleware sees. Middleware reads it with
// [CallFromContext] the same way whatever transport carried the call.
type Call struct {
	// Service and Endpoint name the called endpoint, e.g. "greeter", "Hello".
	Service  string
	Endpoint string
	// Kind is the transport that carries the call.
	Kind Kind
	// Client is true on the calling side, false on the serving side.
	Client bool
	// Request is the request metadata: what the caller sent (server side) or
	// will send (client side; client middleware may add to it).
	Request Header
	// Reply is the reply metadata: what the handler sets (server side) or
	// what the server sent back (client side, filled when the call returns).
	Reply Header
	// Peer is the remote address as the transport sees it, if known.
	Peer string
	// Method is the call's name on the wire: the HTTP request method
	// ("POST"), the full gRPC method ("/payments.Payments/Charge"), or the
	// NATS subject ("payments.Charge").
	Method string
	// Route is, over HTTP, the path pattern of the route: on a server the
	// one that matched ("/v1/hello/{name}", or the default route
	// "/greeter/Hello"), on a client the path the call is posted to. Empty
	// on other transports.
	Route string
	// Target is, over HTTP, the request's URL: its path on a server
	// (r.URL.Path), the full URL on a client. Empty on other transports.
	Target string
	// TLS is true when the call arrived over TLS (server side) or goes
	// over a connection dialled with TLS (client side), as far as the
	// transport knows.
	TLS bool
	// Deadline is the call's deadline; zero means none.
	Deadline time.Time
	// StreamKind is the call's kind: Unary, or the stream it opens.
	StreamKind StreamKind
	// Stream is, on a server, the messages of a streaming call (nil for a
	// unary one). Middleware may replace it with a wrapper that sees each
	// message (middleware.OnMessages); the handler uses the one it finds.
	Stream Stream
	// Trailer is the metadata sent after the reply (server side: set it with
	// SetTrailer; gRPC trailers, HTTP trailers, the end frame of a NATS
	// stream), or received after it (client side). Nil until set.
	Trailer Metadata
}

// SetTrailer sets the trailer key to value, creating the trailer on first
// use. Handlers set trailers this way; the transport sends them when the
// call or the stream ends.
func (c *Call) SetTrailer(key, value string) {
	if c.Trailer == nil {
		c.Trailer = Metadata{}
	}
	c.Trailer.Set(key, value)
}

type callKey struct{}

// NewCallContext returns a copy of ctx carrying c.
func NewCallContext(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// IsCallKey reports whether key is the context key a Call is carried
// under, for a context type that carries a Call itself in an allocation
// it makes anyway (a transport's per-call state, a broker's per-message
// event): its Value returns the *Call for this key, and CallFromContext
// finds it as it finds the Call of NewCallContext.
func IsCallKey(key any) bool {
	_, ok := key.(callKey)
	return ok
}

// CallFromContext returns the Call in ctx, if any.
func CallFromContext(ctx context.Context) (*Call, bool) {
	c, ok := ctx.Value(callKey{}).(*Call)
	return c, ok
}

type outgoingKey struct{}

// WithMetadata returns a copy of ctx whose client calls send md as request
// metadata, in addition to any metadata already attached to ctx.
func WithMetadata(ctx context.Context, md Metadata) context.Context {
	if prev, ok := ctx.Value(outgoingKey{}).(Metadata); ok {
		merged := prev.Clone()
		for k, vs := range md {
			merged[k] = append(merged[k], vs...)
		}
		md = merged
	}
	return context.WithValue(ctx, outgoingKey{}, md)
}

// OutgoingMetadata returns the metadata attached to ctx by WithMetadata.
// Callers must not modify it.
func OutgoingMetadata(ctx context.Context) Metadata {
	md, _ := ctx.Value(outgoingKey{}).(Metadata)
	return md
}

// CaptureReply returns a copy of ctx that makes client calls made with it
// store the reply metadata in *dst when they return (also on error). With
// retries, *dst holds the last attempt's.
func CaptureReply(ctx context.Context, dst *Metadata) context.Context {
	return context.WithValue(ctx, ctxkey.ReplySink{}, dst)
}

// Client invokes endpoints of a service over one transport. Invoke encodes
// req, carries the context's metadata and deadline on the wire, and decodes
// the reply into resp (a pointer). Errors are *errs.Error values with the
// code the server sent, or Unavailable, DeadlineExceeded or Canceled for
// failures of the transport itself.
type Client interface {
	Invoke(ctx context.Context, service, endpoint string, req, resp any) error
	Close() error
}

// Endpoint names an endpoint together with its request and reply types,
// so that registering it and calling it are checked by the compiler.
// Declare it once, beside the types, in a package both the service and its
// callers import:
//
//	var Reserve = transport.Endpoint[ReserveRequest, ReserveReply]{Service: "inventory", Name: "Reserve"}
//
//	server.Register(srv, Reserve, inv.Reserve)          // the service
//	reply, err := Reserve.Call(ctx, c, &ReserveRequest{SKU: "A-17"}) // a caller, over any Client
type Endpoint[Req, Resp any] struct {
	Service string // "inventory"
	Name    string // "Reserve"
}

// Call calls the endpoint through c (a transport client, or client.Client
// which finds the service) and returns its reply.
func (e Endpoint[Req, Resp]) Call(ctx context.Context, c Client, req *Req) (*Resp, error) {
	resp := new(Resp)
	if err := c.Invoke(ctx, e.Service, e.Name, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// String returns "service/Name".
func (e Endpoint[Req, Resp]) String() string { return e.Service + "/" + e.Name }

// Invoke calls service/endpoint through c with a typed request and reply —
// for names known only at run time (a gateway, a command-line tool);
// otherwise declare an Endpoint and use its Call.
func Invoke[Req, Resp any](ctx context.Context, c Client, service, endpoint string, req *Req) (*Resp, error) {
	return Endpoint[Req, Resp]{Service: service, Name: endpoint}.Call(ctx, c, req)
}
