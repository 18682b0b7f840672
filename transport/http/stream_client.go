package http

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
	"github.com/ferry-go/ferry/transport/callkit"
)

// WithStreamFormat sets the format the client asks server streams in: NDJSON
// (the default), or SSE (Server-Sent Events, as a browser's EventSource
// reads them). Both carry the same messages, metadata and errors; the
// choice matters to proxies, some of which hold back responses that are
// not text/event-stream.
func WithStreamFormat(f StreamFormat) ClientOption {
	return func(c *clientConfig) {
		if f == NDJSON || f == SSE {
			c.streamFormat = f
		}
	}
}

var _ transport.Streamer = (*Client)(nil)

// NewStream implements transport.Streamer. A server stream is a POST whose
// reply is read as NDJSON (or SSE, WithStreamFormat) — it is sent when Recv
// is first called, once the request was given to Send; client and
// bidirectional streams are WebSockets, opened before NewStream returns.
// Messages travel as JSON whatever the client's codec (a server stream's
// request body uses the codec). Each message the server sends may be up to
// WithMaxReplyBytes long. The client's middleware runs once per stream.
//
// A Timeout on an http.Client given with WithHTTPClient bounds a server
// stream's whole life (and a WebSocket's handshake): give streams a
// context instead.
func (c *Client) NewStream(ctx context.Context, service, endpoint string, kind transport.StreamKind) (transport.ClientStream, error) {
	if err := checkNames(service, endpoint); err != nil {
		return nil, callkit.Received(err, service, endpoint)
	}
	if kind == transport.Unary || kind > transport.BidiStreaming {
		return nil, callkit.Received(errs.Newf(errs.InvalidArgument, "http: %s/%s: %s is not a stream kind", service, endpoint, kind), service, endpoint)
	}
	e := c.endpointURL(service, endpoint)
	method := http.MethodGet
	if kind == transport.ServerStreaming {
		method = http.MethodPost
	}
	w := callkit.Wire{Peer: c.base.Host, Method: method, Route: e.path, Target: e.full, TLS: c.tls}
	return c.pipe.OpenStream(ctx, service, endpoint, w, kind, func(ctx context.Context, call *transport.Call) (transport.ClientStream, error) {
		if kind == transport.ServerStreaming {
			return c.openServerStream(ctx, call, e), nil
		}
		return c.dialStream(ctx, call, e)
	})
}

// checkNames refuses names no Ferry HTTP server routes.
func checkNames(service, endpoint string) error {
	if service == "" || endpoint == "" {
		return errs.Newf(errs.InvalidArgument, "http: empty service or endpoint name (%q/%q)", service, endpoint)
	}
	for i := 0; i < len(service); i++ {
		if service[i] == '.' {
			return errs.Newf(errs.InvalidArgument, "http: service name %q has a '.': that is a fully qualified gRPC service name, which only the gRPC transport calls (Ferry service names have none)", errs.Clip(service))
		}
	}
	return nil
}

