package transport

import (
	"context"
	"errors"
	"io"
	"iter"

	"github.com/ferry-go/ferry/errs"
)

// StreamKind says which sides of a call carry a stream of messages.
type StreamKind uint8

// The stream kinds. The zero value is a plain (unary) call.
const (
	// Unary is one request and one reply.
	Unary StreamKind = iota
	// ServerStreaming is one request and a stream of replies.
	ServerStreaming
	// ClientStreaming is a stream of requests and one reply.
	ClientStreaming
	// BidiStreaming is a stream of requests and a stream of replies, both
	// open at once.
	BidiStreaming
)

// String returns "unary", "server_streaming", "client_streaming" or
// "bidi_streaming".
func (k StreamKind) String() string {
	switch k {
	case Unary:
		return "unary"
	case ServerStreaming:
		return "server_streaming"
	case ClientStreaming:
		return "client_streaming"
	case BidiStreaming:
		return "bidi_streaming"
	}
	return "unknown"
}

// ClientSends reports whether the caller sends a stream of messages
// (ClientStreaming, BidiStreaming).
func (k StreamKind) ClientSends() bool { return k == ClientStreaming || k == BidiStreaming }

// ServerSends reports whether the server sends a stream of messages
// (ServerStreaming, BidiStreaming).
func (k StreamKind) ServerSends() bool { return k == ServerStreaming || k == BidiStreaming }

// Stream is the message side of a streaming call as a server sees it. The
// transport puts it in Call.Stream before middleware runs; middleware may
// replace it with a wrapper (middleware.OnMessages) and the typed handler
// (server.HandleServerStream and its siblings) uses whatever is there when
// it runs.
//
// Recv and Send may be called from two goroutines at once (one each), not
// each from two.
type Stream interface {
	// Recv decodes the caller's next message into m, a pointer to the
	// endpoint's request type. It returns io.EOF once the caller closed
	// its side (at once on a server stream, whose one request the handler
	// got as its argument), and the call's error once it ended.
	Recv(m any) error
	// Send encodes m, a pointer to the endpoint's reply type, and sends
	// it. It blocks while the caller is not reading (flow control), so a
	// slow reader bounds what a writer holds, and fails once the call
	// ended — its context is done then.
	Send(m any) error
}

// ErrStreamClosed is returned by a client stream's Send after CloseSend or
// Close, and by its Recv after Close.
// It has the reason "STREAM_CLOSED", so errors.Is tells it from any other
// FailedPrecondition error.
var ErrStreamClosed = errs.New(errs.FailedPrecondition, "stream closed").WithReason("STREAM_CLOSED")

// Streamer is implemented by transport clients that open streams (every
// built-in transport client, and client.Client).
type Streamer interface {
	// NewStream opens a stream of kind to service/endpoint. The stream
	// lives until its last message was received, Close, or ctx ends;
	// ctx's deadline travels to the server as a unary call's does.
	NewStream(ctx context.Context, service, endpoint string, kind StreamKind) (ClientStream, error)
}

// ClientStream is the caller's side of an open stream.
//
// Send and CloseSend on one goroutine and Recv on another may run at once.
// Header, Trailer and Close may be called from any goroutine, also while
// Send or Recv runs; Close more than once.
type ClientStream interface {
	// Send encodes m and sends it (ClientStreaming and BidiStreaming only). It
	// blocks while the server is not reading. An error from Send means the
	// stream is over for sending — io.EOF when the server ended it (cleanly
	// or not), as in grpc-go: Recv returns how it ended.
	Send(m any) error
	// CloseSend says that no more messages follow.
	CloseSend() error
	// Recv decodes the next message from the server into m. It returns
	// io.EOF when the server ended the stream cleanly, and the call's
	// error (an *errs.Error) when it ended with one.
	Recv(m any) error
	// Header returns the reply metadata the server sent before its first
	// message; it is empty until the first Recv returned.
	Header() Metadata
	// Trailer returns the metadata the server sent when it ended the
	// stream; it is empty until Recv returned io.EOF or an error.
	Trailer() Metadata
	// Close ends the stream from the caller's side: the server sees its
	// context canceled, and later calls return ErrStreamClosed. It is
	// needed only when the caller stops before Recv returned io.EOF or an
	// error; calling it after that is harmless.
	Close() error
}

// StreamEndpoint names a streaming endpoint with its kind and its
// message types, so that registering and opening it are checked by the
// compiler (see Endpoint for the unary kind):
//
//	var Watch = transport.StreamEndpoint[WatchRequest, Event]{Service: "orders", Name: "Watch", Kind: transport.ServerStreaming}
//
//	st, err := Watch.OpenServer(ctx, c, &WatchRequest{Customer: "c-1"})
//	for ev, err := range st.All() { ... }
type StreamEndpoint[Req, Resp any] struct {
	Service string
	Name    string
	Kind    StreamKind
}

