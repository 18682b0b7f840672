package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
)

// envelopeOverhead is what a frame may hold beyond its message: the
// envelope around it, with some room for whitespace.
const envelopeOverhead = 1 << 10

// upgradeRequired answers a request for a client or bidirectional stream
// that is not a WebSocket handshake.
func (rt *route) upgradeRequired(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Upgrade", "websocket")
	w.Header().Set("Connection", "Upgrade")
	writeProblem(w, http.StatusUpgradeRequired, errs.Newf(errs.FailedPrecondition,
		"%s/%s is a %s endpoint: open a WebSocket on GET %s (Connection: Upgrade, Upgrade: websocket)",
		rt.h.service, rt.ep.Name, rt.ep.Kind, rt.path).
		WithDetails(errs.Detail{Field: "Upgrade", Reason: "open a WebSocket"}))
}

// serveWebSocket serves a client or bidirectional streaming endpoint on a
// WebSocket: the handshake's headers are the request metadata and may
// carry Ferry-Timeout-Ms; the messages travel in JSON envelopes.
func (rt *route) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	h := rt.h
	if r.Method != http.MethodGet || !isUpgrade(r) {
		rt.upgradeRequired(w, r)
		return
	}
	// The connection is hijacked: the request's context ends when this
	// function returns, not when the caller goes away. The stream's own
	// context ends when the reader sees the caller leave.
	ctx, cancel, deadline, ok := streamContext(w, r, context.WithoutCancel(r.Context()))
	if !ok {
		return
	}
	defer cancel(nil)
	actx, acancel := context.WithTimeout(ctx, h.defTimeout)
	err := h.srv.Admit(actx, 0)
	acancel()
	if err != nil {
		writeError(w, err)
		return
	}
	defer h.srv.Release(0)

	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:   []string{WebSocketProtocol},
		OriginPatterns: h.wsOrigins,
	})
	if err != nil {
		return // Accept answered the handshake
	}
	// The stream checks sizes itself, to answer an oversized message with
	// an error envelope before it closes.
	conn.SetReadLimit(-1)
	st := &wsStream{
		conn:       conn,
		ctx:        ctx,
		cancel:     cancel,
		dec:        h.json,
		limit:      h.maxBody,
		endTimeout: h.streamEndTimeout,
		credits:    conn.Subprotocol() == WebSocketProtocol,
		window:     h.streamWindow,
		avail:      h.streamWindow,
		arrived:    make(chan struct{}, 1),
		space:      make(chan struct{}, 1),
		credited:   make(chan struct{}, 1),
		granted:    make(chan struct{}, 1),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	st.call = transport.Call{
		Service:    h.service,
		Endpoint:   rt.ep.Name,
		Kind:       transport.HTTP,
		Request:    Header(r.Header),
		Reply:      transport.Metadata{},
		Peer:       r.RemoteAddr,
		Method:     r.Method,
		Route:      rt.path,
		Target:     r.URL.Path,
		TLS:        r.TLS != nil,
		Deadline:   deadline,
		StreamKind: rt.ep.Kind,
		Stream:     st,
	}
	st.wctx, st.wcancel = context.WithCancel(ctx)
	defer st.wcancel()
	if st.credits {
		// The server's window is the first frame, before anything else.
		wctx, wcancel := context.WithTimeout(ctx, st.endTimeout)
		err := st.writeCredit(wctx, st.window)
		wcancel()
		if err != nil {
			_ = conn.CloseNow()
			return
		}
	}
	ts := h.streams.add(cancel, conn)
	if ts == nil {
		close(st.readerDone)
		close(st.writerDone)
		st.finish(nil, errStopping)
		return
	}
	defer h.streams.remove(ts)
	go st.readLoop(context.WithoutCancel(ctx))
	if st.credits {
		go st.creditLoop()
	} else {
		close(st.writerDone)
	}
	resp, err := rt.ep.Handler(transport.NewCallContext(ctx, &st.call), nil)
	st.finish(resp, err)
}

