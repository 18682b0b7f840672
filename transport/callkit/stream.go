package callkit

import (
	"context"
	"io"
	"sync"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
)

// Open opens a stream on the wire: it sends call.Request as metadata and
// the context's deadline, and returns the stream once the transport has
// opened it. The stream must end when ctx does.
type Open func(ctx context.Context, call *transport.Call) (transport.ClientStream, error)

// OpenStream opens a stream of kind to service/endpoint with open, through
// the pipeline. The middleware runs once for the whole stream, as a
// server's does: it sees the stream open when it is called (with a nil
// request) and its end when its next returns — the error the stream ended
// with, nil for a clean end — so a span or a log line covers the stream's
// life. Meanwhile the caller has the stream: OpenStream returns as soon as
// open did (or the middleware refused).
//
// While the stream is open, Call.Stream in the middleware's context is it
// (on a client, nil before that); retrying middleware must not run its
// next again then (middleware.Retry does not): a stream is never retried
// after it opened. Without middleware, no goroutine is started.
//
// Errors of Recv and Send are *errs.Error values marked as received from
// service/endpoint (Received); io.EOF is a clean end.
func (p *Pipeline) OpenStream(ctx context.Context, service, endpoint string, w Wire, kind transport.StreamKind, open Open) (transport.ClientStream, error) {
	st := &streamState{open: open, ready: make(chan struct{})}
	parent := p.newCall(ctx, &st.call, service, endpoint, w)
	st.call.StreamKind = kind
	ctx = context.WithValue(transport.NewCallContext(ctx, &st.call), streamKey{}, st)
	if p.bare {
		cs, err := open(ctx, &st.call)
		if err != nil {
			return nil, Received(err, service, endpoint)
		}
		st.ts = newTracked(cs, service, endpoint, parent)
		return st.ts, nil
	}
	go func() {
		_, err := p.sh(ctx, nil)
		st.once.Do(func() { st.err = err; close(st.ready) })
	}()
	<-st.ready
	if st.ts == nil {
		if st.err == nil {
			st.err = errs.Newf(errs.Internal, "%s client: middleware ended the stream to %s/%s without opening it", p.kind, service, endpoint)
		}
		return nil, Received(st.err, service, endpoint)
	}
	return st.ts, nil
}

type streamKey struct{}

type streamState struct {
	call  transport.Call
	open  Open
	once  sync.Once
	ready chan struct{} // closed when ts is set or the chain failed
	err   error         // the chain's error, when it failed before opening
	ts    *tracked
}

// streamTerminal ends the chain of a stream: it opens the stream, hands it
// to the caller and waits for its end.
func (p *Pipeline) streamTerminal(ctx context.Context, _ any) (any, error) {
	st, ok := ctx.Value(streamKey{}).(*streamState)
	if !ok {
		return nil, errs.Newf(errs.Internal, "%s client: middleware replaced the stream's context", p.kind)
	}
	if st.ts != nil { // a retrying middleware came back: never reopen
		return nil, st.ts.endErr()
	}
	cs, err := st.open(ctx, &st.call)
	if err != nil {
		return nil, err
	}
	parent, _ := ctx.Value(parentKey{}).(*transport.Call)
	ts := newTracked(cs, st.call.Service, st.call.Endpoint, parent)
	st.call.Stream = ts
	st.once.Do(func() { st.ts = ts; close(st.ready) })
	select {
	case <-ts.done:
	case <-ctx.Done():
		ts.end(ctx.Err())
	}
	st.call.Reply, st.call.Trailer = cs.Header(), cs.Trailer()
	return nil, ts.endErr()
}

// tracked is the stream the caller gets: it maps errors and tells the
// middleware's goroutine when the stream ended.
type tracked struct {
	cs                transport.ClientStream
	service, endpoint string
	parent            *transport.Call

	once sync.Once
	done chan struct{}
	err  error // nil for a clean end
}

func newTracked(cs transport.ClientStream, service, endpoint string, parent *transport.Call) *tracked {
	return &tracked{cs: cs, service: service, endpoint: endpoint, parent: parent, done: make(chan struct{})}
}

func (t *tracked) end(err error) {
	t.once.Do(func() {
		t.err = err
		if t.parent != nil {
			t.parent.Reply, t.parent.Trailer = t.cs.Header(), t.cs.Trailer()
		}
		close(t.done)
	})
}

func (t *tracked) endErr() error {
	<-t.done
	return t.err
}

func (t *tracked) Send(m any) error {
	return t.mapErr(t.cs.Send(m))
}

func (t *tracked) CloseSend() error { return t.mapErr(t.cs.CloseSend()) }

// mapErr marks a transport's error as received from the call, leaving
// io.EOF (a Send's way of saying the stream broke: Recv has why) and
// transport.ErrStreamClosed as they are.
func (t *tracked) mapErr(err error) error {
	if err == nil || err == io.EOF || err == transport.ErrStreamClosed {
		return err
	}
	return Received(err, t.service, t.endpoint)
}

func (t *tracked) Recv(m any) error {
	err := t.cs.Recv(m)
	switch err {
	case nil:
		return nil
	case io.EOF:
		t.end(nil)
		return io.EOF
	}
	err = t.mapErr(err)
	t.end(err)
	return err
}

func (t *tracked) Header() transport.Metadata  { return t.cs.Header() }
func (t *tracked) Trailer() transport.Metadata { return t.cs.Trailer() }

func (t *tracked) Close() error {
	err := t.cs.Close()
	t.end(errs.New(errs.Canceled, "stream closed by the caller"))
	return err
}
