package http

import (
	"context"
	"io"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/internal/timeoutms"
	"github.com/ferry-go/ferry/transport"
)

// noTimeoutCap is the cap given to timeoutms.Parse for streams: a stream
// keeps the deadline its caller asked for (WithMaxTimeout bounds unary
// calls; a stream that asks for none has none at all).
const noTimeoutCap = time.Duration(math.MaxInt64)

// streamContext returns the context of a stream served for r: parent's,
// canceled by the returned function too, and at the deadline the caller
// sent in Ferry-Timeout-Ms (none without the header). It answers r and
// returns ok false when the header is malformed.
func streamContext(w http.ResponseWriter, r *http.Request, parent context.Context) (ctx context.Context, cancel context.CancelCauseFunc, deadline time.Time, ok bool) {
	var d time.Duration
	if v := r.Header[TimeoutHeader]; len(v) > 0 {
		if d, ok = timeoutms.Parse(v[0], noTimeoutCap); !ok {
			badTimeout(w, v[0])
			return nil, nil, time.Time{}, false
		}
		deadline = time.Now().Add(d)
	}
	ctx, cancel = context.WithCancelCause(parent)
	if !deadline.IsZero() {
		var stop context.CancelFunc
		ctx, stop = context.WithDeadline(ctx, deadline)
		base := cancel
		cancel = func(cause error) { base(cause); stop() }
	}
	return ctx, cancel, deadline, true
}

// streamErr is what a stream's Send or Recv returns once its context has
// ended: the cause as an *errs.Error (Canceled, DeadlineExceeded, or the
// transport's own reason).
func streamErr(ctx context.Context) error {
	return errs.FromError(context.Cause(ctx))
}

// serveServerStream serves a server-streaming endpoint on rt: POST with
// the request in the body, or GET with it in the query string (what a
// browser's EventSource sends). The replies go out as Server-Sent Events
// or NDJSON, chosen by Accept.
func (rt *route) serveServerStream(w http.ResponseWriter, r *http.Request) {
	h := rt.h
	if r.Method == http.MethodHead {
		w.Header().Set("Allow", "GET, POST")
		writeProblem(w, http.StatusMethodNotAllowed, errs.Newf(errs.Unimplemented,
			"%s/%s is a server stream: GET or POST it", h.service, rt.ep.Name))
		return
	}
	if isUpgrade(r) {
		writeProblem(w, http.StatusBadRequest, errs.Newf(errs.InvalidArgument,
			"%s/%s is a server stream, sent as Server-Sent Events or NDJSON, not over a WebSocket", h.service, rt.ep.Name).
			WithDetails(errs.Detail{Field: "Upgrade", Reason: "not a WebSocket endpoint"}))
		return
	}
	format, ct := negotiate(r.Header["Accept"])
	if format == 0 {
		writeProblem(w, http.StatusNotAcceptable, errs.Newf(errs.InvalidArgument,
			"%s/%s is a server stream, sent as %s (Server-Sent Events) or %s (newline-delimited JSON, also as %s); Accept %q allows neither",
			h.service, rt.ep.Name, SSEContentType, NDJSONContentType, JSONLContentType, errs.Clip(r.Header.Get("Accept"))).
			WithDetails(errs.Detail{Field: "Accept", Reason: "not acceptable"}))
		return
	}
	cod, ok := rt.bodyCodec(w, r)
	if !ok {
		return
	}
	// The stream ends when the caller goes away (the request's context)
	// or its own deadline passes; there is no default deadline.
	ctx, cancel, deadline, ok := streamContext(w, r, r.Context())
	if !ok {
		return
	}
	defer cancel(nil)

	// Admission for decoding the request, as for a unary call, released
	// once it is decoded: a stream does not hold a slot for its life (see
	// docs/ARCHITECTURE.md, Streams). Waiting for room is bounded by the
	// default timeout even when the stream has no deadline.
	var size int64
	if rt.body {
		size = h.maxBody
		if r.ContentLength >= 0 {
			size = min(r.ContentLength, h.maxBody)
		}
	}
	actx, acancel := context.WithTimeout(ctx, h.defTimeout)
	err := h.srv.Admit(actx, size)
	acancel()
	if err != nil {
		writeError(w, err)
		return
	}
	req := rt.ep.NewRequest()
	ok = rt.readRequest(w, r, cod, req)
	h.srv.Release(size)
	if !ok {
		return
	}

	ts := h.streams.add(cancel, nil)
	if ts == nil {
		writeError(w, errStopping)
		return
	}
	defer h.streams.remove(ts)

	// The server's timeouts are for unary calls: a stream's connection
	// reads nothing more, and writes until the stream's deadline (plus the
	// write timeout) or, without one, for as long as the caller reads.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	switch {
	case deadline.IsZero():
		_ = rc.SetWriteDeadline(time.Time{})
	case h.writeAfter > 0:
		_ = rc.SetWriteDeadline(deadline.Add(h.writeAfter))
	}

	st := &httpStream{w: w, rc: rc, ctx: ctx, format: format, ct: ct}
	st.call = transport.Call{
		Service:    h.service,
		Endpoint:   rt.ep.Name,
		Kind:       transport.HTTP,
		Request:    Header(r.Header),
		Reply:      Header(w.Header()),
		Peer:       r.RemoteAddr,
		Method:     r.Method,
		Route:      rt.path,
		Target:     r.URL.Path,
		TLS:        r.TLS != nil,
		Deadline:   deadline,
		StreamKind: transport.ServerStreaming,
		Stream:     st,
	}
	_, err = rt.ep.Handler(transport.NewCallContext(ctx, &st.call), req)
	st.end(err)
}

