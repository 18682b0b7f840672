package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
)

// steer serves Steer, a bidirectional stream whose handler does only what
// the test tells it — "recv" one message, "send" one — and reports each
// step, and its context's end, as an event.
type steer struct {
	cmds   chan string
	events chan string
}

func newSteer() (*server.Server, *steer) {
	st := &steer{cmds: make(chan string), events: make(chan string, 64)}
	s := server.New("steer", server.WithLogger(quiet))
	server.HandleBidiStream(s, "Steer", func(ctx context.Context, bs server.Stream[event, event]) error {
		for n := 0; ; {
			select {
			case <-ctx.Done():
				st.events <- "done: " + ctx.Err().Error()
				return ctx.Err()
			case cmd := <-st.cmds:
				switch cmd {
				case "recv":
					m, err := bs.Recv()
					if err != nil {
						st.events <- "recv: " + err.Error()
						continue
					}
					st.events <- fmt.Sprintf("recv %d", m.Seq)
				case "send":
					st.events <- "sending"
					err := bs.Send(&event{Seq: 100 + n})
					n++
					st.events <- fmt.Sprintf("sent %v", err)
				}
			}
		}
	})
	return s, st
}

// do tells the handler to do cmd and returns its next event.
func (st *steer) do(t *testing.T, cmd string) string {
	t.Helper()
	select {
	case st.cmds <- cmd:
	case <-testCtx(t).Done():
		t.Fatalf("the handler never took %q", cmd)
	}
	return st.event(t)
}

func (st *steer) event(t *testing.T) string {
	t.Helper()
	select {
	case ev := <-st.events:
		return ev
	case <-testCtx(t).Done():
		t.Fatal("no event from the handler")
		return ""
	}
}

// frames reads conn's frames in the background; a close comes as
// "close <code>".
func frames(conn *websocket.Conn) <-chan string {
	ch := make(chan string, 256)
	go func() {
		defer close(ch)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				ch <- fmt.Sprintf("close %d", websocket.CloseStatus(err))
				return
			}
			ch <- string(b)
		}
	}()
	return ch
}

func nextFrame(t *testing.T, in <-chan string) string {
	t.Helper()
	select {
	case f, ok := <-in:
		if !ok {
			t.Fatal("no more frames")
		}
		return f
	case <-testCtx(t).Done():
		t.Fatal("no frame from the server")
		return ""
	}
}

func expectFrame(t *testing.T, in <-chan string, want string) {
	t.Helper()
	if got := nextFrame(t, in); got != want {
		t.Fatalf("frame %s, want %s", got, want)
	}
}

func expectEvent(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("handler event %q, want %q", got, want)
	}
}

func dialCredits(t *testing.T, base string) *websocket.Conn {
	t.Helper()
	conn := dialWS(t, base, "/steer/Steer", &websocket.DialOptions{Subprotocols: []string{fhttp.WebSocketProtocol}})
	if p := conn.Subprotocol(); p != fhttp.WebSocketProtocol {
		t.Fatalf("subprotocol %q, want %s", p, fhttp.WebSocketProtocol)
	}
	return conn
}

func msgFrame(seq int) string { return fmt.Sprintf(`{"msg":{"seq":%d}}`, seq) }

