package grpc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	"github.com/ferry-go/ferry/transport/callkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Streams are gRPC streams: grpc-go's flow control (a Send blocks while the
// caller's window is full), cancellation, deadlines (grpc-timeout; a stream
// opened without one has none, unlike a unary call, which gets the
// server's default) and trailers.

// streamDesc describes a streaming endpoint to grpc-go.
func (t *Server) streamDesc(s *server.Server, ep *server.Endpoint, fullMethod string) grpc.StreamDesc {
	return grpc.StreamDesc{
		StreamName:    ep.Name,
		Handler:       t.streamHandler(s, ep, fullMethod),
		ServerStreams: ep.Kind.ServerSends(),
		ClientStreams: ep.Kind.ClientSends(),
	}
}

func (t *Server) streamHandler(s *server.Server, ep *server.Endpoint, fullMethod string) grpc.StreamHandler {
	h := ep.Handler
	name := s.Name()
	logger := s.Logger()
	tlsOn := t.cfg.tls != nil
	jsonDec := s.JSON()
	defTimeout := t.cfg.defaultTimeout
	return func(_ any, ss grpc.ServerStream) error {
		ctx := ss.Context()
		st := &serverStream{ss: ss, s: s, defTimeout: defTimeout, json: isJSON(ctx), jsonDec: jsonDec, logger: logger, endpoint: ep.Name, kind: ep.Kind}
		st.in.ctx = ctx
		st.call = transport.Call{
			Service:    name,
			Endpoint:   ep.Name,
			Kind:       transport.GRPC,
			Request:    &st.in,
			Reply:      &st.out,
			Method:     fullMethod,
			TLS:        tlsOn,
			StreamKind: ep.Kind,
			Stream:     st,
		}
		setPeer(ctx, &st.call)
		st.call.Deadline, _ = ctx.Deadline()
		var req any
		if ep.Kind == transport.ServerStreaming {
			// The one request, decoded before middleware runs, as a unary
			// call's is.
			req = ep.NewRequest()
			if err := st.recv(req); err != nil {
				if err == io.EOF {
					err = errs.New(errs.InvalidArgument, "server stream opened without its request")
				}
				return statusError(err)
			}
			st.eof.Store(true)
		}
		resp, err := h(transport.NewCallContext(ctx, &st.call), req)
		st.mu.Lock()
		defer st.mu.Unlock()
		st.ended = true
		if err == nil && ep.Kind == transport.ClientStreaming {
			err = st.sendLocked(resp)
		}
		st.headerLocked()
		if len(st.call.Trailer) > 0 {
			ss.SetTrailer(validMetadata(logger, ep.Name, st.call.Trailer))
		}
		if err != nil {
			return statusError(err)
		}
		return nil
	}
}

// serverStream is the transport.Stream of a served gRPC stream.
type serverStream struct {
	ss         grpc.ServerStream
	s          *server.Server
	defTimeout time.Duration
	call       transport.Call
	in         incoming
	out        transport.LazyMetadata
	json       bool
	jsonDec    codec.Codec
	logger     *slog.Logger
	endpoint   string
	kind       transport.StreamKind
	eof        atomic.Bool // a server stream's one request was read

	mu         sync.Mutex // Send against the end of the handler
	headerSent bool
	ended      bool
}

func (st *serverStream) Recv(m any) error {
	if st.eof.Load() {
		return io.EOF
	}
	return st.recv(m)
}

// recv reads the next message's bytes and decodes them as a unary
// request is, admitted as one (server.Admit, weighed by its size) for its
// decoding only: a stream does not hold a slot for its life, so open
// streams never starve unary calls (MaxConcurrentStreams bounds them per
// connection). Waiting for room is bounded by the default timeout, also
// on a stream without a deadline.
func (st *serverStream) recv(m any) error {
	var f frame
	if err := st.ss.RecvMsg(&f); err != nil {
		if err == io.EOF {
			return io.EOF
		}
		return fromStatus(err)
	}
	size := int64(f.data.Len())
	actx, cancel := context.WithTimeout(st.ss.Context(), st.defTimeout)
	err := st.s.Admit(actx, size)
	cancel()
	if err != nil {
		f.data.Free()
		return err
	}
	defer st.s.Release(size)
	if st.json {
		err = decodeJSON(st.jsonDec, f.data, m)
	} else {
		err = unmarshal(f.data, m)
	}
	f.data.Free()
	if err != nil {
		return errs.FromError(fromStatus(badRequest(err)))
	}
	return nil
}