// timeoutValue is the Ferry-Timeout-Ms value for ctx's deadline.
func timeoutValue(ctx context.Context) (string, bool) {
	dl, ok := ctx.Deadline()
	if !ok {
		return "", false
	}
	ms := (time.Until(dl) + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(max(int64(ms), 1), 10), true
}

// streamMD holds the metadata a client stream received: its header and
// trailer, read by any goroutine.
type streamMD struct {
	mu      sync.Mutex
	header  transport.Metadata
	trailer transport.Metadata
}

func (m *streamMD) setHeader(md transport.Metadata) {
	m.mu.Lock()
	m.header = md
	m.mu.Unlock()
}

func (m *streamMD) setTrailer(md transport.Metadata) {
	m.mu.Lock()
	m.trailer = md
	m.mu.Unlock()
}

// Header implements transport.ClientStream.
func (m *streamMD) Header() transport.Metadata {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.header
}

// Trailer implements transport.ClientStream.
func (m *streamMD) Trailer() transport.Metadata {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.trailer
}

// serverStream is the caller's side of a server stream over plain HTTP.
type serverStream struct {
	streamMD
	c                 *Client
	ctx               context.Context
	cancel            context.CancelFunc
	call              *transport.Call
	u                 *endpointURL
	format            StreamFormat
	service, endpoint string

	mu        sync.Mutex // guards the request side
	body      []byte
	hasReq    bool
	closeSent bool
	closed    atomic.Bool

	// Recv's side.
	resp   *http.Response
	nd     *ndjsonReader
	sse    *sseReader
	endErr error // io.EOF or the error the stream ended with
}

func (c *Client) openServerStream(ctx context.Context, call *transport.Call, e *endpointURL) *serverStream {
	ctx, cancel := context.WithCancel(ctx)
	return &serverStream{c: c, ctx: ctx, cancel: cancel, call: call, u: e, format: c.streamFormat,
		service: call.Service, endpoint: call.Endpoint}
}

// Send implements transport.ClientStream: it takes the stream's one
// request, sent when Recv is first called.
func (s *serverStream) Send(m any) error {
	if s.closed.Load() {
		return transport.ErrStreamClosed
	}
	body, err := s.c.codec.Marshal(m)
	if err != nil {
		return errs.Newf(errs.InvalidArgument, "http: encoding the %s request for %s/%s: %v", s.c.codec.Name(), s.service, s.endpoint, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closeSent:
		return transport.ErrStreamClosed
	case s.hasReq:
		return errs.Newf(errs.FailedPrecondition, "http: %s/%s is a server stream: it takes one request", s.service, s.endpoint)
	}
	s.body, s.hasReq = body, true
	return nil
}

// CloseSend implements transport.ClientStream.
func (s *serverStream) CloseSend() error {
	s.mu.Lock()
	s.closeSent = true
	s.mu.Unlock()
	return nil
}

// Close implements transport.ClientStream: the request is canceled, which
// closes its connection.
func (s *serverStream) Close() error {
	s.closed.Store(true)
	s.cancel()
	return nil
}

// Recv implements transport.ClientStream.
func (s *serverStream) Recv(m any) error {
	if s.closed.Load() {
		return transport.ErrStreamClosed
	}
	if s.endErr != nil {
		return s.endErr
	}
	if s.resp == nil {
		if err := s.start(); err != nil {
			return s.end(err)
		}
	}
	data, err := s.next()
	if err != nil {
		return s.end(err)
	}
	if err := codec.JSON.Unmarshal(data, m); err != nil {
		return s.end(errs.Newf(errs.Internal, "http: decoding a message of %s/%s: %v", s.service, s.endpoint, err))
	}
	return nil
}

// start sends the request and reads the head of the reply.
func (s *serverStream) start() error {
	s.mu.Lock()
	body, ok := s.body, s.hasReq
	s.mu.Unlock()
	if !ok {
		return errs.Newf(errs.FailedPrecondition, "http: %s/%s: send the server stream's request before receiving", s.service, s.endpoint)
	}
	hr, err := http.NewRequestWithContext(s.ctx, http.MethodPost, "", bytes.NewReader(body))
	if err != nil {
		return errs.Newf(errs.Internal, "http: building the request: %v", err)
	}
	hr.URL = s.u.u
	hr.Host = hr.URL.Host
	if err := addMetadata(hr.Header, s.call.Request); err != nil {
		return err
	}
	hr.Header["Content-Type"] = s.c.ct
	if s.format == SSE {
		hr.Header["Accept"] = []string{SSEContentType}
	} else {
		hr.Header["Accept"] = []string{NDJSONContentType}
	}
	if v, ok := timeoutValue(s.ctx); ok {
		hr.Header[TimeoutHeader] = []string{v}
	}
	resp, err := s.c.hc.Do(hr)
	if err != nil {
		return s.transportError(err)
	}
	s.resp = resp
	s.setHeader(transport.Copy(Header(resp.Header)))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The stream never started: an ordinary error response, with the
		// handler's trailer, if any, in HTTP trailers.
		data, _ := readBody(resp.Body, nil, -1, maxErrorBody)
		s.setTrailer(trailerFromHeader(resp.Trailer))
		return parseProblem(resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	switch mt {
	case NDJSONContentType, JSONLContentType:
		s.nd = &ndjsonReader{br: br, limit: s.c.maxReply}
	case SSEContentType:
		s.sse = &sseReader{br: br, limit: s.c.maxReply}
	default:
		return errs.Newf(errs.Internal, "http: %s/%s answered a stream as %q, not as NDJSON or Server-Sent Events", s.service, s.endpoint, errs.Clip(mt))
	}
	return nil
}

// next returns the next message's JSON, or io.EOF or the error the stream
// ended with.
func (s *serverStream) next() ([]byte, error) {
	if s.nd != nil {
		line, err := s.nd.next()
		switch {
		case err == nil:
			return line, nil
		case err == io.EOF:
			s.setTrailer(trailerFromHeader(s.resp.Trailer))
			switch s.resp.Trailer.Get(StreamEndTrailer) {
			case "ok":
				return nil, io.EOF
			case "error":
				e, _ := parseStreamProblem([]byte(s.resp.Trailer.Get(ErrorTrailer)))
				return nil, e
			}
			return nil, s.cut("without its " + StreamEndTrailer + " trailer")
		}
		return nil, s.readError(err)
	}
	for {
		event, data, err := s.sse.next()
		if err == io.EOF {
			return nil, s.cut("without its end event")
		}
		if err != nil {
			return nil, s.readError(err)
		}
		switch event {
		case "message":
			return data, nil
		case "end":
			var end sseEnd
			if err := json.Unmarshal(data, &end); err != nil {
				return nil, errs.Newf(errs.Internal, "http: the end event of %s/%s is not {\"trailer\": {…}}: %v", s.service, s.endpoint, err)
			}
			s.setTrailer(end.Trailer)
			return nil, io.EOF
		case "error":
			e, trailer := parseStreamProblem(data)
			s.setTrailer(trailer)
			return nil, e
		}
		// Another event type: not Ferry's, skipped.
	}
}

func (s *serverStream) cut(how string) error {
	if s.ctx.Err() != nil {
		return s.transportError(s.ctx.Err())
	}
	return errs.Newf(errs.Unavailable, "http: the stream of %s/%s was cut off: it ended %s", s.service, s.endpoint, how)
}

func (s *serverStream) readError(err error) error {
	if errors.Is(err, errTooLarge) {
		return errs.Newf(errs.ResourceExhausted, "http: a message of %s/%s exceeds the client's %d-byte limit (WithMaxReplyBytes)", s.service, s.endpoint, s.c.maxReply)
	}
	if s.ctx.Err() == nil && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
		return s.cut("in the middle")
	}
	return s.transportError(err)
}

func (s *serverStream) transportError(err error) error {
	if s.closed.Load() {
		return errs.Newf(errs.Canceled, "http: the stream of %s/%s was closed by the caller", s.service, s.endpoint)
	}
	return transportError(s.ctx, s.service, s.endpoint, err)
}

// end ends the stream with err (io.EOF for a clean end) and releases its
// connection: read to its end, so that it is reused, after a clean end.
func (s *serverStream) end(err error) error {
	s.endErr = err
	if s.resp != nil {
		if err == io.EOF {
			_, _ = io.Copy(io.Discard, io.LimitReader(s.resp.Body, 4<<10))
		}
		_ = s.resp.Body.Close()
	}
	s.cancel()
	return err
}

// WithClientStreamWindow sets how many messages a server may send on a
// client or bidirectional stream ahead of what the caller has received
// (default DefaultStreamWindow, 32; n <= 0 keeps it). The stream holds at
// most this many messages of at most WithMaxReplyBytes each.
func WithClientStreamWindow(n int) ClientOption {
	return func(c *clientConfig) {
		if n > 0 {
			c.streamWindow = min(n, maxCredit)
		}
	}
}

// wsClientStream is the caller's side of a client or bidirectional stream
// on a WebSocket. A reader goroutine reads the server's envelopes all the
// time and queues them for Recv, at most window messages, so that the
// server's credit reaches Send while the application only sends. With
// credits (the server agreed to WebSocketProtocol, as Ferry's does) the
// server may send only what it has credit for, which Recv grants back half
// a window at a time through a writer goroutine (creditLoop); without, the
// reader stops reading while the queue is full.
type wsClientStream struct {
	streamMD
	conn              *websocket.Conn
	ctx               context.Context
	cancel            context.CancelFunc
	stop              func() bool
	service, endpoint string
	limit             int64
	credits           bool
	window            int

	sendMu    sync.Mutex // Send and CloseSend
	closeSent bool
	buf       []byte
	writeMu   sync.Mutex // serializes what is written: Send's, CloseSend's and creditLoop's frames
	closed    atomic.Bool
	ended     atomic.Bool // Recv saw the end

	qmu        sync.Mutex // guards the fields below, up to sendCredit
	q          []wsEnvelope
	qhead      int
	msgs       int   // msg envelopes in q
	readErr    error // after the queue: why the reader stopped (a read error, or an *errs.Error)
	peerEnded  bool  // the server sent its end, or the reader stopped
	avail      int   // credit granted to the server and not yet used
	taken      int   // messages Recv took since the last grant
	grant      int   // credit Recv granted, for creditLoop to send
	sendCredit int   // messages the server lets Send send

	arrived    chan struct{} // wakes Recv
	space      chan struct{} // wakes the reader: Recv made room (no credits)
	credited   chan struct{} // wakes Send: credit, or the server's end
	granted    chan struct{} // wakes creditLoop
	readerDone chan struct{}
	writerDone chan struct{}

	// Recv's side.
	gotHeader bool
	endErr    error
}

// wsEnvelope is one envelope the server sent: its member and value.
type wsEnvelope struct {
	member string
	value  json.RawMessage
}

func (c *Client) dialStream(ctx context.Context, call *transport.Call, e *endpointURL) (transport.ClientStream, error) {
	hdr := http.Header{}
	if err := addMetadata(hdr, call.Request); err != nil {
		return nil, err
	}
	if v, ok := timeoutValue(ctx); ok {
		hdr[TimeoutHeader] = []string{v}
	}
	ctx, cancel := context.WithCancel(ctx)
	conn, resp, err := websocket.Dial(ctx, e.full, &websocket.DialOptions{
		HTTPClient:   c.hc,
		HTTPHeader:   hdr,
		Subprotocols: []string{WebSocketProtocol},
	})
	if err != nil {
		cancel()
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols && resp.Body != nil {
			// Refused before the stream started: an ordinary error
			// response (the WebSocket library keeps its first KiB).
			data, _ := io.ReadAll(resp.Body)
			return nil, parseProblem(resp.StatusCode, resp.Header.Get("Content-Type"), data)
		}
		return nil, transportError(ctx, call.Service, call.Endpoint, err)
	}
	conn.SetReadLimit(c.maxReply + envelopeOverhead)
	s := &wsClientStream{conn: conn, ctx: ctx, cancel: cancel, service: call.Service, endpoint: call.Endpoint, limit: c.maxReply,
		credits: conn.Subprotocol() == WebSocketProtocol, window: c.streamWindow, avail: c.streamWindow,
		arrived: make(chan struct{}, 1), space: make(chan struct{}, 1), credited: make(chan struct{}, 1), granted: make(chan struct{}, 1),
		readerDone: make(chan struct{}), writerDone: make(chan struct{})}
	if s.credits {
		// The client's window, right after opening.
		if err := conn.Write(ctx, websocket.MessageText, creditFrame(nil, s.window)); err != nil {
			_ = conn.CloseNow()
			cancel()
			return nil, transportError(ctx, call.Service, call.Endpoint, err)
		}
	}
	s.stop = context.AfterFunc(ctx, func() { _ = conn.CloseNow() })
	go s.readLoop()
	if s.credits {
		go s.creditLoop()
	} else {
		close(s.writerDone)
	}
	return s, nil
}

// creditFrame appends {"credit":n} to b.
func creditFrame(b []byte, n int) []byte {
	return append(strconv.AppendInt(append(b, `{"credit":`...), int64(n), 10), '}')
}

// readLoop reads the server's envelopes until the connection closes or
// the server breaks the protocol.
func (s *wsClientStream) readLoop() {
	defer close(s.readerDone)
	for {
		_, frame, err := s.conn.Read(s.ctx)
		if err != nil {
			s.stopReading(err)
			return
		}
		member, value, err := decodeServerEnvelope(frame)
		if err == nil && member == "credit" {
			err = s.addSendCredit(value)
		}
		if err == nil && member != "credit" {
			err = s.push(wsEnvelope{member, value})
		}
		if err != nil {
			s.stopReading(err)
			_ = s.conn.CloseNow()
			return
		}
	}
}

// addSendCredit takes a credit envelope's grant.
func (s *wsClientStream) addSendCredit(v json.RawMessage) error {
	if !s.credits {
		return errs.Newf(errs.Internal, "http: the server of %s/%s sent a credit envelope without the %q subprotocol", s.service, s.endpoint, WebSocketProtocol)
	}
	n, err := parseCredit(v)
	if err != nil {
		return errs.Newf(errs.Internal, "http: the server of %s/%s sent a bad credit envelope: %v", s.service, s.endpoint, err)
	}
	s.qmu.Lock()
	s.sendCredit = min(s.sendCredit+n, maxCredit)
	s.qmu.Unlock()
	wake(s.credited)
	return nil
}

// push queues an envelope for Recv. A message beyond the credit granted
// breaks the protocol (with credits); without credits, the reader waits
// while window messages are queued.
func (s *wsClientStream) push(env wsEnvelope) error {
	s.qmu.Lock()
	if env.member == "msg" {
		if s.credits {
			if s.avail <= 0 {
				s.qmu.Unlock()
				return errs.Newf(errs.Internal, "http: the server of %s/%s sent a message beyond the credit granted (a window of %d messages)", s.service, s.endpoint, s.window)
			}
			s.avail--
		}
		for !s.credits && s.msgs >= s.window {
			s.qmu.Unlock()
			select {
			case <-s.space:
			case <-s.ctx.Done():
				return s.ctx.Err()
			}
			s.qmu.Lock()
		}
		s.msgs++
	}
	s.q = append(s.q, env)
	if env.member == "end" || env.member == "error" {
		s.peerEnded = true
	}
	s.qmu.Unlock()
	wake(s.arrived)
	wake(s.credited)
	return nil
}

// stopReading records why the reader stopped, after what it queued.
func (s *wsClientStream) stopReading(err error) {
	s.qmu.Lock()
	if s.readErr == nil {
		s.readErr = err
	}
	s.peerEnded = true
	s.qmu.Unlock()
	wake(s.arrived)
	wake(s.credited)
}

// next returns the next envelope the server sent, waiting for it, and
// grants credit as messages are taken: half a window at a time. Without
// one, it returns why none will come.
func (s *wsClientStream) next() (wsEnvelope, error) {
	for {
		if s.ctx.Err() != nil {
			return wsEnvelope{}, s.readError(s.ctx.Err())
		}
		s.qmu.Lock()
		if s.qhead < len(s.q) {
			env := s.q[s.qhead]
			s.q[s.qhead] = wsEnvelope{}
			s.qhead++
			if s.qhead == len(s.q) {
				s.q, s.qhead = s.q[:0], 0
			}
			grant := 0
			if env.member == "msg" {
				s.msgs--
				s.taken++
				if s.credits && s.taken >= max(1, s.window/2) {
					grant, s.taken = s.taken, 0
					s.avail += grant
					s.grant += grant
				}
			}
			s.qmu.Unlock()
			if grant > 0 {
				wake(s.granted)
			}
			if !s.credits {
				wake(s.space)
			}
			return env, nil
		}
		readErr := s.readErr
		s.qmu.Unlock()
		if readErr != nil {
			if e, ok := readErr.(*errs.Error); ok {
				return wsEnvelope{}, e
			}
			return wsEnvelope{}, s.readError(readErr)
		}
		<-s.arrived
	}
}

// creditLoop sends the credit Recv grants, so that Recv never waits for a
// write. Grants made while a credit envelope is on its way are added up
// into the next one.
func (s *wsClientStream) creditLoop() {
	defer close(s.writerDone)
	var b []byte
	for {
		select {
		case <-s.granted:
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
		b = creditFrame(b[:0], n)
		s.writeMu.Lock()
		err := s.conn.Write(s.ctx, websocket.MessageText, b)
		s.writeMu.Unlock()
		if err != nil {
			return // the connection broke: the reader sees it
		}
	}
}

// takeCredit waits, with credits, until the server lets one more message
// go, and takes that credit. Once the server ended the stream it returns
// io.EOF: Recv returns how it ended.
func (s *wsClientStream) takeCredit() error {
	for {
		s.qmu.Lock()
		switch {
		case s.peerEnded:
			s.qmu.Unlock()
			return s.sendError(nil)
		case !s.credits:
			s.qmu.Unlock()
			return nil
		case s.sendCredit > 0:
			s.sendCredit--
			s.qmu.Unlock()
			return nil
		}
		s.qmu.Unlock()
		select {
		case <-s.credited:
		case <-s.ctx.Done():
			return s.sendError(s.ctx.Err())
		}
	}
}

// sendError is what Send returns once it cannot send: io.EOF unless the
// caller closed the stream or its context ended.
func (s *wsClientStream) sendError(err error) error {
	switch {
	case s.closed.Load():
		return transport.ErrStreamClosed
	case s.ctx.Err() != nil:
		if err == nil {
			err = s.ctx.Err()
		}
		return transportError(s.ctx, s.service, s.endpoint, err)
	}
	return io.EOF
}

// Send implements transport.ClientStream. It blocks while the server has
// given no credit (with credits) and while the connection is full.
func (s *wsClientStream) Send(m any) error {
	if s.closed.Load() {
		return transport.ErrStreamClosed
	}
	out, err := codec.JSON.Marshal(m)
	if err != nil {
		return errs.Newf(errs.InvalidArgument, "http: encoding a message for %s/%s: %v", s.service, s.endpoint, err)
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closeSent {
		return transport.ErrStreamClosed
	}
	if err := s.takeCredit(); err != nil {
		return err
	}
	b := append(append(append(s.buf[:0], `{"msg":`...), out...), '}')
	if cap(b) <= maxPooledBuf {
		s.buf = b
	}
	return s.write(b)
}

// write sends one frame. Once the stream has broken or ended it returns
// io.EOF: Recv returns how it ended.
func (s *wsClientStream) write(b []byte) error {
	if s.ended.Load() {
		return io.EOF
	}
	s.writeMu.Lock()
	err := s.conn.Write(s.ctx, websocket.MessageText, b)
	s.writeMu.Unlock()
	if err != nil {
		return s.sendError(err)
	}
	return nil
}

var endFrame = []byte(`{"end":true}`)

// CloseSend implements transport.ClientStream.
func (s *wsClientStream) CloseSend() error {
	if s.closed.Load() {
		return transport.ErrStreamClosed
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closeSent {
		return nil
	}
	s.closeSent = true
	if err := s.write(endFrame); err != nil && err != io.EOF {
		return err
	}
	return nil
}

// Close implements transport.ClientStream: the WebSocket is closed at once,
// which the server sees as its handler's context canceled.
func (s *wsClientStream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stop()
	_ = s.conn.CloseNow()
	s.cancel()
	s.wait()
	return nil
}

// wait waits for the reader and the credit writer, once the stream's
// context ended.
func (s *wsClientStream) wait() {
	<-s.readerDone
	<-s.writerDone
}

// Recv implements transport.ClientStream.
func (s *wsClientStream) Recv(m any) error {
	if s.closed.Load() {
		return transport.ErrStreamClosed
	}
	if s.endErr != nil {
		return s.endErr
	}
	for {
		env, err := s.next()
		if err != nil {
			return s.end(err, false)
		}
		switch env.member {
		case "header":
			if !s.gotHeader {
				var md transport.Metadata
				if err := json.Unmarshal(env.value, &md); err != nil {
					return s.end(errs.Newf(errs.Internal, "http: the header envelope of %s/%s: %v", s.service, s.endpoint, err), false)
				}
				s.setHeader(md.Clone())
				s.gotHeader = true
			}
			continue
		case "msg":
			s.headerDone()
			if err := codec.JSON.Unmarshal(env.value, m); err != nil {
				return s.end(errs.Newf(errs.Internal, "http: decoding a message of %s/%s: %v", s.service, s.endpoint, err), false)
			}
			return nil
		case "end":
			s.headerDone()
			var end sseEnd
			if err := json.Unmarshal(env.value, &end); err != nil {
				return s.end(errs.Newf(errs.Internal, "http: the end envelope of %s/%s is not {\"trailer\": {…}}: %v", s.service, s.endpoint, err), false)
			}
			s.setTrailer(end.Trailer)
			return s.end(io.EOF, true)
		default: // "error"
			s.headerDone()
			e, trailer := parseStreamProblem(env.value)
			s.setTrailer(trailer)
			return s.end(e, true)
		}
	}
}

func (s *wsClientStream) headerDone() {
	if !s.gotHeader {
		s.gotHeader = true
		s.setHeader(transport.Metadata{})
	}
}

func (s *wsClientStream) readError(err error) error {
	switch {
	case s.closed.Load():
		return transport.ErrStreamClosed
	case s.ctx.Err() != nil:
		return transportError(s.ctx, s.service, s.endpoint, err)
	case errors.Is(err, websocket.ErrMessageTooBig):
		return errs.Newf(errs.ResourceExhausted, "http: a message of %s/%s exceeds the client's %d-byte limit (WithMaxReplyBytes)", s.service, s.endpoint, s.limit)
	case websocket.CloseStatus(err) == websocket.StatusMessageTooBig:
		return errs.Newf(errs.ResourceExhausted, "http: the server of %s/%s closed the stream: a message was too large", s.service, s.endpoint)
	}
	return errs.Newf(errs.Unavailable, "http: the stream of %s/%s was cut off: %v", s.service, s.endpoint, err)
}

// end ends the stream with err (io.EOF for a clean end); after the
// server's last envelope (clean) the WebSocket is closed with a handshake.
func (s *wsClientStream) end(err error, clean bool) error {
	s.endErr = err
	s.ended.Store(true)
	s.stop()
	if clean {
		_ = s.conn.Close(websocket.StatusNormalClosure, "")
	} else {
		_ = s.conn.CloseNow()
	}
	s.cancel()
	s.wait()
	return err
}
