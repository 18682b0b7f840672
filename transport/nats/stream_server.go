package nats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
	"github.com/nats-io/nats.go"
)

// streamSet holds a Server's open streams and the one subscription their
// callers' frames arrive on, <service>._stream.<instance id>.*.
type streamSet struct {
	sub    *nats.Subscription
	prefix string // "<service>._stream.<instance id>."
	clock  clock

	mu       sync.Mutex
	open     map[string]*sstream
	next     uint64
	stopping bool // Stop began: refuse opens
	wg       sync.WaitGroup
}

// hasStreams reports whether srv has a streaming endpoint: only then does
// the server subscribe to its stream inbox (and need the permission).
func hasStreams(eps []*endpoint) bool {
	for _, e := range eps {
		if e.ep.Kind != transport.Unary {
			return true
		}
	}
	return false
}

// subscribeStreams subscribes the stream inbox. s.mu is held (Start).
func (s *Server) subscribeStreams() error {
	ss := &s.streams
	ss.prefix = s.prefix + streamToken + "." + s.id + "."
	ss.clock = clock{epoch: time.Now()}
	ss.open = make(map[string]*sstream)
	sub, err := s.nc.Subscribe(ss.prefix+"*", s.onStreamFrame)
	if err != nil {
		return fmt.Errorf("nats: subscribe %s*: %w", ss.prefix, err)
	}
	ss.sub = sub
	return nil
}

// stopStreams refuses new opens; it returns a channel closed once every
// open stream has ended.
func (s *Server) stopStreams() <-chan struct{} {
	ss := &s.streams
	ss.mu.Lock()
	ss.stopping = true
	ss.mu.Unlock()
	done := make(chan struct{})
	go func() {
		ss.wg.Wait()
		close(done)
	}()
	return done
}

// onStreamFrame routes a caller's frame to its stream by the subject's last
// token. Frames of streams that have ended are dropped.
func (s *Server) onStreamFrame(msg *nats.Msg) {
	ss := &s.streams
	if len(msg.Subject) <= len(ss.prefix) {
		return
	}
	ss.mu.Lock()
	st := ss.open[msg.Subject[len(ss.prefix):]]
	ss.mu.Unlock()
	if st != nil {
		st.onFrame(msg)
	}
}

// openStream answers an open, or a request for a streaming endpoint. It
// runs on a worker of the pool and returns at once: the stream runs on a
// goroutine of its own.
func (s *Server) openStream(ep *endpoint, msg *nats.Msg, start time.Time) {
	refuse := func(e *errs.Error) {
		s.publishOpenError(msg, e)
		ep.record(start, e)
	}
	if !hasStreamHeader(msg.Header) {
		// A plain request: a unary caller, answered as one.
		e := errs.Newf(errs.InvalidArgument, "endpoint %s is a %s endpoint: open it as a stream (header %s), see the Streams section of transport/nats", ep.subject, ep.ep.Kind, StreamHeader)
		s.publishError(msg, e)
		ep.record(start, e)
		return
	}
	o, err := parseOpen(msg.Header, s.maxTimeout)
	if err != nil {
		refuse(errs.FromError(err))
		return
	}
	if ep.ep.Kind == transport.Unary {
		refuse(errs.Newf(errs.InvalidArgument, "endpoint %s is unary: call it with a request, do not open a stream", ep.subject))
		return
	}
	if o.kind != ep.ep.Kind {
		refuse(errs.Newf(errs.InvalidArgument, "endpoint %s is a %s endpoint, the open asked for %s", ep.subject, ep.ep.Kind, o.kind))
		return
	}
	cd := codec.JSON
	if ct := header(msg.Header).Get(contentTypeHeader); ct != "" && ct != jsonContentType {
		c, ok := codec.ForContentType(ct)
		if !ok {
			refuse(errs.Newf(errs.InvalidArgument, "unsupported Content-Type %q: want application/json or application/protobuf", errs.Clip(ct)))
			return
		}
		cd = c
	}
	if s.maxRequestBytes > 0 && len(msg.Data) > s.maxRequestBytes {
		refuse(errs.Newf(errs.ResourceExhausted, "request body of %d bytes exceeds the limit of %d bytes", len(msg.Data), s.maxRequestBytes))
		return
	}

	ss := &s.streams
	ss.mu.Lock()
	switch {
	case ss.stopping:
		ss.mu.Unlock()
		refuse(errStopping)
		return
	case len(ss.open) >= s.maxStreams:
		ss.mu.Unlock()
		refuse(errs.Newf(errs.ResourceExhausted, "service %s is serving %d streams, its limit; retry later", s.srv.Name(), s.maxStreams))
		return
	}
	ss.next++
	id := strconv.FormatUint(ss.next, 10)
	st := s.newStream(ep, msg, o, cd, id, start)
	ss.open[id] = st
	ss.wg.Add(1)
	ss.mu.Unlock()
	go s.runStream(st, msg)
}

