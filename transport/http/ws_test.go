package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
)

// dialWS opens a raw WebSocket to base+path, as a browser or wscat would.
func dialWS(t *testing.T, base, path string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	if opts == nil {
		opts = &websocket.DialOptions{}
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	opts.HTTPClient = &http.Client{Transport: tr}
	conn, resp, err := websocket.Dial(testCtx(t), "ws"+strings.TrimPrefix(base, "http")+path, opts)
	if err != nil {
		t.Fatalf("dial %s: %v (response %v)", path, err, resp)
	}
	t.Cleanup(func() { _ = conn.CloseNow() })
	return conn
}

func writeFrame(t *testing.T, conn *websocket.Conn, frame string) {
	t.Helper()
	if err := conn.Write(testCtx(t), websocket.MessageText, []byte(frame)); err != nil {
		t.Fatalf("write %s: %v", frame, err)
	}
}

func readFrame(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	_, b, err := conn.Read(testCtx(t))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// closeStatus reads until the server closes and returns its close code.
func closeStatus(t *testing.T, conn *websocket.Conn) websocket.StatusCode {
	t.Helper()
	for {
		_, b, err := conn.Read(testCtx(t))
		if err != nil {
			return websocket.CloseStatus(err)
		}
		t.Logf("frame before the close: %s", b)
	}
}

func TestWebSocketWire(t *testing.T) {
	_, base := start(t, shop())
	// Without a subprotocol, as browsers and wscat connect.
	conn := dialWS(t, base, "/shop/Chat", nil)
	if p := conn.Subprotocol(); p != "" {
		t.Errorf("subprotocol = %q, want none when none was asked", p)
	}
	writeFrame(t, conn, `{"msg":{"seq":1,"customer":"c-1"}}`)
	if got, want := readFrame(t, conn), `{"header":{"x-chat":["1"]}}`; got != want {
		t.Errorf("first frame = %s, want %s", got, want)
	}
	if got, want := readFrame(t, conn), `{"msg":{"seq":1,"customer":"c-1"}}`; got != want {
		t.Errorf("echo = %s, want %s", got, want)
	}
	writeFrame(t, conn, ` { "end" : true } `)
	if got, want := readFrame(t, conn), `{"end":{"trailer":{"x-echoed":["1"]}}}`; got != want {
		t.Errorf("last frame = %s, want %s", got, want)
	}
	if code := closeStatus(t, conn); code != websocket.StatusNormalClosure {
		t.Errorf("close = %v, want normal closure", code)
	}

	// With the subprotocol: agreed, and the server's window comes first. A
	// client stream's one reply is a message before the end, which needs
	// no credit from the caller.
	conn = dialWS(t, base, "/shop/Sum", &websocket.DialOptions{Subprotocols: []string{fhttp.WebSocketProtocol}})
	if p := conn.Subprotocol(); p != fhttp.WebSocketProtocol {
		t.Errorf("subprotocol = %q, want %s", p, fhttp.WebSocketProtocol)
	}
	if got, want := readFrame(t, conn), `{"credit":32}`; got != want {
		t.Errorf("first frame = %s, want %s", got, want)
	}
	writeFrame(t, conn, `{"msg":{"seq":2}}`)
	writeFrame(t, conn, `{"msg":{"seq":3}}`)
	writeFrame(t, conn, `{"end":true}`)
	if got, want := readFrame(t, conn), `{"msg":{"seq":5,"customer":""}}`; got != want {
		t.Errorf("reply = %s, want %s", got, want)
	}
	if got, want := readFrame(t, conn), `{"end":{"trailer":null}}`; got != want {
		t.Errorf("end = %s, want %s", got, want)
	}
}

// TestWebSocketBadFrames: a frame that breaks the envelope protocol ends
// the stream with an error envelope saying what was wrong, then a close —
// never a panic or a hang.
func TestWebSocketBadFrames(t *testing.T) {
	_, base := start(t, shop(), fhttp.WithMaxBodyBytes(1024))
	tests := []struct {
		name   string
		frames []string
		code   string
		detail string
		close  websocket.StatusCode
	}{
		{"not JSON", []string{`hello`}, "invalid_argument", "frame 1: not a JSON object", websocket.StatusPolicyViolation},
		{"not an object", []string{`[1,2]`}, "invalid_argument", "frame 1: not a JSON object", websocket.StatusPolicyViolation},
		{"empty", []string{``}, "invalid_argument", "frame 1: empty frame", websocket.StatusPolicyViolation},
		{"two members", []string{`{"msg":{},"end":true}`}, "invalid_argument", `one member`, websocket.StatusPolicyViolation},
		{"unknown member", []string{`{"mgs":{}}`}, "invalid_argument", `unknown envelope member "mgs"`, websocket.StatusPolicyViolation},
		{"end not true", []string{`{"end":1}`}, "invalid_argument", `"end" is 1, not true`, websocket.StatusPolicyViolation},
		{"credit zero", []string{`{"credit":0}`}, "invalid_argument", `frame 1: "credit" is 0 (zero)`, websocket.StatusPolicyViolation},
		{"credit negative", []string{`{"credit":-3}`}, "invalid_argument", `"credit" is -3 (negative)`, websocket.StatusPolicyViolation},
		{"credit not an integer", []string{`{"credit":1.5}`}, "invalid_argument", `"credit" is 1.5 (not an integer)`, websocket.StatusPolicyViolation},
		{"credit too large", []string{`{"credit":4294967296}`}, "invalid_argument", `"credit" is 4294967296 (over 2147483647)`, websocket.StatusPolicyViolation},
		{"credit without the subprotocol", []string{`{"credit":8}`}, "invalid_argument", `frame 1: a credit envelope on a WebSocket opened without the "ferry.v1" subprotocol`, websocket.StatusPolicyViolation},
		// Drain waits for its context once it has read the end, so the
		// frame after it is seen before the handler returns.
		{"after the end", []string{`{"end":true}`, `{"msg":{}}`}, "invalid_argument", "frame 2: a message or end after", websocket.StatusPolicyViolation},
		{"bad message", []string{`{"msg":{"seq":"one"}}`}, "invalid_argument", "decoding a message of shop/Chat", websocket.StatusNormalClosure},
		{"oversized", []string{`{"msg":{"customer":"` + strings.Repeat("x", 3000) + `"}}`}, "resource_exhausted", "message 1 exceeds the 1024-byte limit", websocket.StatusMessageTooBig},
		{"oversized message in a small frame", []string{`{"msg":"` + strings.Repeat("x", 1100) + `"}`}, "resource_exhausted", "exceeds the 1024-byte limit", websocket.StatusMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/shop/Chat"
			if tt.name == "after the end" {
				path = "/shop/Drain"
			}
			conn := dialWS(t, base, path, nil)
			for _, f := range tt.frames {
				writeFrame(t, conn, f)
			}
			frame := readFrame(t, conn)
			if strings.HasPrefix(frame, `{"header":`) {
				frame = readFrame(t, conn)
			}
			var env struct {
				Error *problemBody `json:"error"`
			}
			if err := json.Unmarshal([]byte(frame), &env); err != nil || env.Error == nil {
				t.Fatalf("frame %s, want an error envelope", frame)
			}
			if env.Error.Code != tt.code || !strings.Contains(env.Error.Detail, tt.detail) {
				t.Errorf("error = %+v, want %s naming %q", env.Error, tt.code, tt.detail)
			}
			if code := closeStatus(t, conn); code != tt.close {
				t.Errorf("close = %v, want %v", code, tt.close)
			}
		})
	}
}

func TestWebSocketOrigin(t *testing.T) {
	dial := func(base, origin string) (int, error) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		conn, resp, err := websocket.Dial(testCtx(t), base+"/shop/Chat", &websocket.DialOptions{
			HTTPClient: &http.Client{Transport: tr}, HTTPHeader: http.Header{"Origin": {origin}}})
		if err != nil {
			if resp == nil {
				return 0, err
			}
			return resp.StatusCode, nil
		}
		_ = conn.CloseNow()
		return http.StatusSwitchingProtocols, nil
	}
	_, base := start(t, shop())
	host := strings.TrimPrefix(base, "http://")
	for origin, want := range map[string]int{"http://" + host: 101, "https://evil.example": 403} {
		if got, err := dial(base, origin); got != want {
			t.Errorf("Origin %s: status %d (%v), want %d", origin, got, err, want)
		}
	}
	_, base = start(t, shop(), fhttp.WithWebSocketOrigins("*.example"))
	if got, err := dial(base, "https://app.example"); got != 101 {
		t.Errorf("Origin app.example allowed by *.example: status %d (%v), want 101", got, err)
	}
}

