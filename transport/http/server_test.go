package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
)

// rawClient is a plain net/http client with its own connections, closed at
// the end of the test.
func rawClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

type problemBody struct {
	Type    string        `json:"type"`
	Title   string        `json:"title"`
	Status  int           `json:"status"`
	Detail  string        `json:"detail"`
	Code    string        `json:"code"`
	Details []errs.Detail `json:"details"`
}

type rawResult struct {
	status  int
	header  http.Header
	body    []byte
	problem problemBody
}

func do(t testing.TB, hc *http.Client, method, url, contentType string, body []byte, hdr ...string) rawResult {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("NewRequest(%s %s) = %v", method, url, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	r := rawResult{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.Header.Get("Content-Type") == fhttp.ProblemContentType {
		if err := json.Unmarshal(b, &r.problem); err != nil {
			t.Fatalf("%s %s: problem body %q: %v", method, url, b, err)
		}
	}
	return r
}

func greeter(opts ...server.Option) *server.Server {
	s := server.New("greeter", append([]server.Option{server.WithLogger(quiet)}, opts...)...)
	server.Handle(s, "Hello", hello)
	server.Handle(s, "Idem", hello, server.WithIdempotent())
	server.Handle(s, "Panic", func(context.Context, *helloReq) (*helloResp, error) { panic("secret panic value") })
	server.Handle(s, "Leak", func(context.Context, *helloReq) (*helloResp, error) {
		return nil, errors.New("secret internal detail")
	})
	return s
}

func TestServerStatuses(t *testing.T) {
	_, base := start(t, greeter(), fhttp.WithMaxBodyBytes(1024))
	hc := rawClient(t)
	big := []byte(`{"name":"` + strings.Repeat("x", 2048) + `"}`)
	tests := []struct {
		name, method, path, ct string
		body                   []byte
		hdr                    []string
		status                 int
		code                   string
		detailHas              string
		allow                  string
	}{
		{name: "ok", method: "POST", path: "/greeter/Hello", ct: "application/json", body: []byte(`{"name":"Ada"}`), status: 200},
		{name: "no content type", method: "POST", path: "/greeter/Hello", body: []byte(`{"name":"Ada"}`), status: 200},
		{name: "curl form", method: "POST", path: "/greeter/Hello", ct: "application/x-www-form-urlencoded", body: []byte(`{"name":"Ada"}`), status: 200},
		{name: "json charset", method: "POST", path: "/greeter/Hello", ct: "application/json; charset=utf-8", body: []byte(`{"name":"Ada"}`), status: 200},
		{name: "empty body", method: "POST", path: "/greeter/Hello", ct: "application/json", status: 200},
		{name: "oversized", method: "POST", path: "/greeter/Hello", ct: "application/json", body: big, status: 413, code: "resource_exhausted", detailHas: "1024"},
		{name: "malformed json", method: "POST", path: "/greeter/Hello", ct: "application/json", body: []byte(`{"name":`), status: 400, code: "invalid_argument", detailHas: "unexpected end of JSON"},
		{name: "wrong json type", method: "POST", path: "/greeter/Hello", ct: "application/json", body: []byte(`{"name":7}`), status: 400, code: "invalid_argument", detailHas: "name"},
		{name: "trailing garbage", method: "POST", path: "/greeter/Hello", ct: "application/json", body: []byte(`{} x`), status: 400, code: "invalid_argument"},
		{name: "wrong content type", method: "POST", path: "/greeter/Hello", ct: "text/plain", body: []byte(`hi`), status: 415, code: "invalid_argument", detailHas: `"text/plain"`},
		{name: "form data", method: "POST", path: "/greeter/Hello", ct: "application/x-www-form-urlencoded", body: []byte(`name=Ada`), status: 400, code: "invalid_argument", detailHas: "read as JSON"},
		{name: "gzip", method: "POST", path: "/greeter/Hello", ct: "application/json", hdr: []string{"Content-Encoding", "gzip"}, body: []byte(`x`), status: 415, code: "invalid_argument", detailHas: `"gzip"`},
		{name: "unknown endpoint", method: "POST", path: "/greeter/Nope", ct: "application/json", status: 404, code: "not_found", detailHas: `"Nope"`},
		{name: "other service", method: "POST", path: "/billing/Hello", ct: "application/json", status: 404, code: "not_found", detailHas: `"billing"`},
		{name: "no route", method: "GET", path: "/a/b/c", status: 404, code: "not_found", detailHas: `"/a/b/c"`},
		{name: "root", method: "GET", path: "/", status: 404, code: "not_found"},
		{name: "wrong method", method: "GET", path: "/greeter/Hello", status: 405, code: "unimplemented", allow: "POST"},
		{name: "idempotent GET", method: "GET", path: "/greeter/Idem?name=Ada", status: 200},
		{name: "idempotent GET bad param", method: "GET", path: "/greeter/Idem?nope=1", status: 400, code: "invalid_argument", detailHas: "nope"},
		{name: "idempotent DELETE", method: "DELETE", path: "/greeter/Idem", status: 405, code: "unimplemented", allow: "GET, HEAD, POST"},
		{name: "bad timeout", method: "POST", path: "/greeter/Hello", hdr: []string{"Ferry-Timeout-Ms", "soon"}, status: 400, code: "invalid_argument", detailHas: "Ferry-Timeout-Ms"},
		{name: "zero timeout", method: "POST", path: "/greeter/Hello", hdr: []string{"Ferry-Timeout-Ms", "0"}, status: 400, code: "invalid_argument", detailHas: "Ferry-Timeout-Ms"},
		{name: "huge timeout is cut to the maximum", method: "POST", path: "/greeter/Hello", hdr: []string{"Ferry-Timeout-Ms", "99999999999999999"}, status: 200},
		{name: "negative timeout", method: "POST", path: "/greeter/Hello", hdr: []string{"Ferry-Timeout-Ms", "-5"}, status: 400, code: "invalid_argument", detailHas: "Ferry-Timeout-Ms"},
		{name: "panic", method: "POST", path: "/greeter/Panic", status: 500, code: "internal", detailHas: "internal error"},
		{name: "plain error hidden", method: "POST", path: "/greeter/Leak", status: 500, code: "unknown", detailHas: "unknown error"},
		{name: "after panic", method: "POST", path: "/greeter/Hello", body: []byte(`{"name":"again"}`), status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, hc, tt.method, base+tt.path, tt.ct, tt.body, tt.hdr...)
			if r.status != tt.status {
				t.Fatalf("%s %s status = %d, want %d (body %s)", tt.method, tt.path, r.status, tt.status, r.body)
			}
			if tt.status == 200 {
				if got := r.header.Get("Content-Type"); got != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", got)
				}
				return
			}
			if got := r.header.Get("Content-Type"); got != fhttp.ProblemContentType {
				t.Fatalf("Content-Type = %q, want %q", got, fhttp.ProblemContentType)
			}
			p := r.problem
			if p.Code != tt.code || p.Status != tt.status || p.Type != "about:blank" || p.Title != http.StatusText(tt.status) {
				t.Errorf("problem = %+v, want code %s, status %d, type about:blank, title %q", p, tt.code, tt.status, http.StatusText(tt.status))
			}
			if !strings.Contains(p.Detail, tt.detailHas) {
				t.Errorf("detail = %q, want it to contain %q", p.Detail, tt.detailHas)
			}
			if strings.Contains(string(r.body), "secret") {
				t.Errorf("body = %s, want internals hidden", r.body)
			}
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestServerReplyBody(t *testing.T) {
	_, base := start(t, greeter())
	r := do(t, rawClient(t), "POST", base+"/greeter/Hello", "", []byte(`{"name":"Ada"}`))
	if got, want := string(r.body), `{"message":"Hello, Ada"}`; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	// An idempotent endpoint answers GET with its fields in the query string.
	r = do(t, rawClient(t), "GET", base+"/greeter/Idem?name=Ada", "", nil)
	if got, want := string(r.body), `{"message":"Hello, Ada"}`; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	if got := r.header.Get("Content-Length"); got != "24" {
		t.Errorf("Content-Length = %q, want 24", got)
	}
}

func TestServerLargeReply(t *testing.T) {
	s := server.New("big", server.WithLogger(quiet))
	server.Handle(s, "Get", func(_ context.Context, req *helloReq) (*helloResp, error) {
		return &helloResp{Message: strings.Repeat("y", 100_000)}, nil
	})
	_, base := start(t, s)
	r := do(t, rawClient(t), "POST", base+"/big/Get", "", nil)
	if r.status != 200 || len(r.body) != 100_000+len(`{"message":""}`) {
		t.Fatalf("status, len(body) = %d, %d, want 200, %d", r.status, len(r.body), 100_000+len(`{"message":""}`))
	}
	if got := r.header.Get("Content-Length"); got != "100014" {
		t.Errorf("Content-Length = %q, want 100014", got)
	}
}

func TestServerCallInfo(t *testing.T) {
	got := make(chan transport.Call, 1)
	s := server.New("info", server.WithLogger(quiet))
	server.Handle(s, "Get", func(ctx context.Context, _ *helloReq) (*helloResp, error) {
		c, _ := transport.CallFromContext(ctx)
		got <- *c
		c.Reply.Set("X-Served-By", "info-1")
		return &helloResp{}, nil
	})
	_, base := start(t, s, fhttp.WithDefaultTimeout(time.Hour))
	r := do(t, rawClient(t), "POST", base+"/info/Get", "", nil, "X-Request-Id", "r-1")
	if r.status != 200 {
		t.Fatalf("status = %d, want 200", r.status)
	}
	c := <-got
	if c.Service != "info" || c.Endpoint != "Get" || c.Kind != transport.HTTP || c.Client {
		t.Errorf("Call = %+v, want service info, endpoint Get, kind http, server side", c)
	}
	if v := c.Request.Get("x-request-id"); v != "r-1" {
		t.Errorf("Request.Get(x-request-id) = %q, want r-1", v)
	}
	if c.Peer == "" {
		t.Errorf("Peer = %q, want the remote address", c.Peer)
	}
	if d := time.Until(c.Deadline); d < 50*time.Minute || d > time.Hour {
		t.Errorf("Deadline in %v, want about an hour (the default timeout)", d)
	}
	if v := r.header.Get("X-Served-By"); v != "info-1" {
		t.Errorf("reply header X-Served-By = %q, want info-1", v)
	}
}

func TestServerReplyMetadataOnError(t *testing.T) {
	s := server.New("md", server.WithLogger(quiet))
	server.Handle(s, "Fail", func(ctx context.Context, _ *helloReq) (*helloResp, error) {
		c, _ := transport.CallFromContext(ctx)
		c.Reply.Set("retry-after", "3")
		return nil, errs.New(errs.Unavailable, "busy")
	})
	_, base := start(t, s)
	r := do(t, rawClient(t), "POST", base+"/md/Fail", "", nil)
	if r.status != 503 || r.header.Get("Retry-After") != "3" {
		t.Errorf("status, Retry-After = %d, %q, want 503, 3", r.status, r.header.Get("Retry-After"))
	}
}

func TestFilter(t *testing.T) {
	var order []string
	var mu sync.Mutex
	filter := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				w.Header().Add("X-Filter", name)
				next.ServeHTTP(w, r)
			})
		}
	}
	_, base := start(t, greeter(), fhttp.WithFilter(filter("outer")), fhttp.WithFilter(filter("inner")))
	r := do(t, rawClient(t), "POST", base+"/greeter/Hello", "", nil)
	if got := strings.Join(r.header.Values("X-Filter"), ","); got != "outer,inner" {
		t.Errorf("X-Filter = %q, want outer,inner", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(order, ","); got != "outer,inner" {
		t.Errorf("filter order = %q, want outer,inner", got)
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	noField := server.New("svc", server.WithLogger(quiet))
	server.Handle(noField, "Get", hello, server.WithRoute("GET /v1/hello/{who}"))
	conflict := server.New("svc", server.WithLogger(quiet))
	server.Handle(conflict, "A", hello, server.WithRoute("GET /v1/{name}/x"))
	server.Handle(conflict, "B", hello, server.WithRoute("GET /v1/x/{name}"))
	bad := server.New("bad name!")

	tests := []struct {
		name string
		addr string
		s    *server.Server
		want string
	}{
		{"address in use", busy.Addr().String(), greeter(), busy.Addr().String()},
		{"invalid port", "127.0.0.1:99999", greeter(), "127.0.0.1:99999"},
		{"wildcard without field", "127.0.0.1:0", noField, `"GET /v1/hello/{who}": path wildcard {who}`},
		{"conflicting routes", "127.0.0.1:0", conflict, "GET /v1/x/{name}"},
		{"registration errors", "127.0.0.1:0", bad, "invalid service name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := fhttp.NewServer(tt.addr)
			err := hs.Start(testCtx(t), tt.s)
			if err == nil {
				_ = hs.Stop(testCtx(t))
				t.Fatalf("Start() = nil, want an error naming %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start() = %v, want it to name %q", err, tt.want)
			}
			if err := hs.Stop(testCtx(t)); err != nil {
				t.Errorf("Stop() after a failed Start = %v, want nil", err)
			}
		})
	}
}

func TestStartTwice(t *testing.T) {
	hs, _ := start(t, greeter())
	if err := hs.Start(testCtx(t), greeter()); err == nil {
		t.Error("second Start() = nil, want an error")
	}
}

// notifyListener reports when the server closes it.
type notifyListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

// Close closes the listener, then tells: a test that waits for closed
// may count on new connections being refused.
func (l *notifyListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}

func TestStopDrains(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &notifyListener{Listener: inner, closed: make(chan struct{})}
	started, release := make(chan struct{}), make(chan struct{})
	s := server.New("slow", server.WithLogger(quiet))
	server.Handle(s, "Wait", func(ctx context.Context, req *helloReq) (*helloResp, error) {
		close(started)
		<-release
		return &helloResp{Message: "done"}, nil
	})
	hs := fhttp.NewServer("ignored:0", fhttp.WithListener(ln))
	if err := hs.Start(testCtx(t), s); err != nil {
		t.Fatalf("Start() = %v", err)
	}
	base := "http://" + hs.Addr().String()
	c := newClient(t, base)

	type result struct {
		resp *helloResp
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := transport.Invoke[helloReq, helloResp](testCtx(t), c, "slow", "Wait", &helloReq{})
		inflight <- result{resp, err}
	}()
	<-started

	stopped := make(chan error, 1)
	go func() { stopped <- hs.Stop(testCtx(t)) }()
	<-ln.closed

	// New connections are refused while the call drains.
	d := net.Dialer{Timeout: 5 * time.Second}
	if conn, err := d.DialContext(testCtx(t), "tcp", hs.Addr().String()); err == nil {
		conn.Close()
		t.Error("Dial after Stop began = nil error, want refused")
	}
	select {
	case err := <-stopped:
		t.Fatalf("Stop() returned %v before the in-flight call finished", err)
	default:
	}

	close(release)
	r := <-inflight
	if r.err != nil || r.resp.Message != "done" {
		t.Errorf("in-flight call = %+v, %v, want done, nil", r.resp, r.err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Stop() = %v, want nil", err)
	}
}

func TestStopTimeout(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	handlerDone := make(chan struct{})
	s := server.New("stuck", server.WithLogger(quiet))
	server.Handle(s, "Wait", func(ctx context.Context, req *helloReq) (*helloResp, error) {
		defer close(handlerDone)
		close(started)
		<-release
		return &helloResp{}, nil
	})
	hs := fhttp.NewServer("127.0.0.1:0")
	if err := hs.Start(testCtx(t), s); err != nil {
		t.Fatalf("Start() = %v", err)
	}
	c := newClient(t, "http://"+hs.Addr().String())
	callDone := make(chan error, 1)
	go func() {
		_, err := transport.Invoke[helloReq, helloResp](testCtx(t), c, "stuck", "Wait", &helloReq{})
		callDone <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := hs.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop() = %v, want context.DeadlineExceeded", err)
	}
	if err := <-callDone; errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("cut-off call = %v, want unavailable", err)
	}
	close(release)
	<-handlerDone
}

func TestNewHandler(t *testing.T) {
	h, err := fhttp.NewHandler(greeter())
	if err != nil {
		t.Fatalf("NewHandler() = %v", err)
	}
	req, _ := http.NewRequest("POST", "/greeter/Hello", strings.NewReader(`{"name":"Bo"}`))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != `{"message":"Hello, Bo"}` {
		t.Errorf("ServeHTTP = %d %s, want 200 {\"message\":\"Hello, Bo\"}", rec.Code, rec.Body)
	}
}

// Issue #11 defect 17: an HTTP call without Ferry-Timeout-Ms runs under the
// server's default deadline, and a caller cannot ask for more than the
// maximum.
func TestServerDeadlineBounds(t *testing.T) {
	left := make(chan time.Duration, 1)
	s := server.New("dl", server.WithLogger(quiet))
	server.Handle(s, "Get", func(ctx context.Context, _ *helloReq) (*helloResp, error) {
		d, ok := ctx.Deadline()
		if !ok {
			left <- -1
		} else {
			left <- time.Until(d)
		}
		return &helloResp{}, nil
	})
	_, base := start(t, s, fhttp.WithMaxTimeout(time.Minute))
	hc := rawClient(t)
	for _, c := range []struct {
		header string
		max    time.Duration
	}{
		{"", transport.DefaultTimeout},
		{"9223372036854", time.Minute},
		{"99999999999999999999999", time.Minute},
		{"1500", 1500 * time.Millisecond},
	} {
		var hdr []string
		if c.header != "" {
			hdr = []string{fhttp.TimeoutHeader, c.header}
		}
		if r := do(t, hc, "POST", base+"/dl/Get", "", nil, hdr...); r.status != 200 {
			t.Fatalf("%s %q: status %d, want 200", fhttp.TimeoutHeader, c.header, r.status)
		}
		if d := <-left; d <= 0 || d > c.max {
			t.Errorf("%s %q: handler deadline in %v, want within %v", fhttp.TimeoutHeader, c.header, d, c.max)
		}
	}
}

// A call that asks for a deadline beyond the server's default still gets
// its reply written: the connection's write deadline follows the call's
// (before, a handler that used more than the write timeout left the caller
// with EOF).
func TestServerWritesAfterLongDeadline(t *testing.T) {
	s := server.New("dl", server.WithLogger(quiet))
	server.Handle(s, "Wait", func(ctx context.Context, _ *helloReq) (*helloResp, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	_, base := start(t, s, fhttp.WithDefaultTimeout(50*time.Millisecond), fhttp.WithWriteTimeout(time.Second))
	r := do(t, rawClient(t), "POST", base+"/dl/Wait", "", nil, fhttp.TimeoutHeader, "1500")
	if r.status != http.StatusGatewayTimeout || r.problem.Code != "deadline_exceeded" {
		t.Errorf("status %d code %q, want 504 deadline_exceeded written after the handler's 1.5s deadline", r.status, r.problem.Code)
	}
}

// server.WithJSON's codec decodes HTTP requests: a strict one refuses
// unknown fields and miscased keys with 400.
func TestServerStrictJSON(t *testing.T) {
	s := server.New("strict", server.WithLogger(quiet), server.WithJSON(codec.NewJSON(codec.JSONOptions{CaseSensitive: true, DisallowUnknownFields: true})))
	server.Handle(s, "Hello", hello)
	_, base := start(t, s)
	hc := rawClient(t)
	if r := do(t, hc, "POST", base+"/strict/Hello", "application/json", []byte(`{"name":"Ada"}`)); r.status != 200 {
		t.Errorf("exact names: status %d, want 200", r.status)
	}
	for body, want := range map[string]string{
		`{"Name":"Ada"}`:         `did you mean \"name\"`,
		`{"name":"Ada","age":3}`: `field \"age\": no such field`,
	} {
		r := do(t, hc, "POST", base+"/strict/Hello", "application/json", []byte(body))
		if r.status != 400 || !strings.Contains(string(r.body), want) {
			t.Errorf("%s: status %d body %s, want 400 saying %s", body, r.status, r.body, want)
		}
	}
}

// TestSlowlorisHeld: connections that send their headers a byte at a time
// are closed once the read-header timeout passes, and normal calls are
// served meanwhile (issue #11: slowloris held).
func TestSlowlorisHeld(t *testing.T) {
	s := server.New("slow", server.WithLogger(quiet))
	server.Handle(s, "Hello", hello)
	hs, base := start(t, s, fhttp.WithReadHeaderTimeout(300*time.Millisecond))
	const n = 200
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", hs.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("POST /slow/Hello HTTP/1.1\r\nHost: x\r\nX-Slow: a")); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	began := time.Now()
	if r := do(t, rawClient(t), "POST", base+"/slow/Hello", "application/json", []byte(`{"name":"Ada"}`)); r.status != 200 {
		t.Errorf("normal call beside %d slow connections: status %d, want 200", n, r.status)
	}
	// Every slow connection is closed by the server: a read ends.
	var closed atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(ferrytest.WaitBound))
			buf := make([]byte, 512)
			for {
				if _, err := c.Read(buf); err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						closed.Add(1)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := closed.Load(); got != n {
		t.Errorf("%d of %d slow connections closed by the server, want all", got, n)
	}
	t.Logf("%d slow connections closed within %v of the first (read-header timeout 300ms)", n, time.Since(began).Round(time.Millisecond))
}