// publishOpenError refuses an open with one error frame, the server's only
// frame of that stream: it carries no reply subject.
func (s *Server) publishOpenError(msg *nats.Msg, e *errs.Error) {
	h, body := errorReply(nil, e)
	h[FrameHeader] = frameValues[frameError]
	h[SeqHeader] = []string{"1"}
	if err := s.nc.PublishMsg(&nats.Msg{Subject: msg.Reply, Header: h, Data: body}); err != nil {
		s.logger.Warn("nats: cannot refuse a stream", slog.String("subject", msg.Subject), slog.Any("error", err))
	}
}

// sstream is one stream as the server serves it.
type sstream struct {
	s      *Server
	ep     *endpoint
	id     string
	kind   transport.StreamKind
	cd     codec.Codec // the open's Content-Type, both ways
	start  time.Time
	peerHB time.Duration // the caller's heartbeat interval; 0: it sends no pings
	maxMsg int

	ctx      context.Context // the handler's, with the call
	cancel   context.CancelCauseFunc
	deadline context.CancelFunc // releases the deadline's timer, if any
	call     transport.Call
	reply    transport.LazyMetadata
	out      outbound

	sendWake, recvWake chan struct{}

	mu        sync.Mutex
	credit    int64 // messages the caller lets us send
	in        inq
	seqIn     uint64
	recvEnd   bool // the caller sent end
	lastHeard int64
	timer     *time.Timer
	done      bool // finished: the timer stays stopped
}

// endCause is why the transport ended a stream's context; tell says
// whether the caller is sent e (not when the caller itself ended it).
type endCause struct {
	e    *errs.Error
	tell bool
}

func (c *endCause) Error() string { return c.e.Error() }

var errCallerCanceled = errs.New(errs.Canceled, "the caller canceled the stream")

func (s *Server) newStream(ep *endpoint, msg *nats.Msg, o opening, cd codec.Codec, id string, start time.Time) *sstream {
	st := &sstream{
		s: s, ep: ep, id: id, kind: o.kind, cd: cd, start: start, peerHB: o.heartbeat,
		maxMsg:   s.maxRequestBytes,
		credit:   o.credit,
		sendWake: make(chan struct{}, 1),
		recvWake: make(chan struct{}, 1),
	}
	if st.maxMsg <= 0 {
		st.maxMsg = int(s.nc.MaxPayload())
	}
	if o.kind.ClientSends() {
		st.in = newInq(s.streamWindow)
	}
	st.out = outbound{nc: s.nc, clock: s.streams.clock, self: s.streams.prefix + id, peer: msg.Reply}
	st.lastHeard = s.streams.clock.now()
	// No default deadline: a stream lives until either side ends it.
	ctx, cancel := context.WithCancelCause(s.base)
	st.cancel, st.deadline = cancel, func() {}
	var deadline time.Time
	if o.timeout > 0 {
		deadline = start.Add(o.timeout)
		ctx, st.deadline = context.WithDeadline(ctx, deadline)
	}
	st.call = s.wireCall(ep, msg, &st.reply, deadline)
	st.call.StreamKind, st.call.Stream = o.kind, st
	st.ctx = transport.NewCallContext(ctx, &st.call)
	return st
}

