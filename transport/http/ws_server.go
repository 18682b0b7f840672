package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
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
		in:         make(chan []byte),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
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
	ts := h.streams.add(cancel, conn)
	if ts == nil {
		close(st.readerDone)
		st.finish(nil, errStopping)
		return
	}
	defer h.streams.remove(ts)
	go st.readLoop(context.WithoutCancel(ctx))
	resp, err := rt.ep.Handler(transport.NewCallContext(ctx, &st.call), nil)
	st.finish(resp, err)
}

// wsStream is the transport.Stream of a client or bidirectional stream on
// a WebSocket. A reader goroutine reads the caller's frames and hands the
// messages to Recv one at a time, so a handler that does not receive
// stops the reading (back-pressure); it also sees the caller leave.
type wsStream struct {
	conn       *websocket.Conn
	ctx        context.Context
	cancel     context.CancelCauseFunc
	call       transport.Call
	dec        codec.Codec // decodes messages (server.WithJSON)
	limit      int64       // the largest message, in bytes
	endTimeout time.Duration

	in         chan []byte   // the caller's messages
	inErr      error         // why in was closed; written before close(in)
	done       chan struct{} // closed when the handler returned
	readerDone chan struct{}

	mu         sync.Mutex // serializes what is sent
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

// Recv implements transport.Stream.
func (s *wsStream) Recv(m any) error {
	select {
	case b, ok := <-s.in:
		if !ok {
			return s.inErr
		}
		if err := s.dec.Unmarshal(b, m); err != nil {
			return errs.Newf(errs.InvalidArgument, "decoding a message of %s/%s: %v", s.call.Service, s.call.Endpoint, err)
		}
		return nil
	case <-s.ctx.Done():
		return s.err()
	}
}

// Send implements transport.Stream. It blocks while the connection is full.
func (s *wsStream) Send(m any) error {
	out, err := codec.JSON.Marshal(m)
	if err != nil {
		return errs.Newf(errs.Internal, "http: encoding a message of %s/%s: %v", s.call.Service, s.call.Endpoint, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return errs.Newf(errs.FailedPrecondition, "http: the stream of %s/%s has ended", s.call.Service, s.call.Endpoint)
	}
	if s.ctx.Err() != nil {
		return s.err()
	}
	if err := s.sendHeader(s.ctx); err != nil {
		return err
	}
	return s.write(s.ctx, s.envelope("msg", out))
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
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	code := websocket.StatusNormalClosure
	if pe, ok := context.Cause(s.ctx).(*wsProtocolError); ok {
		resp, err, code = nil, pe.err, pe.code
	}
	// The last frames are written even when the stream's context has
	// ended (a deadline, say), within the write timeout.
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
	<-s.readerDone
}

// readLoop reads the caller's frames until the connection closes or the
// caller breaks the protocol. ctx is not canceled: the connection's close
// ends the reading.
func (s *wsStream) readLoop(ctx context.Context) {
	defer close(s.readerDone)
	var frame []byte
	n, ended := 0, false
	closeIn := func(err error) {
		if s.inErr == nil {
			s.inErr = err
			close(s.in)
		}
	}
	fail := func(e *errs.Error, code websocket.StatusCode) {
		// The cause first: finish, once the handler returned, must find it.
		s.cancel(&wsProtocolError{err: e, code: code})
		closeIn(e)
	}
	for {
		_, r, err := s.conn.Reader(ctx)
		if err != nil {
			closeIn(errCallerLeft)
			s.cancel(errCallerLeft)
			return
		}
		n++
		frame, err = readBody(r, frame[:0], -1, s.limit+envelopeOverhead)
		switch {
		case err == errTooLarge:
			fail(errs.Newf(errs.ResourceExhausted, "message %d exceeds the %d-byte limit", n, s.limit), websocket.StatusMessageTooBig)
			return
		case err != nil:
			closeIn(errCallerLeft)
			s.cancel(errCallerLeft)
			return
		}
		msg, end, e := decodeEnvelope(frame)
		if cap(frame) > maxPooledBuf {
			frame = nil
		}
		switch {
		case e != nil:
			fail(errs.Newf(errs.InvalidArgument, "frame %d: %s", n, e.Error()), websocket.StatusPolicyViolation)
			return
		case ended:
			fail(errs.Newf(errs.InvalidArgument, `frame %d: a frame after {"end": true}`, n), websocket.StatusPolicyViolation)
			return
		case end:
			ended = true
			closeIn(io.EOF)
			continue
		case int64(len(msg)) > s.limit:
			fail(errs.Newf(errs.ResourceExhausted, "message %d exceeds the %d-byte limit", n, s.limit), websocket.StatusMessageTooBig)
			return
		}
		select {
		case s.in <- msg:
		case <-s.done: // the handler returned: what follows is dropped
		case <-s.ctx.Done():
		}
	}
}

// envelopeError says what is wrong with a caller's frame.
type envelopeError string

func (e envelopeError) Error() string {
	return string(e) + `; want {"msg": <message>} or {"end": true}`
}

// decodeEnvelope decodes a frame a caller sent: {"msg": <message>}, whose
// message it returns, or {"end": true}.
func decodeEnvelope(frame []byte) (msg json.RawMessage, end bool, err error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(frame, &env); err != nil {
		if len(bytes.TrimSpace(frame)) == 0 {
			return nil, false, envelopeError("empty frame")
		}
		return nil, false, envelopeError(fmt.Sprintf("not a JSON object (%v)", err))
	}
	if len(env) != 1 {
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, errs.Clip(k))
		}
		slices.Sort(keys)
		return nil, false, envelopeError(fmt.Sprintf("an envelope holds one member, this one %d %q", len(env), keys))
	}
	for k, v := range env {
		switch k {
		case "msg":
			return v, false, nil
		case "end":
			if !bytes.Equal(v, []byte("true")) {
				return nil, false, envelopeError(fmt.Sprintf(`"end" is %s, not true`, errs.Clip(string(v))))
			}
			return nil, true, nil
		default:
			return nil, false, envelopeError(fmt.Sprintf("unknown envelope member %q", errs.Clip(k)))
		}
	}
	return nil, false, nil // not reached
}