// String returns "service/Name".
func (e StreamEndpoint[Req, Resp]) String() string { return e.Service + "/" + e.Name }

// Open opens the stream through c, which must be a Streamer.
func (e StreamEndpoint[Req, Resp]) Open(ctx context.Context, c Client) (*TypedStream[Req, Resp], error) {
	return OpenStream[Req, Resp](ctx, c, e.Service, e.Name, e.Kind)
}

// OpenServer opens a server stream and sends its one request: what is left
// is to receive the replies.
func (e StreamEndpoint[Req, Resp]) OpenServer(ctx context.Context, c Client, req *Req) (*TypedStream[Req, Resp], error) {
	if e.Kind != ServerStreaming {
		return nil, errs.Newf(errs.InvalidArgument, "transport: %s is a %s endpoint, not a server stream", e, e.Kind)
	}
	st, err := e.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := st.Send(req); err != nil {
		return nil, errors.Join(err, st.Close())
	}
	if err := st.CloseSend(); err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return st, nil
}

// OpenStream opens a stream of kind to service/endpoint through c with
// typed messages — for names known only at run time; otherwise declare a
// StreamEndpoint.
func OpenStream[Req, Resp any](ctx context.Context, c Client, service, endpoint string, kind StreamKind) (*TypedStream[Req, Resp], error) {
	if kind == Unary {
		return nil, errs.Newf(errs.InvalidArgument, "transport: %s/%s: a unary endpoint is called, not opened as a stream", service, endpoint)
	}
	sc, ok := c.(Streamer)
	if !ok {
		return nil, errs.Newf(errs.Unimplemented, "transport: client %T does not open streams", c)
	}
	cs, err := sc.NewStream(ctx, service, endpoint, kind)
	if err != nil {
		return nil, err
	}
	return &TypedStream[Req, Resp]{cs: cs}, nil
}

// TypedStream is a ClientStream with typed messages.
type TypedStream[Req, Resp any] struct {
	cs ClientStream
}

// Send sends one request message.
func (s *TypedStream[Req, Resp]) Send(m *Req) error { return s.cs.Send(m) }

// CloseSend says no more requests follow.
func (s *TypedStream[Req, Resp]) CloseSend() error { return s.cs.CloseSend() }

// Recv returns the next reply, io.EOF after the last one, or the error
// the stream ended with.
func (s *TypedStream[Req, Resp]) Recv() (*Resp, error) {
	m := new(Resp)
	if err := s.cs.Recv(m); err != nil {
		return nil, err
	}
	return m, nil
}

// CloseAndRecv ends the requests of a client stream and returns its one
// reply.
func (s *TypedStream[Req, Resp]) CloseAndRecv() (*Resp, error) {
	if err := s.cs.CloseSend(); err != nil {
		return nil, errors.Join(err, s.cs.Close())
	}
	m, err := s.Recv()
	if err != nil {
		if err == io.EOF {
			err = errs.New(errs.Internal, "stream ended without its reply")
		}
		_ = s.cs.Close()
		return nil, err
	}
	// The one reply is the last: wait for the clean end, so the trailer
	// is there and the stream's resources are gone.
	if err := s.cs.Recv(new(Resp)); err != io.EOF {
		_ = s.cs.Close()
		if err == nil {
			err = errs.New(errs.Internal, "client stream answered more than one reply")
		}
		return nil, err
	}
	return m, nil
}

// All yields the replies in order until the stream ends; a failed end is
// yielded as the last pair's error (a clean end yields nothing more).
// Breaking out of the loop closes the stream.
func (s *TypedStream[Req, Resp]) All() iter.Seq2[*Resp, error] {
	return func(yield func(*Resp, error) bool) {
		for {
			m, err := s.Recv()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(m, nil) {
				_ = s.cs.Close()
				return
			}
		}
	}
}

// Header returns the reply metadata sent before the first reply.
func (s *TypedStream[Req, Resp]) Header() Metadata { return s.cs.Header() }

// Trailer returns the metadata sent with the end of the stream.
func (s *TypedStream[Req, Resp]) Trailer() Metadata { return s.cs.Trailer() }

// Close ends the stream early (see ClientStream.Close).
func (s *TypedStream[Req, Resp]) Close() error { return s.cs.Close() }

// Raw returns the untyped stream underneath.
func (s *TypedStream[Req, Resp]) Raw() ClientStream { return s.cs }