func (st *serverStream) Send(m any) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return errs.Newf(errs.FailedPrecondition, "endpoint %s: Send after the stream's handler returned", st.endpoint)
	}
	return st.sendLocked(m)
}

func (st *serverStream) sendLocked(m any) error {
	st.headerLocked()
	if st.json {
		var err error
		if m, err = encodeJSON(st.ss.Context(), st.logger, st.endpoint, m); err != nil {
			return fromStatus(err)
		}
	}
	if err := st.ss.SendMsg(m); err != nil {
		if err == io.EOF {
			err = errs.New(errs.Canceled, "the caller ended the stream")
		}
		if c := st.ss.Context().Err(); c != nil {
			return errs.FromError(c)
		}
		return errs.FromError(fromStatus(err))
	}
	return nil
}

// headerLocked sends the reply metadata the handler set, once, before the
// first message (or with the trailer).
func (st *serverStream) headerLocked() {
	if st.headerSent {
		return
	}
	st.headerSent = true
	if len(st.out.MD) > 0 {
		_ = st.ss.SetHeader(validMetadata(st.logger, st.endpoint, st.out.MD))
	}
}

// NewStream opens a stream to endpoint of service (implementing
// transport.Streamer); a service name with a '.' is a full gRPC service
// name, as for Invoke. Messages are plain structs or generated messages;
// the stream runs through the client's middleware once (callkit).
func (c *Client) NewStream(ctx context.Context, service, endpoint string, kind transport.StreamKind) (transport.ClientStream, error) {
	method := c.method(service, endpoint)
	w := callkit.Wire{Peer: c.peer, Method: method, TLS: c.tls}
	return c.pipe.OpenStream(ctx, service, endpoint, w, kind, func(ctx context.Context, call *transport.Call) (transport.ClientStream, error) {
		desc := &grpc.StreamDesc{StreamName: endpoint, ServerStreams: kind.ServerSends(), ClientStreams: kind.ClientSends()}
		sctx, cancel := context.WithCancel(outgoingContext(ctx, call.Request))
		cs, err := c.cc.NewStream(sctx, desc, method, c.opts...)
		if err != nil {
			cancel()
			return nil, fromStatus(err)
		}
		return &clientStream{cs: cs, cancel: cancel}, nil
	})
}

var _ transport.Streamer = (*Client)(nil)

// clientStream is a transport.ClientStream over a grpc.ClientStream.
type clientStream struct {
	cs     grpc.ClientStream
	cancel context.CancelFunc

	sendClosed atomic.Bool
	closed     atomic.Bool

	mu      sync.Mutex
	header  transport.Metadata
	trailer transport.Metadata
}

func (s *clientStream) Send(m any) error {
	if s.sendClosed.Load() || s.closed.Load() {
		return transport.ErrStreamClosed
	}
	err := s.cs.SendMsg(m)
	if err == nil || err == io.EOF { // io.EOF: the stream broke, Recv says why
		return err
	}
	return fromStatus(err)
}

func (s *clientStream) CloseSend() error {
	if s.closed.Load() {
		return transport.ErrStreamClosed
	}
	s.sendClosed.Store(true)
	return fromStatus(s.cs.CloseSend())
}

func (s *clientStream) Recv(m any) error {
	if s.closed.Load() {
		return transport.ErrStreamClosed
	}
	err := s.cs.RecvMsg(m)
	s.mu.Lock()
	if s.header == nil {
		if md, herr := s.cs.Header(); herr == nil {
			s.header = transport.Metadata(md)
		}
	}
	s.mu.Unlock()
	if err == nil {
		return nil
	}
	s.mu.Lock()
	s.trailer = transport.Metadata(s.cs.Trailer())
	s.mu.Unlock()
	s.cancel() // the stream is over: release its context
	if err == io.EOF {
		return io.EOF
	}
	if errors.Is(err, context.Canceled) && s.closed.Load() {
		return transport.ErrStreamClosed
	}
	return fromStatus(err)
}

func (s *clientStream) Header() transport.Metadata {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyMD(s.header)
}

func (s *clientStream) Trailer() transport.Metadata {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyMD(s.trailer)
}

func copyMD(md transport.Metadata) transport.Metadata {
	if md == nil {
		return transport.Metadata{}
	}
	return transport.Metadata(metadata.MD(md).Copy())
}

func (s *clientStream) Close() error {
	s.closed.Store(true)
	s.cancel()
	return nil
}