// wsStream is the transport.Stream of a client or bidirectional stream on
// a WebSocket. A reader goroutine reads the caller's frames and queues the
// messages for Recv, at most window of them.
//
// With credits (the caller agreed to WebSocketProtocol), the reader never
// stops reading, so it sees the caller leave at once: the caller may send
// only the messages it has credit for, which Recv grants back half a
// window at a time through a writer goroutine of its own (creditLoop), and
// Send waits for the caller's credit. Without credits (browsers and
// wscat, unless they ask for the subprotocol), the reader stops reading
// while the queue is full: TCP's back-pressure.
type wsStream struct {
	conn       *websocket.Conn
	ctx        context.Context
	cancel     context.CancelCauseFunc
	call       transport.Call
	dec        codec.Codec // decodes messages (server.WithJSON)
	limit      int64       // the largest message, in bytes
	endTimeout time.Duration
	credits    bool // credit-based flow control, both ways
	window     int  // messages the caller may send ahead of Recv

	qmu        sync.Mutex // guards the fields below, up to sendCredit
	q          [][]byte   // the caller's messages, not yet received
	qhead      int
	inErr      error // after the queue: io.EOF once the caller ended, or why the stream broke
	avail      int   // credit granted to the caller and not yet used
	taken      int   // messages Recv took since the last grant
	grant      int   // credit Recv granted, for creditLoop to send
	sendCredit int   // messages the caller lets Send send

	arrived    chan struct{} // wakes Recv: a message or the end
	space      chan struct{} // wakes the reader: Recv made room (no credits)
	credited   chan struct{} // wakes Send: the caller granted credit
	granted    chan struct{} // wakes creditLoop: Recv granted credit
	done       chan struct{} // closed when the handler returned
	readerDone chan struct{}
	writerDone chan struct{}      // creditLoop returned
	wctx       context.Context    // creditLoop's writes
	wcancel    context.CancelFunc // ends a credit write that outlived the handler by endTimeout

	mu         sync.Mutex // serializes what is written
	headerSent bool
	ended      bool
	buf        []byte
}

// wsProtocolError is the cause a stream's context is canceled with when
// the caller broke the envelope protocol: the stream ends with err and the
// close code.
type wsProtocolError struct {
	err  *errs.Error
	code websocket.StatusCode
}

func (e *wsProtocolError) Error() string { return e.err.Error() }

var errCallerLeft = errs.New(errs.Canceled, "the caller closed the stream")

// err is what Recv and Send return once the stream's context ended.
func (s *wsStream) err() error {
	cause := context.Cause(s.ctx)
	if pe, ok := cause.(*wsProtocolError); ok {
		return pe.err
	}
	return errs.FromError(cause)
}

func (s *wsStream) errEnded() error {
	return errs.Newf(errs.FailedPrecondition, "http: the stream of %s/%s has ended", s.call.Service, s.call.Endpoint)
}

// Recv implements transport.Stream.
func (s *wsStream) Recv(m any) error {
	for {
		if s.ctx.Err() != nil {
			return s.err()
		}
		b, grant, inErr := s.pop()
		if b != nil {
			if grant > 0 {
				wake(s.granted)
			}
			if err := s.dec.Unmarshal(b, m); err != nil {
				return errs.Newf(errs.InvalidArgument, "decoding a message of %s/%s: %v", s.call.Service, s.call.Endpoint, err)
			}
			return nil
		}
		if inErr != nil {
			return inErr
		}
		select {
		case <-s.arrived:
		case <-s.ctx.Done():
			return s.err()
		}
	}
}

// pop takes the next queued message, if any, and the credit to grant now:
// half a window at a time, as the handler takes messages. Without a
// message it returns why none will come, if none will.
func (s *wsStream) pop() (b []byte, grant int, inErr error) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.qhead == len(s.q) {
		return nil, 0, s.inErr
	}
	b = s.q[s.qhead]
	s.q[s.qhead] = nil
	s.qhead++
	if s.qhead == len(s.q) {
		s.q, s.qhead = s.q[:0], 0
	}
	if !s.credits {
		wake(s.space)
		return b, 0, nil
	}
	s.taken++
	if s.taken >= max(1, s.window/2) {
		grant, s.taken = s.taken, 0
		s.avail += grant
		s.grant += grant
	}
	return b, grant, nil
}

