package nats

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
	"github.com/ferry-go/ferry/transport/callkit"
	"github.com/nats-io/nats.go"
)

// WithClientStreamWindow sets how many messages a server may send on a
// stream ahead of what the caller has received (default
// DefaultStreamWindow, 64; n <= 0 keeps it).
func WithClientStreamWindow(n int) ClientOption {
	return func(c *Client) {
		if n > 0 {
			c.window = min(n, maxCredit)
		}
	}
}

// WithClientHeartbeat sets the heartbeat interval of the client's streams
// (default DefaultHeartbeat, 5s; d <= 0 keeps it): a stream that sent
// nothing for d sends a ping, and a server that hears nothing for
// HeartbeatMisses intervals takes the caller for gone.
func WithClientHeartbeat(d time.Duration) ClientOption {
	return func(c *Client) {
		if d > 0 {
			c.heartbeat = min(max(d, time.Millisecond), maxHeartbeat)
		}
	}
}

// WithMaxStreamMessageBytes bounds a message the client receives on a
// stream (default DefaultMaxStreamMessageBytes, 4 MiB, or the connection's
// max payload if larger; n <= 0 keeps it). A larger one ends the stream
// with ResourceExhausted.
func WithMaxStreamMessageBytes(n int) ClientOption {
	return func(c *Client) {
		if n > 0 {
			c.maxMsg = n
		}
	}
}

var _ transport.Streamer = (*Client)(nil)

// NewStream implements transport.Streamer: it opens a stream of kind to
// service/endpoint with Ferry's stream protocol (see Streams in the
// package doc), through the client's middleware, which runs once for the
// stream. The stream has the deadline of ctx, none if ctx has none, and
// ends when ctx does. A client-sending stream (client, bidi) is opened at
// once; a server stream when its one request is sent (Send, or CloseSend
// for an empty request).
func (c *Client) NewStream(ctx context.Context, service, endpoint string, kind transport.StreamKind) (transport.ClientStream, error) {
	if kind == transport.Unary || kind > transport.BidiStreaming {
		return nil, errs.Newf(errs.InvalidArgument, "nats client: %s/%s: kind %s is not a stream", service, endpoint, kind)
	}
	w := callkit.Wire{Peer: c.nc.ConnectedAddr(), Method: service + "." + endpoint, TLS: c.tls}
	return c.pipe.OpenStream(ctx, service, endpoint, w, kind, c.openStream)
}

// streamMux is a Client's one subscription for the frames of all its
// streams, <inbox>.*, routed to the stream by the subject's last token.
type streamMux struct {
	prefix string // "<inbox>."
	sub    *nats.Subscription
	clock  clock

	mu      sync.Mutex
	streams map[string]*cstream
	next    uint64
}

