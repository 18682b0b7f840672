// Package callkit is for authors of transport clients. It is the one client
// call pipeline every Ferry client runs — the HTTP, gRPC and NATS transport
// clients and client.Client's attempts — so that client middleware sees the
// same thing whatever carries the call, and the result comes back the same
// way:
//
//   - before any middleware runs, the transport.Call in the context names
//     the service, the endpoint, the transport Kind, the Peer and the wire
//     fields the transport gives in a Wire (Method, Route, Target, TLS),
//     with the request metadata (a copy of transport.OutgoingMetadata,
//     which middleware may add to) and the deadline;
//   - the transport's Send runs innermost and fills Call.Reply;
//   - a reply that middleware returns in place of the wire's (a cache, say)
//     is copied into the caller's reply value;
//   - every error comes back as an *errs.Error (errs.FromError), so a plain
//     error of a middleware reads the same on every transport;
//   - the reply metadata goes to transport.CaptureReply's destination, also
//     on error.
//
// Users of Ferry do not need this package: they call transport.Client's
// Invoke and write middleware.Middleware.
package callkit

import (
	"context"
	"reflect"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	"github.com/ferry-go/ferry/transport/internal/ctxkey"
	"google.golang.org/protobuf/proto"
)

// Send sends one call over the wire: it encodes req, sends call.Request as
// metadata and the context's deadline, decodes the reply into resp and sets
// call.Reply to the reply metadata (also when the server answered an
// error). It returns the transport's error; the pipeline maps it with
// errs.FromError.
type Send func(ctx context.Context, call *transport.Call, req, resp any) error

// Pipeline runs a transport client's middleware around its Send. Build one
// per client with New; it is safe for concurrent use.
type Pipeline struct {
	kind transport.Kind
	send Send
	h    middleware.Handler
	sh   middleware.Handler // the same middleware around streamTerminal
	bare bool               // no middleware
}

// New returns the pipeline of a client of kind that sends with send and
// runs mws around it, the first outermost. The chain is composed once.
func New(kind transport.Kind, send Send, mws ...middleware.Middleware) *Pipeline {
	p := &Pipeline{kind: kind, send: send, bare: len(mws) == 0}
	p.h = middleware.Chain(mws...)(p.terminal)
	p.sh = middleware.Chain(mws...)(p.streamTerminal)
	return p
}

// Bare reports whether a call with ctx may skip the pipeline and go
// straight to the wire: the pipeline has no middleware and the call is not
// an attempt of an outer call (WithParent). A transport's direct path must
// then behave as Invoke would: the same metadata, reply sink and errors.
func (p *Pipeline) Bare(ctx context.Context) bool {
	return p.bare && ctx.Value(parentKey{}) == nil
}

type state struct {
	call transport.Call
	resp any
}

type stateKey struct{}

// Wire is what a transport client knows of a call on the wire; the
// pipeline copies it into the transport.Call (see the fields of the same
// names there).
type Wire struct {
	// Peer is the remote address as the client knows it
	// ("127.0.0.1:9090", a base URL's host), empty if none.
	Peer string
	// Method is the HTTP method, the full gRPC method or the NATS subject.
	Method string
	// Route is, over HTTP, the path the call is posted to.
	Route string
	// Target is, over HTTP, the full URL.
	Target string
	// TLS is true when the connection is dialled with TLS.
	TLS bool
}

// Invoke runs one call through the pipeline with peer, the remote address
// as the client knows it, as its only wire field: InvokeWire with
// Wire{Peer: peer}.
func (p *Pipeline) Invoke(ctx context.Context, service, endpoint, peer string, req, resp any) error {
	return p.InvokeWire(ctx, service, endpoint, Wire{Peer: peer}, req, resp)
}

// InvokeWire runs one call through the pipeline, its transport.Call
// carrying w. An outer call's peer (WithParent) wins over w.Peer; the
// outer call gets w's other fields.
func (p *Pipeline) InvokeWire(ctx context.Context, service, endpoint string, w Wire, req, resp any) error {
	st := &state{resp: resp}
	parent := p.newCall(ctx, &st.call, service, endpoint, w)
	ctx = context.WithValue(transport.NewCallContext(ctx, &st.call), stateKey{}, st)
	out, err := p.h(ctx, req)
	if parent != nil {
		parent.Reply = st.call.Reply
	}
	if sink := ReplySink(ctx); sink != nil {
		*sink = transport.Copy(st.call.Reply)
	}
	if err != nil {
		return Received(err, service, endpoint)
	}
	return AssignReply(resp, out)
}