// push queues a message from the caller. With credits, a message beyond
// the credit granted breaks the protocol (push returns false); without,
// the reader waits while the queue is full. Once the handler returned, or
// the stream's context ended, messages are dropped.
func (s *wsStream) push(msg []byte) bool {
	s.qmu.Lock()
	for {
		select {
		case <-s.done:
			s.qmu.Unlock()
			return true
		default:
		}
		if s.ctx.Err() != nil {
			s.qmu.Unlock()
			return true
		}
		if s.credits {
			if s.avail <= 0 {
				s.qmu.Unlock()
				return false
			}
			s.avail--
			break
		}
		if len(s.q)-s.qhead < s.window {
			break
		}
		s.qmu.Unlock()
		select {
		case <-s.space:
		case <-s.done:
		case <-s.ctx.Done():
		}
		s.qmu.Lock()
	}
	s.q = append(s.q, msg)
	s.qmu.Unlock()
	wake(s.arrived)
	return true
}

// closeIn records why no more messages come, after those queued: the
// first reason stays.
func (s *wsStream) closeIn(err error) {
	s.qmu.Lock()
	if s.inErr == nil {
		s.inErr = err
	}
	s.qmu.Unlock()
	wake(s.arrived)
}

// addSendCredit adds the caller's grant to what Send may send.
func (s *wsStream) addSendCredit(n int) {
	s.qmu.Lock()
	s.sendCredit = min(s.sendCredit+n, maxCredit)
	s.qmu.Unlock()
	wake(s.credited)
}

// takeCredit waits, with credits, until the caller lets one more message
// go, and takes that credit.
func (s *wsStream) takeCredit() error {
	if !s.credits {
		return nil
	}
	for {
		s.qmu.Lock()
		if s.sendCredit > 0 {
			s.sendCredit--
			s.qmu.Unlock()
			return nil
		}
		s.qmu.Unlock()
		select {
		case <-s.credited:
		case <-s.ctx.Done():
			return s.err()
		case <-s.done:
			return s.errEnded()
		}
	}
}

// Send implements transport.Stream. It blocks while the caller has given
// no credit (with credits) and while the connection is full.
func (s *wsStream) Send(m any) error {
	out, err := codec.JSON.Marshal(m)
	if err != nil {
		return errs.Newf(errs.Internal, "http: encoding a message of %s/%s: %v", s.call.Service, s.call.Endpoint, err)
	}
	if err := s.takeCredit(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return s.errEnded()
	}
	if s.ctx.Err() != nil {
		return s.err()
	}
	if err := s.sendHeader(s.ctx); err != nil {
		return err
	}
	return s.write(s.ctx, s.envelope("msg", out))
}

// creditLoop sends the credit Recv grants, so that Recv never waits for a
// write (behind a Send waiting for a full connection, say). Grants made
// while a credit envelope is on its way are added up into the next one.
func (s *wsStream) creditLoop() {
	defer close(s.writerDone)
	for {
		select {
		case <-s.granted:
		case <-s.done:
			return
		case <-s.ctx.Done():
			return
		}
		s.qmu.Lock()
		n := s.grant
		s.grant = 0
		s.qmu.Unlock()
		if n == 0 {
			continue
		}
		// A failed write broke the connection: the reader sees it.
		_ = s.writeCredit(s.wctx, n)
	}
}

// writeCredit sends a credit envelope granting n, unless the stream has
// ended.
func (s *wsStream) writeCredit(ctx context.Context, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.ctx.Err() != nil {
		return nil
	}
	return s.write(ctx, s.envelope("credit", strconv.AppendInt(nil, int64(n), 10)))
}

// wake signals ch without blocking: each channel has one waiter at a time
// and a buffer of one.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// envelope returns {"<member>":<doc>} in the stream's buffer.
func (s *wsStream) envelope(member string, doc []byte) []byte {
	b := append(s.buf[:0], `{"`...)
	b = append(append(append(append(b, member...), `":`...), doc...), '}')
	if cap(b) <= maxPooledBuf {
		s.buf = b
	}
	return b
}

