package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
)

type watchReq struct {
	Customer string `json:"customer"`
	N        int    `json:"n"`
	Fail     string `json:"fail"` // "early": before any event; "late": after them
}

type event struct {
	Seq      int    `json:"seq"`
	Customer string `json:"customer"`
}

// shop serves Watch (a server stream), Sum (a client stream), Chat (a
// bidirectional stream that echoes, with a reply header and a trailer) and
// Drain (reads every message, then waits for its context).
func shop() *server.Server {
	s := server.New("shop", server.WithLogger(quiet))
	server.HandleServerStream(s, "Watch", func(ctx context.Context, r *watchReq, out server.Sender[event]) error {
		c, _ := transport.CallFromContext(ctx)
		c.Reply.Set("X-Watch", r.Customer)
		if r.Fail == "early" {
			c.SetTrailer("X-Why", "early")
			return errs.Newf(errs.NotFound, "no customer %s", r.Customer)
		}
		for i := range r.N {
			if err := out.Send(&event{Seq: i, Customer: r.Customer}); err != nil {
				return err
			}
		}
		c.SetTrailer("X-Count", strconv.Itoa(r.N))
		if r.Fail == "late" {
			return errs.New(errs.Aborted, "gave up")
		}
		return nil
	})
	server.HandleClientStream(s, "Sum", func(_ context.Context, in server.Receiver[event]) (*event, error) {
		var sum event
		for m, err := range in.All() {
			if err != nil {
				return nil, err
			}
			sum.Seq += m.Seq
		}
		return &sum, nil
	})
	server.HandleBidiStream(s, "Chat", func(ctx context.Context, st server.Stream[event, event]) error {
		c, _ := transport.CallFromContext(ctx)
		c.Reply.Set("X-Chat", "1")
		n := 0
		for m, err := range st.All() {
			if err != nil {
				return err
			}
			n++
			if err := st.Send(m); err != nil {
				return err
			}
		}
		c.SetTrailer("X-Echoed", strconv.Itoa(n))
		return nil
	})
	server.HandleBidiStream(s, "Drain", func(ctx context.Context, st server.Stream[event, event]) error {
		for _, err := range st.All() {
			if err != nil {
				return err
			}
		}
		<-ctx.Done()
		return ctx.Err()
	})
	return s
}

// rawStream sends a request and reads the whole reply, trailers included.
func rawStream(t *testing.T, method, url, accept, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := rawClient(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading: %v", method, url, err)
	}
	return resp, string(b)
}