// runStream runs one stream: it decodes the request of a server stream,
// accepts the stream, runs the handler and sends the end.
func (s *Server) runStream(st *sstream, open *nats.Msg) {
	var e *errs.Error
	defer func() {
		if p := recover(); p != nil {
			buf := make([]byte, 8<<10)
			buf = buf[:runtime.Stack(buf, false)]
			s.logger.Error("nats: panic serving a stream", slog.String("subject", open.Subject),
				slog.Any("panic", p), slog.String("stack", string(buf)))
			e = errs.New(errs.Internal, "internal error")
			_ = st.out.sendLast(frameError, errorHeader(nil, e), errorBody(e))
		}
		st.finish()
		st.ep.record(st.start, e)
	}()
	var req any
	if st.kind == transport.ServerStreaming {
		var err error
		if req, err = st.decodeRequest(open.Data); err != nil {
			e = errs.FromError(err)
			s.publishOpenError(open, e)
			return
		}
	}
	h := nats.Header{HeartbeatHeader: {strconv.FormatInt(s.heartbeat.Milliseconds(), 10)}}
	if st.kind.ClientSends() {
		h[CreditHeader] = []string{strconv.Itoa(st.in.window)}
	}
	if err := st.out.send(frameAccept, h, nil); err != nil {
		e = errs.Newf(errs.Unavailable, "cannot accept the stream: %v", err)
		return
	}
	st.mu.Lock()
	st.timer = time.AfterFunc(s.heartbeat/2, st.tick)
	st.mu.Unlock()
	resp, err := st.ep.ep.Handler(st.ctx, req)
	e = st.end(resp, err)
}

// decodeRequest decodes the one request of a server stream, admitted as a
// unary request is.
func (st *sstream) decodeRequest(data []byte) (any, error) {
	req := st.ep.ep.NewRequest()
	if len(data) == 0 {
		return req, nil
	}
	if err := st.decode(data, req); err != nil {
		return nil, err
	}
	return req, nil
}

// decode decodes one message from the caller, admitted by the server's
// admission (server.Admission) for the time it takes.
func (st *sstream) decode(data []byte, m any) error {
	size := int64(len(data))
	if err := st.s.srv.Admit(st.ctx, size); err != nil {
		return err
	}
	defer st.s.srv.Release(size)
	dec := st.cd
	if dec == codec.JSON {
		dec = st.s.srv.JSON()
	}
	if err := dec.Unmarshal(data, m); err != nil {
		return errs.Newf(errs.InvalidArgument, "malformed %s message for %s: %v", st.cd.Name(), st.ep.subject, err)
	}
	return nil
}

// end sends the stream's last frames for the handler's result and returns
// the error the stream ended with (nil: a clean end), for the statistics.
func (st *sstream) end(resp any, err error) *errs.Error {
	var ec *endCause
	if errors.As(context.Cause(st.ctx), &ec) {
		if ec.tell {
			st.sendError(ec.e)
		}
		return ec.e
	}
	if err == nil && st.kind == transport.ClientStreaming {
		err = st.sendReply(resp)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) && st.s.base.Err() != nil {
			err = errStopping // cut off by Stop
		}
		e := errs.FromError(err)
		st.sendError(e)
		return e
	}
	if err := st.sendHeaderFrame(); errors.Is(err, nats.ErrBadHeaderMsg) {
		st.sendError(errBadReplyMetadata)
		return errBadReplyMetadata
	}
	err = st.out.sendLast(frameEnd, st.trailer(0), nil)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nats.ErrBadHeaderMsg):
		st.sendError(errBadTrailer)
		return errBadTrailer
	}
	return errs.Newf(errs.Unavailable, "cannot end the stream: %v", err)
}

var (
	errBadReplyMetadata = errs.New(errs.Internal, "reply metadata has a key that is not a valid NATS header name")
	errBadTrailer       = errs.New(errs.Internal, "the stream's trailer has a key that is not a valid NATS header name")
)

// sendReply sends the one reply of a client stream.
func (st *sstream) sendReply(resp any) error {
	data, err := st.cd.Marshal(resp)
	if err != nil {
		return errs.Newf(errs.Internal, "encode %s reply: %v", st.cd.Name(), err)
	}
	return st.sendMessage(data)
}

// sendHeaderFrame sends the reply metadata in a header frame if the
// handler set some and no message carried it.
func (st *sstream) sendHeaderFrame() error {
	st.out.mu.Lock()
	defer st.out.mu.Unlock()
	if st.out.metaSent {
		return nil
	}
	st.out.metaSent = true
	if h := st.replyMetadata(); len(h) > 0 {
		return st.out.sendLocked(frameHeader, h, nil)
	}
	return nil
}