// mux returns the client's stream subscription, subscribing it the first
// time; the round trip makes sure the NATS server has it before an open
// goes out.
func (c *Client) mux(ctx context.Context) (*streamMux, error) {
	c.muxMu.Lock()
	defer c.muxMu.Unlock()
	if m := c.streamMux; m != nil && m.sub.IsValid() {
		return m, nil
	}
	m := &streamMux{prefix: c.nc.NewInbox() + ".", clock: clock{epoch: time.Now()}, streams: make(map[string]*cstream)}
	sub, err := c.nc.Subscribe(m.prefix+"*", m.route)
	if err != nil {
		return nil, errs.Newf(errs.Unavailable, "nats client: subscribe the stream inbox: %v", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if err := c.nc.FlushWithContext(ctx); err != nil {
		_ = sub.Unsubscribe()
		return nil, errs.FromError(c.requestError(m.prefix+"*", 0, err))
	}
	m.sub = sub
	c.streamMux = m
	return m, nil
}

func (m *streamMux) route(msg *nats.Msg) {
	if len(msg.Subject) <= len(m.prefix) {
		return
	}
	m.mu.Lock()
	cs := m.streams[msg.Subject[len(m.prefix):]]
	m.mu.Unlock()
	if cs != nil {
		cs.onFrame(msg)
	}
}

// newID returns the last token of a new stream's inbox.
func (m *streamMux) newID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	return strconv.FormatUint(m.next, 10)
}

func (m *streamMux) add(cs *cstream) {
	m.mu.Lock()
	m.streams[cs.id] = cs
	m.mu.Unlock()
}

func (m *streamMux) remove(cs *cstream) {
	m.mu.Lock()
	delete(m.streams, cs.id)
	m.mu.Unlock()
}

// closeStreams ends the client's streams and drops its subscription
// (Client.Close).
func (c *Client) closeStreams() {
	c.muxMu.Lock()
	m := c.streamMux
	c.streamMux = nil
	c.muxMu.Unlock()
	if m == nil {
		return
	}
	m.mu.Lock()
	open := make([]*cstream, 0, len(m.streams))
	for _, cs := range m.streams {
		open = append(open, cs)
	}
	m.mu.Unlock()
	for _, cs := range open {
		cs.stop(errs.New(errs.Canceled, "the client was closed"), true)
		cs.mu.Lock()
		cs.forgetLocked() // one waiting for its accept to cancel it waits no more
		cs.mu.Unlock()
	}
	_ = m.sub.Unsubscribe()
}

// cstream is one stream as the caller sees it.
type cstream struct {
	c       *Client
	m       *streamMux
	id      string
	kind    transport.StreamKind
	subject string
	ctx     context.Context
	stopCtx func() bool
	openHdr nats.Header // the open's headers, its deadline added when it goes
	maxMsg  int

	out outbound

	sendWake, recvWake chan struct{}

	mu         sync.Mutex
	opened     bool // the open went out
	openedAt   int64
	accepted   bool
	peerHB     time.Duration
	seqIn      uint64
	credit     int64 // messages the server lets us send
	in         inq
	sendClosed bool
	gotHeader  bool
	header     transport.Metadata
	trailer    transport.Metadata
	end        error // the server's end: io.EOF or an *errs.Error, after the messages before it
	abort      error // a local end, returned at once
	closing    bool  // ended before the accept came: cancel it when it does
	lastHeard  int64
	timer      *time.Timer
	gone       bool // out of the mux: no more frames
}

// openStream ends the client pipeline of NewStream.
func (c *Client) openStream(ctx context.Context, call *transport.Call) (transport.ClientStream, error) {
	if err := checkToken("service", call.Service); err != nil {
		return nil, err
	}
	if err := checkToken("endpoint", call.Endpoint); err != nil {
		return nil, err
	}
	subject := call.Method
	if !isSubject(subject, call.Service, call.Endpoint) {
		subject = call.Service + "." + call.Endpoint
	}
	m, err := c.mux(ctx)
	if err != nil {
		return nil, err
	}
	cs := &cstream{
		c: c, m: m, kind: call.StreamKind, subject: subject, ctx: ctx,
		maxMsg:   c.maxMsg,
		in:       newInq(c.window),
		sendWake: make(chan struct{}, 1),
		recvWake: make(chan struct{}, 1),
	}
	if cs.maxMsg == 0 {
		cs.maxMsg = max(DefaultMaxStreamMessageBytes, int(c.nc.MaxPayload()))
	}
	h := metadataHeader(call.Request, 5)
	h[StreamHeader] = []string{call.StreamKind.String()}
	h[CreditHeader] = []string{strconv.Itoa(c.window)}
	h[HeartbeatHeader] = []string{strconv.FormatInt(c.heartbeat.Milliseconds(), 10)}
	if !c.json {
		h[contentTypeHeader] = []string{c.codec.ContentType()}
	}
	cs.openHdr = h
	cs.id = m.newID()
	cs.out = outbound{nc: c.nc, clock: m.clock, self: m.prefix + cs.id}
	m.add(cs)
	cs.mu.Lock()
	cs.stopCtx = context.AfterFunc(ctx, func() { cs.stop(ctxError(ctx, subject), true) })
	cs.mu.Unlock()
	if call.StreamKind != transport.ServerStreaming {
		if err := cs.publishOpen(nil); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

// ctxError is the error a stream ends with when its context does.
func ctxError(ctx context.Context, subject string) *errs.Error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errs.Newf(errs.DeadlineExceeded, "stream to %s: deadline exceeded", subject)
	}
	return errs.Newf(errs.Canceled, "stream to %s canceled: %v", subject, ctx.Err())
}

// publishOpen sends the open with body data (a server stream's request)
// and starts the stream's timer.
func (cs *cstream) publishOpen(data []byte) error {
	h := cs.openHdr
	if d, ok := cs.ctx.Deadline(); ok {
		h[TimeoutHeader] = []string{formatTimeout(time.Until(d))}
	}
	cs.mu.Lock()
	if cs.abort != nil { // the context ended first
		err := cs.abort
		cs.mu.Unlock()
		return err
	}
	cs.opened = true
	cs.openedAt = cs.m.clock.now()
	cs.lastHeard = cs.openedAt
	cs.timer = time.AfterFunc(cs.c.heartbeat/2, cs.tick)
	cs.mu.Unlock()
	err := cs.c.nc.PublishMsg(&nats.Msg{Subject: cs.subject, Reply: cs.out.self, Header: h, Data: data})
	if err != nil {
		e := cs.sendError(len(data), err)
		cs.stop(e, false)
		return e
	}
	return nil
}

// sendError maps a failure to publish a frame of size bytes.
func (cs *cstream) sendError(size int, err error) *errs.Error {
	var e *errs.Error
	if errors.As(err, &e) {
		return e
	}
	return cs.c.requestError(cs.subject, size, err)
}

// onFrame takes one frame from the server. It never blocks.
func (cs *cstream) onFrame(msg *nats.Msg) {
	cs.mu.Lock()
	if cs.gone {
		cs.mu.Unlock()
		return
	}
	if cs.abort != nil {
		// Ended here before the accept came: cancel it once it does.
		f, _ := parseFrame(msg.Header)
		switch {
		case f.kind == frameAccept && msg.Reply != "":
			cs.out.setPeer(msg.Reply)
			cs.forgetLocked()
			cs.mu.Unlock()
			_ = cs.out.sendLast(frameCancel, nil, nil)
			return
		case f.kind == frameNone, f.kind == frameEnd, f.kind == frameError:
			cs.forgetLocked()
		}
		cs.mu.Unlock()
		return
	}
	if isNoResponders(msg) {
		e := errs.Newf(errs.Unavailable, "no responders for %s", cs.subject)
		if cs.accepted {
			e = errs.Newf(errs.Unavailable, "stream to %s: the server is gone (its stream inbox has no subscriber)", cs.subject)
		}
		cs.mu.Unlock()
		cs.stop(e, false)
		return
	}
	if cs.accepted && msg.Reply != cs.out.peer {
		cs.mu.Unlock()
		return // not the server's: its frames carry its inbox
	}
	cs.lastHeard = cs.m.clock.now()
	f, perr := parseFrame(msg.Header)
	if perr == nil && f.kind == frameNone && !cs.accepted && cs.seqIn == 0 {
		// A plain reply to the open: the refusal a unary request would
		// get (overloaded, stopping), or an endpoint that is not a stream.
		e := replyError(msg.Header, msg.Data)
		if e == nil {
			e = errs.Newf(errs.Internal, "%s answered the open with a plain reply, not a stream: is it a unary endpoint of a server without streams?", cs.subject)
		}
		cs.endLocked(e, nil)
		cs.mu.Unlock()
		return
	}
	if perr != nil {
		cs.mu.Unlock()
		cs.malformed(errs.FromError(perr).Message())
		return
	}
	if f.kind == frameNone {
		cs.mu.Unlock()
		cs.malformed("frame without header " + FrameHeader)
		return
	}
	if f.seq != cs.seqIn+1 {
		cs.mu.Unlock()
		cs.stop(errs.Newf(errs.Unavailable, "stream to %s broken: the server's frame %d arrived where %d was due (frames were lost)", cs.subject, f.seq, cs.seqIn+1), true)
		return
	}
	cs.seqIn = f.seq
	if !cs.accepted && f.kind != frameAccept && f.kind != frameError {
		cs.mu.Unlock()
		cs.malformed(f.kind.String() + " frame before the accept")
		return
	}
	var bad string
	switch f.kind {
	case frameAccept:
		switch {
		case cs.accepted:
			bad = "a second accept frame"
		case msg.Reply == "":
			bad = "accept frame without a reply subject"
		case cs.kind.ClientSends() && f.credit == 0:
			bad = "accept frame of a " + cs.kind.String() + " stream without header " + CreditHeader
		}
		if bad != "" {
			break
		}
		cs.accepted = true
		cs.peerHB = f.heartbeat
		cs.credit = f.credit
		cs.out.setPeer(msg.Reply)
		if cs.closing {
			cs.forgetLocked()
			cs.mu.Unlock()
			_ = cs.out.sendLast(frameCancel, nil, nil)
			return
		}
		wake(cs.sendWake)
	case frameMsg, frameChunk:
		if !cs.gotHeader {
			cs.gotHeader = true
			cs.header = frameMetadata(msg.Header)
		}
		if e := cs.in.add(f, msg.Data, cs.maxMsg); e != nil {
			if e.Code() == errs.InvalidArgument {
				bad = e.Message()
				break
			}
			cs.mu.Unlock()
			cs.stop(errs.Newf(e.Code(), "stream from %s: %s (WithMaxStreamMessageBytes)", cs.subject, e.Message()), true)
			return
		}
		wake(cs.recvWake)
	case frameHeader:
		if cs.gotHeader {
			bad = "header frame after the reply metadata came"
			break
		}
		cs.gotHeader = true
		cs.header = frameMetadata(msg.Header)
	case frameCredit:
		if !cs.kind.ClientSends() {
			bad = "credit frame on a server stream"
			break
		}
		cs.credit = min(cs.credit+f.credit, maxCredit)
		wake(cs.sendWake)
	case frameEnd:
		if cs.in.chunked {
			bad = "end frame inside a chunked message"
			break
		}
		cs.endLocked(io.EOF, frameMetadata(msg.Header))
	case frameError:
		e := replyError(msg.Header, msg.Data)
		if e == nil {
			bad = "error frame without error headers"
			break
		}
		cs.endLocked(e, frameMetadata(msg.Header))
	case framePing:
	default:
		bad = f.kind.String() + " frame, which servers do not send"
	}
	cs.mu.Unlock()
	if bad != "" {
		cs.malformed(bad)
	}
}

// malformed ends the stream for a frame that breaks the protocol.
func (cs *cstream) malformed(what string) {
	cs.stop(errs.Newf(errs.Internal, "malformed frame from %s: %s", cs.subject, what), true)
}

// endLocked records the server's end of the stream: Recv returns end
// once the messages before it are taken. cs.mu is held.
func (cs *cstream) endLocked(end error, trailer transport.Metadata) {
	if cs.end != nil || cs.abort != nil {
		return
	}
	cs.end, cs.trailer = end, trailer
	cs.forgetLocked()
	wake(cs.recvWake)
	wake(cs.sendWake)
}

// forgetLocked takes the stream out of the mux and stops its timer.
// cs.mu is held.
func (cs *cstream) forgetLocked() {
	if cs.gone {
		return
	}
	cs.gone = true
	if cs.timer != nil {
		cs.timer.Stop()
	}
	cs.m.remove(cs)
}

// stop ends the stream from this side with err, which Recv and Send return
// from now on. tell says whether to cancel the stream at the server (when
// it has not ended it itself).
func (cs *cstream) stop(err error, tell bool) {
	cs.mu.Lock()
	if cs.abort != nil {
		cs.mu.Unlock()
		return
	}
	cs.abort = err
	tell = tell && cs.end == nil && cs.opened && !cs.gone
	accepted := cs.accepted
	if tell && !accepted {
		cs.closing = true // cancel when the accept comes (or the open times out)
	} else {
		cs.forgetLocked()
	}
	wake(cs.recvWake)
	wake(cs.sendWake)
	stopCtx := cs.stopCtx
	cs.mu.Unlock()
	if tell && accepted {
		_ = cs.out.sendLast(frameCancel, nil, nil)
	}
	if stopCtx != nil {
		stopCtx()
	}
}

// tick runs every half heartbeat: it waits for the accept for the client's
// timeout, pings the server when the stream has been silent for a
// heartbeat, and ends a stream whose server has been silent for
// HeartbeatMisses of its heartbeats.
func (cs *cstream) tick() {
	c := cs.c
	cs.mu.Lock()
	if cs.gone {
		cs.mu.Unlock()
		return
	}
	now := cs.m.clock.now()
	silent := time.Duration(now - cs.lastHeard)
	accepted, closing, peerHB := cs.accepted, cs.closing, cs.peerHB
	if !accepted && closing && time.Duration(now-cs.openedAt) >= c.timeout {
		cs.forgetLocked()
		cs.mu.Unlock()
		return
	}
	cs.mu.Unlock()
	switch {
	case c.nc.IsClosed():
		cs.stop(errs.Newf(errs.Unavailable, "stream to %s: the NATS connection is closed", cs.subject), false)
	case !accepted:
		if time.Duration(now-cs.openedAt) >= c.timeout {
			cs.stop(errs.Newf(errs.DeadlineExceeded, "stream to %s: no answer to the open within %v", cs.subject, c.timeout), false)
		}
	case peerHB > 0 && silent >= HeartbeatMisses*peerHB:
		cs.stop(errs.Newf(errs.Unavailable, "stream to %s: the server is gone: nothing heard from it for %v", cs.subject, silent.Round(time.Millisecond)), true)
	case time.Duration(now-cs.out.lastSent.Load()) >= c.heartbeat:
		_ = cs.out.send(framePing, nil, nil)
	}
	cs.mu.Lock()
	if !cs.gone {
		cs.timer.Reset(c.heartbeat / 2)
	}
	cs.mu.Unlock()
}

// Send implements transport.ClientStream.
func (cs *cstream) Send(m any) error {
	if cs.kind == transport.ServerStreaming {
		return cs.sendRequest(m)
	}
	cs.mu.Lock()
	if err := cs.sendState(); err != nil {
		cs.mu.Unlock()
		return err
	}
	cs.mu.Unlock()
	data, err := cs.c.codec.Marshal(m)
	if err != nil {
		return errs.Newf(errs.InvalidArgument, "encode %s message for %s: %v", cs.c.codec.Name(), cs.subject, err)
	}
	for {
		cs.mu.Lock()
		if err := cs.sendState(); err != nil {
			cs.mu.Unlock()
			return err
		}
		if cs.credit > 0 {
			cs.credit--
			cs.mu.Unlock()
			break
		}
		cs.mu.Unlock()
		<-cs.sendWake
	}
	if err := cs.out.message(nil, data); err != nil {
		e := cs.sendError(len(data), err)
		cs.stop(e, true)
		return e
	}
	return nil
}

// sendState returns why Send cannot send now, if it cannot: io.EOF once
// the server ended the stream cleanly (Recv has the rest). cs.mu is held.
func (cs *cstream) sendState() error {
	switch {
	case cs.abort != nil:
		return cs.abort
	case cs.sendClosed:
		return transport.ErrStreamClosed
	case cs.end != nil:
		return cs.end
	}
	return nil
}

// sendRequest sends the one request of a server stream: its open.
func (cs *cstream) sendRequest(m any) error {
	cs.mu.Lock()
	err := cs.sendState()
	if err == nil && cs.opened {
		err = errs.Newf(errs.FailedPrecondition, "stream to %s: a server stream takes one request, and it was sent", cs.subject)
	}
	cs.mu.Unlock()
	if err != nil {
		return err
	}
	data, err := cs.c.codec.Marshal(m)
	if err != nil {
		return errs.Newf(errs.InvalidArgument, "encode %s request for %s: %v", cs.c.codec.Name(), cs.subject, err)
	}
	return cs.publishOpen(data)
}

// CloseSend implements transport.ClientStream.
func (cs *cstream) CloseSend() error {
	cs.mu.Lock()
	switch {
	case cs.abort != nil:
		err := cs.abort
		cs.mu.Unlock()
		return err
	case cs.sendClosed || cs.end != nil:
		cs.sendClosed = true
		cs.mu.Unlock()
		return nil
	}
	cs.sendClosed = true
	if cs.kind == transport.ServerStreaming {
		opened := cs.opened
		cs.mu.Unlock()
		if opened {
			return nil
		}
		return cs.publishOpen(nil) // an empty request
	}
	for !cs.accepted {
		cs.mu.Unlock()
		<-cs.sendWake
		cs.mu.Lock()
		if cs.abort != nil || cs.end != nil {
			err := cs.abort
			cs.mu.Unlock()
			return err
		}
	}
	cs.mu.Unlock()
	if err := cs.out.send(frameEnd, nil, nil); err != nil {
		e := cs.sendError(0, err)
		cs.stop(e, true)
		return e
	}
	return nil
}

// Recv implements transport.ClientStream.
func (cs *cstream) Recv(m any) error {
	for {
		cs.mu.Lock()
		if cs.abort != nil {
			err := cs.abort
			cs.mu.Unlock()
			return err
		}
		data, grant, ok := cs.in.pop()
		if ok {
			tell := grant > 0 && cs.end == nil
			cs.mu.Unlock()
			if tell {
				_ = cs.out.send(frameCredit, creditHeader(grant), nil)
			}
			return cs.decode(data, m)
		}
		if cs.end != nil {
			err := cs.end
			cs.mu.Unlock()
			return err
		}
		if !cs.opened {
			cs.mu.Unlock()
			return errs.Newf(errs.FailedPrecondition, "stream to %s: send the server stream's request before Recv", cs.subject)
		}
		cs.mu.Unlock()
		<-cs.recvWake
	}
}

// decode decodes one message from the server; a message that does not
// decode ends the stream.
func (cs *cstream) decode(data []byte, m any) error {
	if err := cs.c.codec.Unmarshal(data, m); err != nil {
		e := errs.Newf(errs.Internal, "malformed %s message from %s: %v", cs.c.codec.Name(), cs.subject, err)
		cs.stop(e, true)
		return e
	}
	return nil
}

// Header implements transport.ClientStream.
func (cs *cstream) Header() transport.Metadata {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.header
}

// Trailer implements transport.ClientStream.
func (cs *cstream) Trailer() transport.Metadata {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.trailer
}

// Close implements transport.ClientStream.
func (cs *cstream) Close() error {
	cs.stop(transport.ErrStreamClosed, true)
	return nil
}