func TestServerStreamNDJSONWire(t *testing.T) {
	_, base := start(t, shop())
	for _, accept := range []string{"", "*/*", "application/x-ndjson", "application/*", "application/jsonl"} {
		resp, body := rawStream(t, "POST", base+"/shop/Watch", accept, `{"customer":"c-1","n":2}`)
		wantCT := "application/x-ndjson"
		if accept == "application/jsonl" {
			wantCT = accept
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != wantCT {
			t.Fatalf("Accept %q: status %d, Content-Type %q; want 200 %s", accept, resp.StatusCode, resp.Header.Get("Content-Type"), wantCT)
		}
		if want := "{\"seq\":0,\"customer\":\"c-1\"}\n{\"seq\":1,\"customer\":\"c-1\"}\n"; body != want {
			t.Errorf("Accept %q: body = %q, want %q", accept, body, want)
		}
		if got := resp.Header.Get("X-Watch"); got != "c-1" {
			t.Errorf("reply header X-Watch = %q, want c-1", got)
		}
		if got, want := resp.Trailer, (http.Header{"Ferry-Stream-End": {"ok"}, "Ferry-Error": nil, "X-Count": {"2"}}); !equalHeader(got, want) {
			t.Errorf("trailers = %v, want %v", got, want)
		}
	}
}

func TestServerStreamNDJSONError(t *testing.T) {
	_, base := start(t, shop())
	resp, body := rawStream(t, "POST", base+"/shop/Watch", "application/x-ndjson", `{"customer":"c-1","n":1,"fail":"late"}`)
	if resp.StatusCode != 200 || body != "{\"seq\":0,\"customer\":\"c-1\"}\n" {
		t.Fatalf("status %d, body %q; want 200 and one line", resp.StatusCode, body)
	}
	want := `{"type":"about:blank","title":"Conflict","status":409,"detail":"gave up","code":"aborted"}`
	if got := resp.Trailer.Get("Ferry-Stream-End"); got != "error" {
		t.Errorf("Ferry-Stream-End = %q, want error", got)
	}
	if got := resp.Trailer.Get("Ferry-Error"); got != want {
		t.Errorf("Ferry-Error = %s, want %s", got, want)
	}
	if got := resp.Trailer.Get("X-Count"); got != "1" {
		t.Errorf("trailer X-Count = %q, want 1", got)
	}
}

func TestServerStreamSSEWire(t *testing.T) {
	_, base := start(t, shop())
	// EventSource: GET with the request in the query string.
	resp, body := rawStream(t, "GET", base+"/shop/Watch?customer=c-1&n=2", "text/event-stream", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("status %d, headers %v; want 200 text/event-stream, no-cache", resp.StatusCode, resp.Header)
	}
	want := "data: {\"seq\":0,\"customer\":\"c-1\"}\n\n" +
		"data: {\"seq\":1,\"customer\":\"c-1\"}\n\n" +
		"event: end\ndata: {\"trailer\":{\"x-count\":[\"2\"]}}\n\n"
	if body != want {
		t.Errorf("body = %q, want %q", body, want)
	}
	if got := resp.Header.Get("X-Watch"); got != "c-1" {
		t.Errorf("reply header X-Watch = %q, want c-1", got)
	}
	// An error after the first event is an "error" event holding the
	// problem document, with the trailer.
	_, body = rawStream(t, "POST", base+"/shop/Watch", "text/event-stream", `{"customer":"c-2","n":1,"fail":"late"}`)
	want = "data: {\"seq\":0,\"customer\":\"c-2\"}\n\n" +
		"event: error\ndata: {\"type\":\"about:blank\",\"title\":\"Conflict\",\"status\":409,\"detail\":\"gave up\",\"code\":\"aborted\",\"trailer\":{\"x-count\":[\"1\"]}}\n\n"
	if body != want {
		t.Errorf("body = %q, want %q", body, want)
	}
	// No events: the reply headers go out with the end.
	resp, body = rawStream(t, "GET", base+"/shop/Watch?customer=c-3", "text/event-stream", "")
	if body != "event: end\ndata: {\"trailer\":{\"x-count\":[\"0\"]}}\n\n" || resp.Header.Get("X-Watch") != "c-3" {
		t.Errorf("empty stream: body %q, X-Watch %q", body, resp.Header.Get("X-Watch"))
	}
}

func TestServerStreamRefusals(t *testing.T) {
	_, base := start(t, shop(), fhttp.WithMaxBodyBytes(64))
	tests := []struct {
		name, method, path, accept, body string
		hdr                              []string
		status                           int
		code, detailHas                  string
	}{
		{name: "not acceptable", method: "POST", path: "/shop/Watch", accept: "application/json", status: 406, code: "invalid_argument", detailHas: "text/event-stream"},
		{name: "zero quality", method: "POST", path: "/shop/Watch", accept: "text/event-stream;q=0, application/x-ndjson;q=0", status: 406, code: "invalid_argument", detailHas: "application/x-ndjson"},
		{name: "failed before the first message", method: "POST", path: "/shop/Watch", body: `{"customer":"c-9","fail":"early"}`, status: 404, code: "not_found", detailHas: "no customer c-9"},
		{name: "bad body", method: "POST", path: "/shop/Watch", body: `{"n":"x"}`, status: 400, code: "invalid_argument", detailHas: "n"},
		{name: "body too large", method: "POST", path: "/shop/Watch", body: `{"customer":"` + strings.Repeat("x", 100) + `"}`, status: 413, code: "resource_exhausted", detailHas: "64"},
		{name: "bad query", method: "GET", path: "/shop/Watch?nope=1", accept: "text/event-stream", status: 400, code: "invalid_argument", detailHas: "nope"},
		{name: "bad timeout", method: "POST", path: "/shop/Watch", hdr: []string{"Ferry-Timeout-Ms", "soon"}, status: 400, code: "invalid_argument", detailHas: "Ferry-Timeout-Ms"},
		{name: "unknown stream", method: "POST", path: "/shop/Nope", accept: "text/event-stream", status: 404, code: "not_found", detailHas: "Nope"},
		{name: "wrong method", method: "DELETE", path: "/shop/Watch", status: 405, code: "unimplemented"},
		{name: "websocket on a server stream", method: "GET", path: "/shop/Watch", hdr: []string{"Connection", "Upgrade", "Upgrade", "websocket"}, status: 400, code: "invalid_argument", detailHas: "not over a WebSocket"},
		{name: "POST to a bidi stream", method: "POST", path: "/shop/Chat", status: 426, code: "failed_precondition", detailHas: "open a WebSocket"},
		{name: "GET without Upgrade", method: "GET", path: "/shop/Sum", status: 426, code: "failed_precondition", detailHas: "client_streaming"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := rawStream(t, tt.method, base+tt.path, tt.accept, tt.body, tt.hdr...)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != fhttp.ProblemContentType {
				t.Fatalf("%s %s = %d %s, want %d problem+json: %s", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, body)
			}
			var p problemBody
			if err := json.Unmarshal([]byte(body), &p); err != nil {
				t.Fatalf("problem %q: %v", body, err)
			}
			if p.Code != tt.code || p.Status != tt.status || !strings.Contains(p.Detail, tt.detailHas) {
				t.Errorf("problem = %+v, want code %s, status %d, detail naming %q", p, tt.code, tt.status, tt.detailHas)
			}
			if tt.status == 426 && resp.Header.Get("Upgrade") != "websocket" {
				t.Errorf("426 without Upgrade: websocket (headers %v)", resp.Header)
			}
		})
	}
	// A stream that fails before it starts sends the handler's trailer as
	// HTTP trailers of the error response.
	resp, _ := rawStream(t, "POST", base+"/shop/Watch", "", `{"fail":"early"}`)
	if got := resp.Trailer.Get("X-Why"); got != "early" {
		t.Errorf("trailer X-Why of an early failure = %q, want early", got)
	}
}