// sendError ends the stream with e, its trailer and the error headers and
// body a unary error reply has.
func (st *sstream) sendError(e *errs.Error) {
	_ = st.sendHeaderFrame() // the error matters more than metadata that cannot go
	err := st.out.sendLast(frameError, errorHeader(st.trailer(3), e), errorBody(e))
	if errors.Is(err, nats.ErrBadHeaderMsg) {
		// The caller must hear of the end, if not of the trailer.
		err = st.out.sendLast(frameError, errorHeader(nil, errBadTrailer), errorBody(errBadTrailer))
	}
	if err != nil {
		st.s.logger.Debug("nats: cannot send a stream's error", slog.String("subject", st.ep.subject), slog.Any("error", err))
	}
}

// errorHeader adds e's error headers to h (nil: a new header).
func errorHeader(h nats.Header, e *errs.Error) nats.Header {
	if h == nil {
		h = make(nats.Header, 5)
	}
	setErrorHeaders(h, e)
	return h
}

func errorBody(e *errs.Error) []byte {
	body, _ := e.MarshalJSON() // an *errs.Error from FromError always has a valid code
	return body
}

// replyMetadata is the handler's reply metadata as headers, nil if none.
func (st *sstream) replyMetadata() nats.Header {
	if len(st.reply.MD) == 0 {
		return nil
	}
	return metadataHeader(st.reply.MD, 3)
}

// trailer is the handler's trailer as headers, with room for extra more.
func (st *sstream) trailer(extra int) nats.Header {
	if len(st.call.Trailer) == 0 {
		return make(nats.Header, extra+2)
	}
	return metadataHeader(st.call.Trailer, extra+2)
}

// finish forgets the stream: later frames of the caller are dropped.
func (st *sstream) finish() {
	ss := &st.s.streams
	st.mu.Lock()
	st.done = true
	if st.timer != nil {
		st.timer.Stop()
	}
	st.mu.Unlock()
	st.cancel(errStreamOver)
	st.deadline()
	ss.mu.Lock()
	delete(ss.open, st.id)
	ss.mu.Unlock()
	ss.wg.Done()
}

var errStreamOver = errors.New("stream over")

// fail ends the stream's context with cause; the first cause wins.
func (st *sstream) fail(e *errs.Error, tell bool) {
	st.cancel(&endCause{e: e, tell: tell})
	wake(st.sendWake)
	wake(st.recvWake)
}

// failed returns the error Send and Recv return once the stream's context
// has ended.
func (st *sstream) failed() error {
	cause := context.Cause(st.ctx)
	var ec *endCause
	switch {
	case errors.As(cause, &ec):
		return ec.e
	case errors.Is(cause, context.DeadlineExceeded):
		return errs.New(errs.DeadlineExceeded, "stream deadline exceeded")
	case cause == errStreamOver:
		return errs.New(errs.FailedPrecondition, "the stream has ended")
	case st.s.base.Err() != nil:
		return errStopping
	}
	return errs.FromError(cause)
}

// onFrame takes one frame from the caller. It never blocks.
func (st *sstream) onFrame(msg *nats.Msg) {
	if isNoResponders(msg) {
		st.fail(errs.New(errs.Unavailable, "the caller is gone: its stream inbox has no subscriber"), false)
		return
	}
	if msg.Reply != st.out.peer {
		return // not the caller's: its frames carry its inbox
	}
	f, perr := parseFrame(msg.Header)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ctx.Err() != nil {
		return
	}
	st.lastHeard = st.s.streams.clock.now()
	if perr != nil {
		st.malformed(errs.FromError(perr).Message())
		return
	}
	if f.kind == frameNone {
		st.malformed(fmt.Sprintf("frame without header %s", FrameHeader))
		return
	}
	if f.seq != st.seqIn+1 {
		st.fail(errs.Newf(errs.Unavailable, "stream broken: the caller's frame %d arrived where %d was due (frames were lost)", f.seq, st.seqIn+1), true)
		return
	}
	st.seqIn = f.seq
	switch f.kind {
	case frameMsg, frameChunk:
		switch {
		case !st.kind.ClientSends():
			st.malformed(fmt.Sprintf("%s frame on a %s stream, whose caller sends no messages", f.kind, st.kind))
			return
		case st.recvEnd:
			st.malformed(fmt.Sprintf("%s frame after the end frame", f.kind))
			return
		}
		if e := st.in.add(f, msg.Data, st.maxMsg); e != nil {
			if e.Code() == errs.InvalidArgument {
				st.malformed(e.Message())
			} else {
				st.fail(e, true)
			}
			return
		}
		wake(st.recvWake)
	case frameCredit:
		st.credit = min(st.credit+f.credit, maxCredit)
		wake(st.sendWake)
	case frameEnd:
		if !st.kind.ClientSends() || st.recvEnd || st.in.chunked {
			st.malformed("unexpected end frame")
			return
		}
		st.recvEnd = true
		wake(st.recvWake)
	case frameCancel:
		st.fail(errCallerCanceled, false)
	case framePing:
	default:
		st.malformed(fmt.Sprintf("%s frame, which callers do not send", f.kind))
	}
}