// TestWebSocketCredits drives the credit protocol by hand: the server's
// window is its first frame, and it grants more as its handler receives —
// half a window at a time, never as messages merely arrive.
func TestWebSocketCredits(t *testing.T) {
	s, st := newSteer()
	_, base := start(t, s, fhttp.WithStreamWindow(4))
	conn := dialCredits(t, base)
	in := frames(conn)
	expectFrame(t, in, `{"credit":4}`)

	// The whole window, while the handler reads nothing.
	writeFrame(t, conn, `{"credit":1}`) // lets the handler send one
	for i := range 4 {
		writeFrame(t, conn, msgFrame(i))
	}
	expectEvent(t, st.do(t, "recv"), "recv 0")
	// One message taken, less than half the window: no credit yet, so
	// the next frame is the handler's message.
	expectEvent(t, st.do(t, "send"), "sending")
	expectEvent(t, st.event(t), "sent <nil>")
	expectFrame(t, in, `{"msg":{"seq":100,"customer":""}}`)
	// The second makes half the window: two more.
	expectEvent(t, st.do(t, "recv"), "recv 1")
	expectFrame(t, in, `{"credit":2}`)

	// Which the caller uses; the handler takes everything, and the
	// server grants it all back (in one or more envelopes).
	writeFrame(t, conn, msgFrame(4))
	writeFrame(t, conn, msgFrame(5))
	for i := 2; i < 6; i++ {
		expectEvent(t, st.do(t, "recv"), fmt.Sprintf("recv %d", i))
	}
	for granted := 0; granted < 4; {
		var env struct{ Credit *int }
		f := nextFrame(t, in)
		if err := json.Unmarshal([]byte(f), &env); err != nil || env.Credit == nil {
			t.Fatalf("frame %s, want a credit envelope", f)
		}
		granted += *env.Credit
		if granted > 4 {
			t.Fatalf("the server granted %d for 4 messages received", granted)
		}
	}
	// The caller ends; the handler's Recv says so.
	writeFrame(t, conn, `{"end":true}`)
	expectEvent(t, st.do(t, "recv"), "recv: EOF")
	_ = conn.Close(websocket.StatusNormalClosure, "")
	expectEvent(t, st.event(t), "done: context canceled")
}

// TestWebSocketCreditWindow: a caller that agreed to credits and sends
// past its window breaks the protocol; one that did not is held back by
// TCP instead, and its messages are all delivered.
func TestWebSocketCreditWindow(t *testing.T) {
	s, st := newSteer()
	_, base := start(t, s, fhttp.WithStreamWindow(4))

	conn := dialCredits(t, base)
	in := frames(conn)
	expectFrame(t, in, `{"credit":4}`)
	for i := range 5 {
		writeFrame(t, conn, msgFrame(i))
	}
	expectEvent(t, st.event(t), "done: context canceled")
	var env struct{ Error *problemBody }
	if f := nextFrame(t, in); json.Unmarshal([]byte(f), &env) != nil || env.Error == nil {
		t.Fatalf("frame %s, want an error envelope", f)
	}
	if env.Error.Code != "invalid_argument" || !strings.Contains(env.Error.Detail, "message 5 sent beyond the credit granted (a window of 4 messages)") {
		t.Errorf("error %+v, want invalid_argument naming message 5 and the window of 4", env.Error)
	}
	expectFrame(t, in, fmt.Sprintf("close %d", websocket.StatusPolicyViolation))

	// Without the subprotocol: no credit, no limit but TCP's.
	conn = dialWS(t, base, "/steer/Steer", nil)
	for i := range 5 {
		writeFrame(t, conn, msgFrame(i))
	}
	for i := range 5 {
		expectEvent(t, st.do(t, "recv"), fmt.Sprintf("recv %d", i))
	}
	_ = conn.CloseNow()
	expectEvent(t, st.event(t), "done: context canceled")
}

// TestWebSocketCallerLeavesStalledHandler: the caller closes, or its
// connection dies, while the handler reads nothing and the window is
// full: the server still reads, sees it, and cancels the handler's
// context. Without credits it sees it as long as the window is not full.
func TestWebSocketCallerLeavesStalledHandler(t *testing.T) {
	big := strings.Repeat("x", 256<<10)
	for _, tt := range []struct {
		name    string
		credits bool
		n       int
		leave   func(*websocket.Conn)
	}{
		{"credits, close handshake", true, 4, func(c *websocket.Conn) { _ = c.Close(websocket.StatusNormalClosure, "") }},
		{"credits, connection cut", true, 4, func(c *websocket.Conn) { _ = c.CloseNow() }},
		{"no credits, within the window", false, 3, func(c *websocket.Conn) { _ = c.CloseNow() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, st := newSteer()
			_, base := start(t, s, fhttp.WithStreamWindow(4))
			var conn *websocket.Conn
			if tt.credits {
				conn = dialCredits(t, base)
				if f := readFrame(t, conn); f != `{"credit":4}` {
					t.Fatalf("first frame %s", f)
				}
			} else {
				conn = dialWS(t, base, "/steer/Steer", nil)
			}
			for i := range tt.n {
				writeFrame(t, conn, fmt.Sprintf(`{"msg":{"seq":%d,"customer":"%s"}}`, i, big))
			}
			tt.leave(conn)
			expectEvent(t, st.event(t), "done: context canceled")
		})
	}
}