// sendHeader sends the reply metadata before the first message, if the
// handler set any.
func (s *wsStream) sendHeader(ctx context.Context) error {
	if s.headerSent {
		return nil
	}
	s.headerSent = true
	md, _ := s.call.Reply.(transport.Metadata)
	if len(md) == 0 {
		return nil
	}
	doc, err := codec.MarshalJSON(md)
	if err != nil {
		return errs.Newf(errs.Internal, "http: encoding the reply metadata of %s/%s: %v", s.call.Service, s.call.Endpoint, err)
	}
	return s.write(ctx, s.envelope("header", doc))
}

func (s *wsStream) write(ctx context.Context, b []byte) error {
	if err := s.conn.Write(ctx, websocket.MessageText, b); err != nil {
		if s.ctx.Err() != nil {
			return s.err()
		}
		return errs.Newf(errs.Unavailable, "http: writing the stream of %s/%s: %v", s.call.Service, s.call.Endpoint, err)
	}
	return nil
}

// finish ends the stream with the handler's result — its reply first, for
// a client stream — or with the protocol error that ended it, then closes
// the WebSocket and waits for the reader.
func (s *wsStream) finish(resp any, err error) {
	close(s.done)
	// The credit writer stops now. A credit envelope still on its way
	// (to a caller that does not read) gets the time the last frames
	// get, then its write is canceled, which closes the connection.
	t := time.NewTimer(s.endTimeout)
	select {
	case <-s.writerDone:
	case <-t.C:
		s.wcancel()
		<-s.writerDone
	}
	t.Stop()
	s.end(resp, err)
	<-s.readerDone
}

func (s *wsStream) end(resp any, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	code := websocket.StatusNormalClosure
	if pe, ok := context.Cause(s.ctx).(*wsProtocolError); ok {
		resp, err, code = nil, pe.err, pe.code
	}
	// The last frames are written even when the stream's context has
	// ended (a deadline, say), within the write timeout. A client stream's
	// one reply takes no credit.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), s.endTimeout)
	defer cancel()
	werr := s.sendHeader(ctx)
	if werr == nil && err == nil && resp != nil {
		out, merr := codec.JSON.Marshal(resp)
		if merr != nil {
			err = errs.Newf(errs.Internal, "http: encoding the reply of %s/%s: %v", s.call.Service, s.call.Endpoint, merr)
		} else {
			werr = s.write(ctx, s.envelope("msg", out))
		}
	}
	if werr == nil {
		var last []byte
		if err != nil {
			last = s.envelope("error", streamProblem(err, s.call.Trailer))
		} else {
			end, _ := codec.MarshalJSON(sseEnd{Trailer: s.call.Trailer})
			last = s.envelope("end", end)
		}
		werr = s.write(ctx, last)
	}
	if werr != nil {
		_ = s.conn.CloseNow()
	} else {
		_ = s.conn.Close(code, "")
	}
}