// malformed ends the stream for a frame that breaks the protocol. st.mu is
// held.
func (st *sstream) malformed(what string) {
	st.fail(errs.Newf(errs.InvalidArgument, "malformed frame from the caller: %s", what), true)
}

// tick runs every half heartbeat: it pings the caller when the stream has
// been silent for a heartbeat, and ends a stream whose caller has been
// silent for HeartbeatMisses of its heartbeats.
func (st *sstream) tick() {
	s := st.s
	st.mu.Lock()
	if st.done {
		st.mu.Unlock()
		return
	}
	now := s.streams.clock.now()
	silent := time.Duration(now - st.lastHeard)
	st.mu.Unlock()
	switch {
	case s.nc.IsClosed():
		st.fail(errs.New(errs.Unavailable, "the server's NATS connection is closed"), false)
	case st.peerHB > 0 && silent >= HeartbeatMisses*st.peerHB:
		st.fail(errs.Newf(errs.Unavailable, "the caller is gone: nothing heard from it for %v", silent.Round(time.Millisecond)), true)
	case time.Duration(now-st.out.lastSent.Load()) >= s.heartbeat:
		_ = st.out.send(framePing, nil, nil)
	}
	st.mu.Lock()
	if !st.done {
		st.timer.Reset(s.heartbeat / 2)
	}
	st.mu.Unlock()
}

// Recv implements transport.Stream.
func (st *sstream) Recv(m any) error {
	if !st.kind.ClientSends() {
		return io.EOF // a server stream's one request was the handler's argument
	}
	for {
		st.mu.Lock()
		if st.ctx.Err() != nil {
			st.mu.Unlock()
			return st.failed()
		}
		data, grant, ok := st.in.pop()
		if ok {
			st.mu.Unlock()
			if grant > 0 {
				_ = st.out.send(frameCredit, creditHeader(grant), nil)
			}
			return st.decode(data, m)
		}
		if st.recvEnd {
			st.mu.Unlock()
			return io.EOF
		}
		st.mu.Unlock()
		select {
		case <-st.recvWake:
		case <-st.ctx.Done():
		}
	}
}

// Send implements transport.Stream.
func (st *sstream) Send(m any) error {
	if !st.kind.ServerSends() {
		return errs.Newf(errs.FailedPrecondition, "endpoint %s is a client stream: its handler returns the one reply", st.ep.subject)
	}
	data, err := st.cd.Marshal(m)
	if err != nil {
		return errs.Newf(errs.Internal, "encode %s message: %v", st.cd.Name(), err)
	}
	return st.sendMessage(data)
}

// sendMessage waits for credit and sends one message.
func (st *sstream) sendMessage(data []byte) error {
	for {
		st.mu.Lock()
		if st.ctx.Err() != nil {
			st.mu.Unlock()
			return st.failed()
		}
		if st.credit > 0 {
			st.credit--
			st.mu.Unlock()
			break
		}
		st.mu.Unlock()
		select {
		case <-st.sendWake:
		case <-st.ctx.Done():
		}
	}
	if err := st.out.message(st.replyMetadata, data); err != nil {
		e := st.publishError(err)
		st.fail(e, true)
		return e
	}
	return nil
}

// publishError maps a failure to publish a frame.
func (st *sstream) publishError(err error) *errs.Error {
	switch {
	case errors.As(err, new(*errs.Error)):
		return errs.FromError(err)
	case errors.Is(err, nats.ErrBadHeaderMsg):
		return errBadReplyMetadata
	}
	return errs.Newf(errs.Unavailable, "cannot send on the stream: %v", err)
}