// TestWebSocketSendWaitsForCredit: with credits, the handler's Send waits
// for the caller's credit — which the caller may still give after its
// end — and gives up when the caller leaves.
func TestWebSocketSendWaitsForCredit(t *testing.T) {
	s, st := newSteer()
	_, base := start(t, s)
	conn := dialCredits(t, base)
	in := frames(conn)
	expectFrame(t, in, fmt.Sprintf(`{"credit":%d}`, fhttp.DefaultStreamWindow))

	expectEvent(t, st.do(t, "send"), "sending")
	// Nothing may come out without credit. (Only the absence of a frame
	// can show that; under load this checks less, never wrongly.)
	select {
	case f := <-in:
		t.Fatalf("frame %s before the caller gave credit", f)
	case ev := <-st.events:
		t.Fatalf("handler event %q before the caller gave credit", ev)
	case <-time.After(200 * time.Millisecond):
	}
	writeFrame(t, conn, `{"credit":1}`)
	expectEvent(t, st.event(t), "sent <nil>")
	expectFrame(t, in, `{"msg":{"seq":100,"customer":""}}`)

	// After its end the caller still receives, and grants.
	writeFrame(t, conn, `{"end":true}`)
	writeFrame(t, conn, `{"credit":1}`)
	expectEvent(t, st.do(t, "send"), "sending")
	expectEvent(t, st.event(t), "sent <nil>")
	expectFrame(t, in, `{"msg":{"seq":101,"customer":""}}`)

	// Out of credit again, the caller leaves: Send returns.
	expectEvent(t, st.do(t, "send"), "sending")
	_ = conn.CloseNow()
	if ev := st.event(t); !strings.HasPrefix(ev, "sent canceled:") {
		t.Errorf("Send when the caller left = %q, want canceled", ev)
	}
	expectEvent(t, st.event(t), "done: context canceled")
}

// TestWebSocketClientCredits: Ferry's client reads all the time, so the
// server's credit reaches it while the application only sends; and it
// holds a server that sends to a caller that does not receive to its
// window.
func TestWebSocketClientCredits(t *testing.T) {
	var sent atomic.Int64
	s := shop()
	server.HandleBidiStream(s, "Flood", func(_ context.Context, bs server.Stream[event, event]) error {
		m, err := bs.Recv()
		if err != nil {
			return err
		}
		for i := range m.Seq {
			if err := bs.Send(&event{Seq: i}); err != nil {
				return err
			}
			sent.Add(1)
		}
		return nil
	})
	_, base := start(t, s, fhttp.WithStreamWindow(2))
	c := newClient(t, base, fhttp.WithClientStreamWindow(3))

	sum, err := transport.StreamEndpoint[event, event]{Service: "shop", Name: "Sum", Kind: transport.ClientStreaming}.Open(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for i := range 100 {
		if err := sum.Send(&event{Seq: i}); err != nil {
			t.Fatalf("Send %d through a window of 2: %v", i, err)
		}
		want += i
	}
	if got, err := sum.CloseAndRecv(); err != nil || got.Seq != want {
		t.Errorf("Sum = %+v, %v; want %d", got, err, want)
	}

	const n = 50
	flood, err := transport.StreamEndpoint[event, event]{Service: "shop", Name: "Flood", Kind: transport.BidiStreaming}.Open(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := flood.Send(&event{Seq: n}); err != nil {
		t.Fatal(err)
	}
	ahead := ferrytest.Settled(&sent)
	t.Logf("with the caller not receiving, the handler sent %d of %d messages (client window 3)", ahead, n)
	if ahead > 3 {
		t.Errorf("the handler sent %d messages to a caller with a window of 3 that received none", ahead)
	}
	for i := range n {
		m, err := flood.Recv()
		if err != nil || m.Seq != i {
			t.Fatalf("Recv %d = %+v, %v", i, m, err)
		}
	}
	if _, err := flood.Recv(); err != io.EOF {
		t.Errorf("end = %v, want io.EOF", err)
	}
}

// fakeWS serves one WebSocket stream at any path with script, agreeing to
// protocols when offered, and returns its base URL.
func fakeWS(t *testing.T, protocols []string, script func(ctx context.Context, conn *websocket.Conn)) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: protocols})
		if err != nil {
			return
		}
		defer close(done)
		defer conn.CloseNow()
		script(testCtx(t), conn)
	}))
	t.Cleanup(func() {
		select {
		case <-done:
		case <-testCtx(t).Done():
			t.Error("the fake server's script never ended")
		}
		srv.Close()
	})
	return srv.URL
}