func TestClientStreams(t *testing.T) {
	_, base := start(t, shop())
	watch := transport.StreamEndpoint[watchReq, event]{Service: "shop", Name: "Watch", Kind: transport.ServerStreaming}
	for _, f := range []fhttp.StreamFormat{fhttp.NDJSON, fhttp.SSE} {
		t.Run(f.String(), func(t *testing.T) {
			c := newClient(t, base, fhttp.WithStreamFormat(f))
			st, err := watch.OpenServer(testCtx(t), c, &watchReq{Customer: "c-1", N: 3})
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for ev, err := range st.All() {
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				got = append(got, ev.Seq)
			}
			if len(got) != 3 || st.Header().Get("x-watch") != "c-1" || st.Trailer().Get("x-count") != "3" {
				t.Errorf("events %v, header %v, trailer %v; want 3 events, x-watch c-1, x-count 3", got, st.Header(), st.Trailer())
			}
			// A failure before the first event comes with its status's
			// code and the trailer.
			st, err = watch.OpenServer(testCtx(t), c, &watchReq{Customer: "c-2", Fail: "early"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = st.Recv()
			if errs.CodeOf(err) != errs.NotFound || !strings.Contains(err.Error(), "no customer c-2") || st.Trailer().Get("x-why") != "early" {
				t.Errorf("early failure = %v (trailer %v), want not_found naming c-2 with x-why", err, st.Trailer())
			}
		})
	}
	c := newClient(t, base)
	sum, err := transport.StreamEndpoint[event, event]{Service: "shop", Name: "Sum", Kind: transport.ClientStreaming}.Open(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := sum.Send(&event{Seq: i}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := sum.CloseAndRecv(); err != nil || got.Seq != 10 {
		t.Errorf("Sum(0..4) = %+v, %v; want 10", got, err)
	}
	if err := sum.Send(&event{}); !errors.Is(err, transport.ErrStreamClosed) {
		t.Errorf("Send after CloseSend = %v, want ErrStreamClosed", err)
	}
	chat, err := transport.StreamEndpoint[event, event]{Service: "shop", Name: "Chat", Kind: transport.BidiStreaming}.Open(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&event{Seq: 7}); err != nil {
		t.Fatal(err)
	}
	if m, err := chat.Recv(); err != nil || m.Seq != 7 || chat.Header().Get("x-chat") != "1" {
		t.Fatalf("Chat echo = %+v, %v (header %v)", m, err, chat.Header())
	}
	if err := chat.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); err != io.EOF || chat.Trailer().Get("x-echoed") != "1" {
		t.Errorf("Chat end = %v, trailer %v; want io.EOF and x-echoed 1", err, chat.Trailer())
	}
}

func TestClientServerStreamMisuse(t *testing.T) {
	_, base := start(t, shop())
	c := newClient(t, base)
	st, err := c.NewStream(testCtx(t), "shop", "Watch", transport.ServerStreaming)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Recv(new(event)); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Errorf("Recv before the request = %v, want failed_precondition", err)
	}
	st, err = c.NewStream(testCtx(t), "shop", "Watch", transport.ServerStreaming)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&watchReq{N: 1}); err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&watchReq{N: 1}); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Errorf("second request = %v, want failed_precondition", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Recv(new(event)); !errors.Is(err, transport.ErrStreamClosed) {
		t.Errorf("Recv after Close = %v, want ErrStreamClosed", err)
	}
	if err := st.Send(&watchReq{}); !errors.Is(err, transport.ErrStreamClosed) {
		t.Errorf("Send after Close = %v, want ErrStreamClosed", err)
	}
	if _, err := c.NewStream(testCtx(t), "shop", "Watch", transport.Unary); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("NewStream(Unary) = %v, want invalid_argument", err)
	}
	if _, err := c.NewStream(testCtx(t), "shop.v1.Shop", "Watch", transport.ServerStreaming); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("NewStream with a gRPC name = %v, want invalid_argument", err)
	}
	// A client or bidi stream to an unknown endpoint fails at the
	// handshake, with the server's code.
	if _, err := c.NewStream(testCtx(t), "shop", "Nope", transport.BidiStreaming); errs.CodeOf(err) != errs.NotFound || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("NewStream(Nope) = %v, want not_found naming it", err)
	}
}