// holder serves Hold, a bidi stream and Wait, a server stream: each
// reports its context's deadline, then waits for its context to end and
// reports why.
type holder struct {
	deadline chan bool
	ended    chan error
}

func newHolder() (*server.Server, *holder) {
	h := &holder{deadline: make(chan bool, 4), ended: make(chan error, 4)}
	s := server.New("hold", server.WithLogger(quiet))
	wait := func(ctx context.Context, send func() error) error {
		_, ok := ctx.Deadline()
		h.deadline <- ok
		if err := send(); err != nil {
			return err
		}
		<-ctx.Done()
		h.ended <- ctx.Err()
		return ctx.Err()
	}
	server.HandleBidiStream(s, "Hold", func(ctx context.Context, st server.Stream[event, event]) error {
		return wait(ctx, func() error { return st.Send(&event{}) })
	})
	server.HandleServerStream(s, "Wait", func(ctx context.Context, _ *event, out server.Sender[event]) error {
		return wait(ctx, func() error { return out.Send(&event{}) })
	})
	return s, h
}

func (h *holder) expectEnd(t *testing.T, why string) {
	t.Helper()
	select {
	case err := <-h.ended:
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("handler context ended with %v after %s", err, why)
		}
	case <-testCtx(t).Done():
		t.Fatalf("handler context never ended after %s", why)
	}
}