// TestWebSocketClientWindow: a server that sends past the client's window
// breaks the protocol, and the client says so after the messages it had.
func TestWebSocketClientWindow(t *testing.T) {
	first := make(chan string, 1)
	cut := make(chan struct{})
	base := fakeWS(t, []string{fhttp.WebSocketProtocol}, func(ctx context.Context, conn *websocket.Conn) {
		_, b, _ := conn.Read(ctx)
		first <- string(b)
		for i := range 3 {
			_ = conn.Write(ctx, websocket.MessageText, []byte(msgFrame(i)))
		}
		_, _, err := conn.Read(ctx) // the client closes
		t.Logf("the client closed: %v", err)
		close(cut)
	})
	c := newClient(t, base, fhttp.WithClientStreamWindow(2))
	st, err := transport.StreamEndpoint[event, event]{Service: "x", Name: "Y", Kind: transport.BidiStreaming}.Open(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if f := <-first; f != `{"credit":2}` {
		t.Errorf("the client's first frame %s, want its window", f)
	}
	select {
	case <-cut:
	case <-testCtx(t).Done():
		t.Fatal("the client never closed a stream its server overran")
	}
	for i := range 2 {
		if m, err := st.Recv(); err != nil || m.Seq != i {
			t.Fatalf("Recv %d = %+v, %v", i, m, err)
		}
	}
	if _, err := st.Recv(); errs.CodeOf(err) != errs.Internal || !strings.Contains(err.Error(), "beyond the credit granted (a window of 2 messages)") {
		t.Errorf("third message past a window of 2 = %v, want internal naming the window", err)
	}
}

// TestWebSocketClientWithoutCredits: a server that does not agree to the
// subprotocol gets no credit envelope, and the stream works.
func TestWebSocketClientWithoutCredits(t *testing.T) {
	first := make(chan string, 1)
	base := fakeWS(t, nil, func(ctx context.Context, conn *websocket.Conn) {
		_, b, _ := conn.Read(ctx)
		first <- string(b)
		_ = conn.Write(ctx, websocket.MessageText, []byte(`{"msg":{"seq":8}}`))
		_ = conn.Write(ctx, websocket.MessageText, []byte(`{"end":{"trailer":{}}}`))
		_ = conn.Close(websocket.StatusNormalClosure, "")
	})
	c := newClient(t, base)
	st, err := transport.StreamEndpoint[event, event]{Service: "x", Name: "Y", Kind: transport.BidiStreaming}.Open(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Send(&event{Seq: 7}); err != nil {
		t.Fatal(err)
	}
	if f := <-first; f != `{"msg":{"seq":7,"customer":""}}` {
		t.Errorf("the client's first frame %s, want its message (no credit without the subprotocol)", f)
	}
	if m, err := st.Recv(); err != nil || m.Seq != 8 {
		t.Errorf("Recv = %+v, %v", m, err)
	}
	if _, err := st.Recv(); err != io.EOF {
		t.Errorf("end = %v, want io.EOF", err)
	}
}