var errStopping = errs.New(errs.Unavailable, "the server is stopping")

// httpStream is the transport.Stream of a server stream over plain HTTP.
type httpStream struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	ctx    context.Context
	call   transport.Call
	format StreamFormat
	ct     string // the Content-Type answered

	mu      sync.Mutex
	started bool // the head is written
	ended   bool
	buf     []byte
}

// Recv implements transport.Stream: a server stream's one request was the
// handler's argument.
func (s *httpStream) Recv(any) error {
	if s.ctx.Err() != nil {
		return streamErr(s.ctx)
	}
	return io.EOF
}

// Send implements transport.Stream. It blocks while the connection is full.
func (s *httpStream) Send(m any) error {
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
		return streamErr(s.ctx)
	}
	if !s.started {
		s.head()
	}
	b := s.buf[:0]
	if s.format == SSE {
		b = appendSSE(b, "", out)
	} else {
		b = append(append(b, oneLine(out)...), '\n')
	}
	err = s.write(b)
	if cap(b) <= maxPooledBuf {
		s.buf = b[:0]
	}
	return err
}

// write writes b and flushes it to the caller.
func (s *httpStream) write(b []byte) error {
	_, err := s.w.Write(b)
	if err == nil {
		err = s.rc.Flush()
	}
	if err != nil {
		if s.ctx.Err() != nil {
			return streamErr(s.ctx)
		}
		return errs.Newf(errs.Unavailable, "http: writing the stream of %s/%s: %v", s.call.Service, s.call.Endpoint, err)
	}
	return nil
}

// head writes the status line and headers: the reply metadata the handler
// set so far goes with them.
func (s *httpStream) head() {
	s.started = true
	hdr := s.w.Header()
	hdr.Del("Content-Length")
	hdr.Set("Content-Type", s.ct)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if s.format == SSE {
		hdr.Set("X-Accel-Buffering", "no") // nginx: do not hold events back
	} else {
		hdr["Trailer"] = []string{StreamEndTrailer, ErrorTrailer}
	}
	s.w.WriteHeader(http.StatusOK)
}

// end ends the stream with the handler's result: an ordinary error
// response when nothing was sent yet, else the end of the stream in its
// format.
func (s *httpStream) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	if !s.started && err != nil {
		// The stream never started: the error is answered as a unary
		// call's, with the handler's trailer as HTTP trailers.
		s.setTrailers()
		writeError(s.w, err)
		return
	}
	if !s.started {
		s.head()
	}
	if s.format == SSE {
		var b []byte
		if err != nil {
			b = appendSSE(s.buf[:0], "error", streamProblem(err, s.call.Trailer))
		} else {
			end, _ := codec.MarshalJSON(sseEnd{Trailer: s.call.Trailer})
			b = appendSSE(s.buf[:0], "end", end)
		}
		_ = s.write(b)
		return
	}
	hdr := s.w.Header()
	s.setTrailers()
	if err != nil {
		hdr.Set(StreamEndTrailer, "error")
		hdr.Set(ErrorTrailer, string(asciiJSON(streamProblem(err, nil))))
		return
	}
	hdr.Set(StreamEndTrailer, "ok")
}

