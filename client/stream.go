package client

import (
	"context"
	"io"
	"strings"
	"sync"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
)

var _ transport.Streamer = (*Client)(nil)

// maxStreamOpens bounds the instances NewStream tries when opening fails.
const maxStreamOpens = 3

// NewStream opens a stream to endpoint of service on an instance the
// client selects, over the transport it prefers, as Invoke picks one
// (WithCallTransport pins it). Selection happens once, at open: when
// opening fails with Unavailable (the instance is gone or unreachable) it
// tries up to two other picks; once the stream is open it is never retried
// — a stream's messages cannot be replayed safely — and its errors come to
// the caller. The client's middleware runs once for the stream, inside the
// transport client. A stream has no default deadline: it lives until ctx
// ends, it ends, or Close. An open stream counts as load on its instance
// until it ends, and an end with Unavailable or Internal counts against
// the instance's health as a failed call does.
func (c *Client) NewStream(ctx context.Context, service, endpoint string, kind transport.StreamKind) (transport.ClientStream, error) {
	if c.closed.Load() {
		return nil, errs.New(errs.FailedPrecondition, "client: closed")
	}
	if service == "" || endpoint == "" {
		return nil, errs.Newf(errs.InvalidArgument, "client: empty service or endpoint name (%q/%q)", service, endpoint)
	}
	if strings.Contains(service, ".") {
		return nil, errs.Newf(errs.InvalidArgument, "client: service %q is a fully qualified gRPC service name, which no registry lists: "+
			"open it with transport/grpc's Client at its address", errs.Clip(service))
	}
	s, err := c.service(ctx, service)
	if err != nil {
		return nil, err
	}
	pin, _ := ctx.Value(pinKey{}).(transport.Kind)
	var last error
	for range maxStreamOpens {
		in, done, err := s.pick(nil, pin)
		if err != nil {
			return nil, err
		}
		var tc transport.Client = c.nats
		if in != nil {
			if tc, err = in.client(); err != nil {
				s.release(in, done, err)
				last = err
				continue
			}
		}
		sc, ok := tc.(transport.Streamer)
		if !ok {
			err := errs.Newf(errs.Unimplemented, "client: the %T client of service %q does not open streams", tc, service)
			if in != nil {
				s.release(in, done, nil)
			}
			return nil, err
		}
		cs, err := sc.NewStream(ctx, service, endpoint, kind)
		if err != nil {
			if in != nil {
				s.release(in, done, err)
			}
			if errs.CodeOf(err) != errs.Unavailable || ctx.Err() != nil {
				return nil, err
			}
			last = err
			continue
		}
		if in == nil {
			return cs, nil // NATS: the subject is the balancer
		}
		h := &heldStream{ClientStream: cs, end: func(err error) { s.release(in, done, err) }}
		// A caller that abandons the stream when ctx ends, without a last
		// Recv or Close, still gives the instance back.
		h.stop = context.AfterFunc(ctx, func() { h.finish(errs.FromError(ctx.Err())) })
		return h, nil
	}
	return nil, last
}

// heldStream releases its instance when the stream ends.
type heldStream struct {
	transport.ClientStream
	once sync.Once
	end  func(error)
	stop func() bool // stops the AfterFunc
}

func (h *heldStream) finish(err error) {
	h.once.Do(func() {
		if h.stop != nil {
			h.stop()
		}
		h.end(err)
	})
}

func (h *heldStream) Recv(m any) error {
	err := h.ClientStream.Recv(m)
	switch {
	case err == io.EOF:
		h.finish(nil)
	case err != nil:
		h.finish(err)
	}
	return err
}

func (h *heldStream) Close() error {
	err := h.ClientStream.Close()
	h.finish(errs.New(errs.Canceled, "stream closed by the caller"))
	return err
}