// readLoop reads the caller's frames until the connection closes or the
// caller breaks the protocol. ctx is not canceled: the connection's close
// ends the reading.
func (s *wsStream) readLoop(ctx context.Context) {
	defer close(s.readerDone)
	var frame []byte
	n, msgs, ended := 0, 0, false
	left := func() {
		s.closeIn(errCallerLeft)
		s.cancel(errCallerLeft)
	}
	fail := func(e *errs.Error, code websocket.StatusCode) {
		// The cause first: finish, once the handler returned, must find it.
		s.cancel(&wsProtocolError{err: e, code: code})
		s.closeIn(e)
	}
	for {
		_, r, err := s.conn.Reader(ctx)
		if err != nil {
			left()
			return
		}
		n++
		frame, err = readBody(r, frame[:0], -1, s.limit+envelopeOverhead)
		switch {
		case err == errTooLarge:
			fail(errs.Newf(errs.ResourceExhausted, "message %d exceeds the %d-byte limit", msgs+1, s.limit), websocket.StatusMessageTooBig)
			return
		case err != nil:
			left()
			return
		}
		env, e := decodeEnvelope(frame)
		if cap(frame) > maxPooledBuf {
			frame = nil
		}
		switch {
		case e != nil:
			fail(errs.Newf(errs.InvalidArgument, "frame %d: %s", n, e.Error()), websocket.StatusPolicyViolation)
			return
		case env.credit > 0:
			if !s.credits {
				fail(errs.Newf(errs.InvalidArgument, "frame %d: a credit envelope on a WebSocket opened without the %q subprotocol, which turns credits on", n, WebSocketProtocol), websocket.StatusPolicyViolation)
				return
			}
			// The caller grants credit after its end too: it still receives.
			s.addSendCredit(env.credit)
			continue
		case ended:
			fail(errs.Newf(errs.InvalidArgument, `frame %d: a message or end after {"end": true}`, n), websocket.StatusPolicyViolation)
			return
		case env.end:
			ended = true
			s.closeIn(io.EOF)
			continue
		}
		msgs++
		if int64(len(env.msg)) > s.limit {
			fail(errs.Newf(errs.ResourceExhausted, "message %d exceeds the %d-byte limit", msgs, s.limit), websocket.StatusMessageTooBig)
			return
		}
		if !s.push(env.msg) {
			fail(errs.Newf(errs.InvalidArgument, "frame %d: message %d sent beyond the credit granted (a window of %d messages): send a message only while holding credit", n, msgs, s.window), websocket.StatusPolicyViolation)
			return
		}
	}
}

// envelopeError says what is wrong with a caller's frame.
type envelopeError string

func (e envelopeError) Error() string {
	return string(e) + `; want {"msg": <message>}, {"end": true} or {"credit": <messages>}`
}

// callerEnvelope is a frame a caller sent: one of a message, the end, or
// credit.
type callerEnvelope struct {
	msg    json.RawMessage // {"msg": <message>}
	end    bool            // {"end": true}
	credit int             // {"credit": n}, 1 to maxCredit
}

// decodeEnvelope decodes a frame a caller sent: {"msg": <message>},
// {"end": true} or {"credit": n}.
func decodeEnvelope(frame []byte) (callerEnvelope, error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(frame, &env); err != nil {
		if len(bytes.TrimSpace(frame)) == 0 {
			return callerEnvelope{}, envelopeError("empty frame")
		}
		return callerEnvelope{}, envelopeError(fmt.Sprintf("not a JSON object (%v)", err))
	}
	if len(env) != 1 {
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, errs.Clip(k))
		}
		slices.Sort(keys)
		return callerEnvelope{}, envelopeError(fmt.Sprintf("an envelope holds one member, this one %d %q", len(env), keys))
	}
	for k, v := range env {
		switch k {
		case "msg":
			return callerEnvelope{msg: v}, nil
		case "end":
			if !bytes.Equal(v, []byte("true")) {
				return callerEnvelope{}, envelopeError(fmt.Sprintf(`"end" is %s, not true`, errs.Clip(string(v))))
			}
			return callerEnvelope{end: true}, nil
		case "credit":
			n, err := parseCredit(v)
			if err != nil {
				return callerEnvelope{}, envelopeError(err.Error())
			}
			return callerEnvelope{credit: n}, nil
		default:
			return callerEnvelope{}, envelopeError(fmt.Sprintf("unknown envelope member %q", errs.Clip(k)))
		}
	}
	return callerEnvelope{}, nil // not reached
}

// parseCredit reads the value of a credit envelope, either way: a JSON
// integer from 1 to maxCredit, without fraction or exponent.
func parseCredit(v []byte) (int, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	var why string
	switch {
	case err == nil && n >= 1 && n <= maxCredit:
		return int(n), nil
	case err == nil && n == 0:
		why = "zero"
	case len(v) > 0 && v[0] == '-' && (err == nil || errors.Is(err, strconv.ErrRange)):
		why = "negative"
	case err == nil || errors.Is(err, strconv.ErrRange):
		why = fmt.Sprintf("over %d", maxCredit)
	default:
		why = "not an integer"
	}
	return 0, fmt.Errorf(`"credit" is %s (%s): a credit is a whole number of messages from 1 to %d`, errs.Clip(string(v)), why, maxCredit)
}
