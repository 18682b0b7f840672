package server

import (
	"context"
	"fmt"
	"io"
	"iter"
	"reflect"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
)

// Sender sends the replies of a streaming call. Send blocks while the
// caller is not reading (flow control) and fails once the call ended.
type Sender[T any] struct{ st transport.Stream }

// Send sends one reply.
func (s Sender[T]) Send(m *T) error {
	if m == nil {
		m = new(T)
	}
	return s.st.Send(m)
}

// Receiver receives the requests of a client or bidirectional stream.
type Receiver[T any] struct{ st transport.Stream }

// Recv returns the caller's next message, io.EOF once the caller closed its
// side, or the error the call ended with.
func (r Receiver[T]) Recv() (*T, error) {
	m := new(T)
	if err := r.st.Recv(m); err != nil {
		return nil, err
	}
	return m, nil
}

// All yields the caller's messages until it closes its side; an error
// ends the sequence as its last pair.
func (r Receiver[T]) All() iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		for {
			m, err := r.Recv()
			if err == io.EOF {
				return
			}
			if !yield(m, err) || err != nil {
				return
			}
		}
	}
}

// Stream is both sides of a bidirectional streaming call.
type Stream[Req, Resp any] struct {
	Receiver[Req]
	Sender[Resp]
}

// HandleServerStream registers h as server-streaming endpoint name of s:
// one request, then every reply h sends until it returns. A nil error ends
// the stream cleanly; an error ends it with that error, after the replies
// already sent.
//
// Served over gRPC natively, over HTTP as Server-Sent Events or
// newline-delimited JSON (by Accept), and over NATS by Ferry's stream
// protocol (transport/nats). Middleware runs once per stream, around h;
// middleware.OnMessages adds per-message hooks.
func HandleServerStream[Req, Resp any](s *Server, name string, h func(ctx context.Context, req *Req, out Sender[Resp]) error, opts ...EndpointOption) {
	e := streamEndpoint[Req, Resp](name, transport.ServerStreaming)
	e.Handler = func(ctx context.Context, req any) (any, error) {
		st, err := callStream(ctx, name, transport.ServerStreaming)
		if err != nil {
			return nil, err
		}
		r, ok := req.(*Req)
		if !ok {
			return nil, errs.Newf(errs.Internal, "endpoint %s: middleware replaced the request with %T", name, req)
		}
		return nil, h(ctx, r, Sender[Resp]{st})
	}
	s.addTyped(e, opts)
}

// HandleClientStream registers h as client-streaming endpoint name of s:
// h receives the caller's messages and returns the one reply.
//
// Served over gRPC natively, over HTTP on a WebSocket, and over NATS by
// Ferry's stream protocol.
func HandleClientStream[Req, Resp any](s *Server, name string, h func(ctx context.Context, in Receiver[Req]) (*Resp, error), opts ...EndpointOption) {
	e := streamEndpoint[Req, Resp](name, transport.ClientStreaming)
	e.Handler = func(ctx context.Context, _ any) (any, error) {
		st, err := callStream(ctx, name, transport.ClientStreaming)
		if err != nil {
			return nil, err
		}
		resp, err := h(ctx, Receiver[Req]{st})
		if err != nil {
			return nil, err
		}
		if resp == nil {
			resp = new(Resp)
		}
		return resp, nil
	}
	s.addTyped(e, opts)
}

// HandleBidiStream registers h as bidirectional streaming endpoint name of
// s: h receives and sends at once, until it returns.
//
// Served over gRPC natively, over HTTP on a WebSocket, and over NATS by
// Ferry's stream protocol.
func HandleBidiStream[Req, Resp any](s *Server, name string, h func(ctx context.Context, st Stream[Req, Resp]) error, opts ...EndpointOption) {
	e := streamEndpoint[Req, Resp](name, transport.BidiStreaming)
	e.Handler = func(ctx context.Context, _ any) (any, error) {
		st, err := callStream(ctx, name, transport.BidiStreaming)
		if err != nil {
			return nil, err
		}
		return nil, h(ctx, Stream[Req, Resp]{Receiver[Req]{st}, Sender[Resp]{st}})
	}
	s.addTyped(e, opts)
}

func streamEndpoint[Req, Resp any](name string, kind transport.StreamKind) *Endpoint {
	return &Endpoint{
		Name:         name,
		Kind:         kind,
		RequestType:  reflect.TypeFor[Req](),
		ResponseType: reflect.TypeFor[Resp](),
		newRequest:   func() any { return new(Req) },
	}
}

// callStream returns the stream of the call in ctx. A transport that does
// not know streams calls the endpoint as a unary one: it is told so,
// rather than the handler failing on a nil stream.
func callStream(ctx context.Context, name string, kind transport.StreamKind) (transport.Stream, error) {
	c, ok := transport.CallFromContext(ctx)
	if !ok || c.Stream == nil {
		return nil, errs.Newf(errs.Unimplemented, "endpoint %s is a %s endpoint; this transport does not serve streams", name, kind)
	}
	return c.Stream, nil
}

// addTyped checks e's types and adds it.
func (s *Server) addTyped(e *Endpoint, opts []EndpointOption) {
	for _, t := range [...]struct {
		what string
		typ  reflect.Type
	}{{"request", e.RequestType}, {"response", e.ResponseType}} {
		if err := checkStruct(t.typ, t.what); err != nil {
			s.recordErr(fmt.Errorf("server: endpoint %q: %w", e.Name, err))
			return
		}
	}
	s.add(e, opts)
}