func TestWebSocketContext(t *testing.T) {
	s, h := newHolder()
	_, base := start(t, s)
	c := newClient(t, base)
	hold := transport.StreamEndpoint[event, event]{Service: "hold", Name: "Hold", Kind: transport.BidiStreaming}

	// No deadline without one; the caller's Close cancels the handler.
	st, err := hold.Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if <-h.deadline {
		t.Error("a WebSocket stream opened without a deadline has one")
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	h.expectEnd(t, "the caller closed the stream")

	// The caller's deadline reaches the handler, and ends the stream.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err = hold.Open(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !<-h.deadline {
		t.Error("a WebSocket stream opened with a deadline has none")
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := st.Recv(); errs.CodeOf(err) != errs.Canceled {
		t.Errorf("Recv after cancel = %v, want canceled", err)
	}
	h.expectEnd(t, "the caller cancelled")
	if err := st.Send(&event{}); err == nil {
		t.Errorf("Send after the end = %v, want an error", err)
	}
}

// TestStopCutsOffStreams: Stop waits for open streams — a WebSocket, which
// http.Server.Shutdown does not track, and an NDJSON stream — until its
// context ends, then cancels their handlers.
func TestStopCutsOffStreams(t *testing.T) {
	s, h := newHolder()
	hs, base := start(t, s)
	c := newClient(t, base)
	bidi, err := transport.StreamEndpoint[event, event]{Service: "hold", Name: "Hold", Kind: transport.BidiStreaming}.Open(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	defer bidi.Close()
	ss, err := transport.StreamEndpoint[event, event]{Service: "hold", Name: "Wait", Kind: transport.ServerStreaming}.OpenServer(testCtx(t), c, &event{})
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	for _, st := range []interface{ Recv() (*event, error) }{bidi, ss} {
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- hs.Stop(ctx) }()
	// Both handlers are still waiting: Stop cannot have returned.
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned %v with two streams open", err)
	default:
	}
	cancel()
	h.expectEnd(t, "Stop's context ended")
	h.expectEnd(t, "Stop's context ended")
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Errorf("Stop = %v, want context.Canceled", err)
	}
	if _, err := bidi.Recv(); errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("WebSocket stream after the cut-off: %v, want unavailable", err)
	}
	if _, err := ss.Recv(); errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("NDJSON stream after the cut-off: %v, want unavailable", err)
	}
}

// TestStopWaitsForStreams: Stop returns once the open streams end by
// themselves.
func TestStopWaitsForStreams(t *testing.T) {
	release := make(chan struct{})
	s := server.New("slow", server.WithLogger(quiet))
	server.HandleBidiStream(s, "Chat", func(_ context.Context, st server.Stream[event, event]) error {
		<-release
		return st.Send(&event{Seq: 1})
	})
	hs := fhttp.NewServer("127.0.0.1:0")
	if err := hs.Start(testCtx(t), s); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, "http://"+hs.Addr().String())
	st, err := transport.StreamEndpoint[event, event]{Service: "slow", Name: "Chat", Kind: transport.BidiStreaming}.Open(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- hs.Stop(testCtx(t)) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned %v with a stream open", err)
	default:
	}
	close(release)
	if m, err := st.Recv(); err != nil || m.Seq != 1 {
		t.Errorf("Recv = %+v, %v; want the message sent while stopping", m, err)
	}
	if _, err := st.Recv(); err != io.EOF {
		t.Errorf("end = %v, want io.EOF", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Stop = %v, want nil", err)
	}
}

// TestStreamOutlivesServerTimeouts: the server's read and write timeouts
// are for unary calls; a stream without a deadline outlives them.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	s, h := newHolder()
	_, base := start(t, s, fhttp.WithReadTimeout(20*time.Millisecond), fhttp.WithWriteTimeout(20*time.Millisecond),
		fhttp.WithDefaultTimeout(20*time.Millisecond), fhttp.WithReadHeaderTimeout(20*time.Millisecond))
	for _, f := range []fhttp.StreamFormat{fhttp.NDJSON, fhttp.SSE} {
		c := newClient(t, base, fhttp.WithStreamFormat(f))
		ctx, cancel := context.WithCancel(context.Background())
		st, err := transport.StreamEndpoint[event, event]{Service: "hold", Name: "Wait", Kind: transport.ServerStreaming}.OpenServer(ctx, c, &event{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
		<-h.deadline
		// Ten times every server timeout: the stream must still be open.
		time.Sleep(200 * time.Millisecond)
		select {
		case err := <-h.ended:
			t.Errorf("%v: the stream ended (%v) after the server's timeouts passed", f, err)
		default:
		}
		cancel()
		h.expectEnd(t, "the caller cancelled")
		_ = st.Close()
	}
}