// setTrailers puts the handler's trailer in the response's HTTP trailers;
// a key or value HTTP cannot carry is left out.
func (s *httpStream) setTrailers() { setTrailers(s.w.Header(), s.call.Trailer) }

// setTrailers declares md as HTTP trailers of the response whose header is
// hdr (net/http sends them after the body, chunked); a key or value HTTP
// cannot carry is left out.
func setTrailers(hdr http.Header, md transport.Metadata) {
	for k, vs := range md {
		if sendableTrailer(k, vs) {
			hdr[http.TrailerPrefix+http.CanonicalHeaderKey(k)] = vs
		}
	}
}

// sseEnd is the data of the "end" event of an SSE stream.
type sseEnd struct {
	Trailer transport.Metadata `json:"trailer"`
}

// appendSSE appends one event to b: its type (none for a message) and its
// data, one "data:" line per line of data.
func appendSSE(b []byte, event string, data []byte) []byte {
	if event != "" {
		b = append(append(append(b, "event: "...), event...), '\n')
	}
	for {
		i := 0
		for i < len(data) && data[i] != '\n' && data[i] != '\r' {
			i++
		}
		b = append(append(append(b, "data: "...), data[:i]...), '\n')
		if i == len(data) {
			break
		}
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(b, '\n')
}

// isUpgrade reports whether r asks to switch to the WebSocket protocol.
func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header["Connection"], "upgrade") && headerHasToken(r.Header["Upgrade"], "websocket")
}

// headerHasToken reports whether the comma-separated values hold token,
// whatever its case.
func headerHasToken(vals []string, token string) bool {
	for _, v := range vals {
		for len(v) > 0 {
			var t string
			t, v, _ = cutComma(v)
			if equalFoldTrim(t, token) {
				return true
			}
		}
	}
	return false
}

func cutComma(s string) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func equalFoldTrim(s, token string) bool {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	if len(s) != len(token) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != token[i] {
			return false
		}
	}
	return true
}

// streamSet tracks the streams a handler serves, so that Stop can wait for
// them and cut them off: http.Server.Shutdown does not know hijacked
// (WebSocket) connections, and cancels no handler.
type streamSet struct {
	mu     sync.Mutex
	open   map[*trackedStream]struct{}
	closed bool // cut off: no new stream starts
	idle   chan struct{}
}

type trackedStream struct {
	cancel context.CancelCauseFunc
	conn   interface{ CloseNow() error } // the WebSocket, nil for SSE and NDJSON
}

// add tracks a stream; nil once the set was cut off.
func (s *streamSet) add(cancel context.CancelCauseFunc, conn interface{ CloseNow() error }) *trackedStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.open == nil {
		s.open = map[*trackedStream]struct{}{}
	}
	ts := &trackedStream{cancel: cancel, conn: conn}
	s.open[ts] = struct{}{}
	return ts
}

func (s *streamSet) remove(ts *trackedStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, ts)
	if len(s.open) == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// wait waits until no stream is open, or ctx ends.
func (s *streamSet) wait(ctx context.Context) error {
	s.mu.Lock()
	if len(s.open) == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cutOff refuses new streams and ends the open ones: their handlers'
// contexts are canceled and their WebSockets closed.
func (s *streamSet) cutOff() {
	s.mu.Lock()
	s.closed = true
	open := make([]*trackedStream, 0, len(s.open))
	for ts := range s.open {
		open = append(open, ts)
	}
	s.mu.Unlock()
	for _, ts := range open {
		ts.cancel(errStopping)
		if ts.conn != nil {
			_ = ts.conn.CloseNow()
		}
	}
}