// TestClientReplyLimit: the client's message limit ends a stream whose
// messages are larger, whatever carries them.
func TestClientReplyLimit(t *testing.T) {
	_, base := start(t, shop())
	for _, f := range []fhttp.StreamFormat{fhttp.NDJSON, fhttp.SSE} {
		c := newClient(t, base, fhttp.WithStreamFormat(f), fhttp.WithMaxReplyBytes(100))
		st, err := transport.StreamEndpoint[watchReq, event]{Service: "shop", Name: "Watch", Kind: transport.ServerStreaming}.
			OpenServer(testCtx(t), c, &watchReq{Customer: strings.Repeat("x", 200), N: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); errs.CodeOf(err) != errs.ResourceExhausted || !strings.Contains(err.Error(), "100-byte") {
			t.Errorf("%v: 200-byte message on a 100-byte client = %v, want resource_exhausted", f, err)
		}
	}
	c := newClient(t, base, fhttp.WithMaxReplyBytes(100))
	chat, err := transport.StreamEndpoint[event, event]{Service: "shop", Name: "Chat", Kind: transport.BidiStreaming}.Open(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	defer chat.Close()
	if err := chat.Send(&event{Customer: strings.Repeat("y", 2000)}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); errs.CodeOf(err) != errs.ResourceExhausted {
		t.Errorf("2000-byte echo on a 100-byte client = %v, want resource_exhausted", err)
	}
}

// cutServer answers every request with body and no end, as a server that
// died mid-stream would.
func cutServer(t *testing.T, contentType, body string) string {
	t.Helper()
	_, base := start(t, server.New("cut", server.WithLogger(quiet)), fhttp.WithFilter(func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", contentType)
			_, _ = io.WriteString(w, body)
		})
	}))
	return base
}

func TestClientStreamCut(t *testing.T) {
	tests := []struct {
		name, ct, body string
		f              fhttp.StreamFormat
		code           errs.Code
	}{
		{"ndjson without trailer", "application/x-ndjson", "{\"seq\":1}\n", fhttp.NDJSON, errs.Unavailable},
		{"sse without end", "text/event-stream", "data: {\"seq\":1}\n\n", fhttp.SSE, errs.Unavailable},
		{"sse unfinished event", "text/event-stream", "data: {\"seq\":1}\n\ndata: {\"seq\":2}\n", fhttp.SSE, errs.Unavailable},
		{"not a stream", "text/html", "<html>", fhttp.NDJSON, errs.Internal},
		{"bad message", "application/x-ndjson", "{\"seq\":\"one\"}\n", fhttp.NDJSON, errs.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, cutServer(t, tt.ct, tt.body), fhttp.WithStreamFormat(tt.f))
			st, err := transport.StreamEndpoint[watchReq, event]{Service: "cut", Name: "Watch", Kind: transport.ServerStreaming}.
				OpenServer(testCtx(t), c, &watchReq{})
			if err != nil {
				t.Fatal(err)
			}
			var end error
			n := 0
			for _, err := range st.All() {
				if err != nil {
					end = err
					break
				}
				n++
			}
			if errs.CodeOf(end) != tt.code {
				t.Errorf("after %d messages the stream ended with %v, want %v", n, end, tt.code)
			}
		})
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, vs := range a {
		ws, ok := b[k]
		if !ok || strings.Join(vs, "\x00") != strings.Join(ws, "\x00") {
			return false
		}
	}
	return true
}