// newCall fills c for a call to service/endpoint carrying w, as an attempt
// of the outer call in ctx (WithParent) if any, which it returns.
func (p *Pipeline) newCall(ctx context.Context, c *transport.Call, service, endpoint string, w Wire) *transport.Call {
	*c = transport.Call{Service: service, Endpoint: endpoint, Kind: p.kind, Client: true, Peer: w.Peer,
		Method: w.Method, Route: w.Route, Target: w.Target, TLS: w.TLS}
	parent, _ := ctx.Value(parentKey{}).(*transport.Call)
	if parent != nil {
		c.Request = transport.Copy(parent.Request) // each attempt's middleware starts afresh
		if parent.Peer != "" {
			c.Peer = parent.Peer
		}
		parent.Method, parent.Route, parent.Target, parent.TLS = w.Method, w.Route, w.Target, w.TLS
	} else {
		c.Request = transport.OutgoingMetadata(ctx).Clone()
	}
	c.Deadline, _ = ctx.Deadline()
	return parent
}

// Received is the error a client returns for a failed call to
// service/endpoint: an *errs.Error (errs.FromError) marked as received from
// that call (errs.Error.Received), unless already marked. A transport's
// direct path (Bare) returns its errors through it too.
func Received(err error, service, endpoint string) error {
	if err == nil {
		return nil
	}
	e := errs.FromError(err)
	if e.Code() == errs.Canceled || errs.ReceivedFrom(e) != "" {
		return e
	}
	return e.Received(service + "/" + endpoint)
}

// terminal ends the chain: it sends the (possibly replaced) request with
// the Call's (possibly extended) metadata.
func (p *Pipeline) terminal(ctx context.Context, req any) (any, error) {
	st, ok := ctx.Value(stateKey{}).(*state)
	if !ok {
		return nil, errs.Newf(errs.Internal, "%s client: middleware replaced the call context", p.kind)
	}
	st.call.Reply = nil // no stale reply from an earlier try of a retrying middleware
	if err := p.send(ctx, &st.call, req, st.resp); err != nil {
		return nil, err
	}
	return st.resp, nil
}

type parentKey struct{}

// WithParent returns a copy of ctx that makes a pipeline's call an attempt
// of call, an outer call made by a client that picks the transport and the
// instance itself (client.Client): the attempt starts from a copy of
// call.Request (which the pipeline only reads), takes call.Peer, sets
// call's Method, Route, Target and TLS to its own, and stores its reply
// metadata in call.Reply.
func WithParent(ctx context.Context, call *transport.Call) context.Context {
	return context.WithValue(ctx, parentKey{}, call)
}

// ReplySink returns the destination set by transport.CaptureReply, or nil.
// A transport's direct path (Bare) stores the reply metadata there.
func ReplySink(ctx context.Context) *transport.Metadata {
	dst, _ := ctx.Value(ctxkey.ReplySink{}).(*transport.Metadata)
	return dst
}

// AssignReply copies out, a reply that client middleware returned in place
// of the wire reply (a cached one, say), into resp, the caller's reply
// pointer. It is a no-op when out is nil or already resp, and an Internal
// error when the two types differ.
func AssignReply(resp, out any) error {
	if out == nil || resp == nil || out == resp {
		return nil
	}
	if pm, ok := resp.(proto.Message); ok {
		if om, ok := out.(proto.Message); ok && pm.ProtoReflect().Descriptor() == om.ProtoReflect().Descriptor() {
			proto.Reset(pm)
			proto.Merge(pm, om)
			return nil
		}
	}
	rv, ov := reflect.ValueOf(resp), reflect.ValueOf(out)
	if rv.Kind() == reflect.Pointer && rv.Type() == ov.Type() && !ov.IsNil() {
		rv.Elem().Set(ov.Elem())
		return nil
	}
	return errs.Newf(errs.Internal, "client middleware returned a %T reply, want %T", out, resp)
}
