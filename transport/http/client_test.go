package http_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestRoundTripStruct(t *testing.T) {
	_, base := start(t, greeter())
	c := newClient(t, base)
	resp, err := transport.Invoke[helloReq, helloResp](testCtx(t), c, "greeter", "Hello", &helloReq{Name: "Ada"})
	if err != nil {
		t.Fatalf("Invoke(Hello) = %v, want nil", err)
	}
	if resp.Message != "Hello, Ada" {
		t.Errorf("Invoke(Hello) = %q, want %q", resp.Message, "Hello, Ada")
	}
}

func TestRoundTripProto(t *testing.T) {
	s := server.New("echo", server.WithLogger(quiet))
	server.Handle(s, "Upper", func(_ context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return wrapperspb.String(strings.ToUpper(req.GetValue())), nil
	})
	_, base := start(t, s)
	for _, cd := range []codec.Codec{codec.JSON, codec.Proto} {
		t.Run(cd.Name(), func(t *testing.T) {
			c := newClient(t, base, fhttp.WithCodec(cd))
			resp, err := transport.Invoke[wrapperspb.StringValue, wrapperspb.StringValue](testCtx(t), c, "echo", "Upper", wrapperspb.String("ada"))
			if err != nil {
				t.Fatalf("Invoke(Upper) = %v, want nil", err)
			}
			if resp.GetValue() != "ADA" {
				t.Errorf("Invoke(Upper) = %q, want ADA", resp.GetValue())
			}
			var md transport.Metadata
			ctx := transport.CaptureReply(testCtx(t), &md)
			if err := c.Invoke(ctx, "echo", "Upper", wrapperspb.String("x"), new(wrapperspb.StringValue)); err != nil {
				t.Fatal(err)
			}
			if got := md.Get("content-type"); got != cd.ContentType() {
				t.Errorf("reply Content-Type = %q, want %q", got, cd.ContentType())
			}
		})
	}
}

func TestProtoBodyRaw(t *testing.T) {
	s := server.New("echo", server.WithLogger(quiet))
	server.Handle(s, "Same", func(_ context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return req, nil
	})
	_, base := start(t, s)
	body, _ := proto.Marshal(wrapperspb.String("hi"))
	for _, ct := range []string{"application/protobuf", "application/x-protobuf"} {
		r := do(t, rawClient(t), "POST", base+"/echo/Same", ct, body)
		var got wrapperspb.StringValue
		if err := proto.Unmarshal(r.body, &got); r.status != 200 || err != nil || got.GetValue() != "hi" {
			t.Errorf("POST %s = %d %q (%v), want 200 hi", ct, r.status, got.GetValue(), err)
		}
	}
	r := do(t, rawClient(t), "POST", base+"/echo/Same", "application/protobuf", []byte{0xff, 0xff})
	if r.status != 400 || r.problem.Code != "invalid_argument" {
		t.Errorf("malformed protobuf = %d %s, want 400 invalid_argument", r.status, r.problem.Code)
	}
}

func TestMetadataBothWays(t *testing.T) {
	s := server.New("md", server.WithLogger(quiet))
	server.Handle(s, "Echo", func(ctx context.Context, _ *helloReq) (*helloResp, error) {
		c, _ := transport.CallFromContext(ctx)
		c.Reply.Set("x-user", c.Request.Get("X-User"))
		c.Reply.Set("x-tags", strings.Join(c.Request.Values("x-tag"), ","))
		c.Reply.Set("x-added", c.Request.Get("x-added"))
		return &helloResp{}, nil
	})
	_, base := start(t, s)

	var seen *transport.Call
	addHeader := func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			c, _ := transport.CallFromContext(ctx)
			seen = c
			c.Request.Set("x-added", "by-middleware")
			return next(ctx, req)
		}
	}
	for _, tc := range []struct {
		name string
		opts []fhttp.ClientOption
	}{
		{"plain", nil},
		{"middleware", []fhttp.ClientOption{fhttp.WithClientMiddleware(addHeader)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, base, tc.opts...)
			var reply transport.Metadata
			ctx := transport.WithMetadata(testCtx(t), transport.Pairs("x-user", "ada", "x-tag", "a", "x-tag", "b", "content-type", "text/evil"))
			ctx = transport.CaptureReply(ctx, &reply)
			if err := c.Invoke(ctx, "md", "Echo", &helloReq{}, &helloResp{}); err != nil {
				t.Fatalf("Invoke = %v", err)
			}
			want := map[string]string{"x-user": "ada", "x-tags": "a,b"}
			if tc.opts != nil {
				want["x-added"] = "by-middleware"
			}
			for k, v := range want {
				if got := reply.Get(k); got != v {
					t.Errorf("reply %s = %q, want %q", k, got, v)
				}
			}
			if tc.opts == nil {
				return
			}
			if !seen.Client || seen.Kind != transport.HTTP || seen.Service != "md" || seen.Endpoint != "Echo" {
				t.Errorf("client Call = %+v, want client side, http, md/Echo", seen)
			}
			if seen.Reply == nil || seen.Reply.Get("x-user") != "ada" {
				t.Errorf("client Call.Reply = %v, want the reply headers", seen.Reply)
			}
			// Middleware additions must not leak into the caller's metadata.
			if got := transport.OutgoingMetadata(ctx).Get("x-added"); got != "" {
				t.Errorf("OutgoingMetadata(ctx) gained x-added = %q, want it untouched", got)
			}
		})
	}
}

func TestBadMetadata(t *testing.T) {
	_, base := start(t, greeter())
	c := newClient(t, base)
	for _, md := range []transport.Metadata{
		{"bad key": {"v"}},
		{"x-ok": {"line\nbreak"}},
	} {
		err := c.Invoke(transport.WithMetadata(testCtx(t), md), "greeter", "Hello", &helloReq{}, &helloResp{})
		if errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Invoke with metadata %v = %v, want invalid_argument", md, err)
		}
	}
}

func TestErrorCodesRoundTrip(t *testing.T) {
	s := server.New("errs", server.WithLogger(quiet))
	server.Handle(s, "Fail", func(_ context.Context, req *helloReq) (*helloResp, error) {
		c, ok := errs.ParseCode(req.Name)
		if !ok {
			return nil, errs.New(errs.Internal, "bad test")
		}
		return nil, errs.New(c, "failed with "+req.Name).WithDetails(errs.Detail{Field: "name", Reason: "because"}, errs.Detail{Reason: "second"})
	})
	_, base := start(t, s)
	c := newClient(t, base)
	hc := rawClient(t)
	for _, code := range errs.Codes() {
		t.Run(code.String(), func(t *testing.T) {
			err := c.Invoke(testCtx(t), "errs", "Fail", &helloReq{Name: code.String()}, &helloResp{})
			var e *errs.Error
			if !errors.As(err, &e) {
				t.Fatalf("Invoke = %v (%T), want *errs.Error", err, err)
			}
			wantDetails := []errs.Detail{{Field: "name", Reason: "because"}, {Reason: "second"}}
			if e.Code() != code || e.Message() != "failed with "+code.String() || !reflect.DeepEqual(e.Details(), wantDetails) {
				t.Errorf("Invoke = %v %v, want %v: failed with %v and details %v", e, e.Details(), code, code, wantDetails)
			}
			r := do(t, hc, "POST", base+"/errs/Fail", "", []byte(`{"name":"`+code.String()+`"}`))
			if r.status != errs.HTTPStatus(code) {
				t.Errorf("status = %d, want %d", r.status, errs.HTTPStatus(code))
			}
		})
	}
}

func TestClientForeignErrors(t *testing.T) {
	// A server that is not Ferry: statuses without a problem body.
	s := server.New("x", server.WithLogger(quiet))
	server.Handle(s, "Hello", hello)
	_, base := start(t, s, fhttp.WithFilter(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/x/Teapot":
				w.WriteHeader(http.StatusTeapot)
			case "/x/Gateway":
				http.Error(w, "upstream down", http.StatusBadGateway)
			case "/x/BadJSON":
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(`{"code":`))
			case "/x/Redirect":
				http.Redirect(w, r, "/x/Hello", http.StatusFound)
			case "/x/Garbage":
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`not json`))
			default:
				next.ServeHTTP(w, r)
			}
		})
	}))
	c := newClient(t, base)
	tests := []struct {
		endpoint string
		code     errs.Code
		msg      string
	}{
		{"Teapot", errs.Unknown, "I'm a teapot"},
		{"Gateway", errs.Unavailable, "Bad Gateway"},
		{"BadJSON", errs.PermissionDenied, "Forbidden"},
		{"Redirect", errs.Unknown, "Found"},
		{"Garbage", errs.Internal, "decoding"},
	}
	for _, tt := range tests {
		err := c.Invoke(testCtx(t), "x", tt.endpoint, &helloReq{}, &helloResp{})
		if errs.CodeOf(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Invoke(%s) = %v, want %v containing %q", tt.endpoint, err, tt.code, tt.msg)
		}
	}
}

func TestDeadlineExceeded(t *testing.T) {
	handlerErr := make(chan error, 1)
	s := server.New("slow", server.WithLogger(quiet))
	server.Handle(s, "Wait", func(ctx context.Context, req *helloReq) (*helloResp, error) {
		select {
		case <-ctx.Done():
			handlerErr <- ctx.Err()
			return nil, ctx.Err()
		case <-time.After(20 * time.Second):
			handlerErr <- nil
			return &helloResp{}, nil
		}
	})
	_, base := start(t, s)
	c := newClient(t, base)
	ctx, cancel := context.WithTimeout(testCtx(t), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := c.Invoke(ctx, "slow", "Wait", &helloReq{}, &helloResp{})
	if errs.CodeOf(err) != errs.DeadlineExceeded {
		t.Errorf("Invoke = %v, want deadline_exceeded", err)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("Invoke took %v, want about 100ms", d)
	}
	select {
	case herr := <-handlerErr:
		if herr == nil {
			t.Error("handler ctx was never cancelled")
		}
	case <-time.After(15 * time.Second):
		t.Error("handler ctx not cancelled within 15s")
	}
}

func TestServerDeadlineFromHeader(t *testing.T) {
	s := server.New("slow", server.WithLogger(quiet))
	server.Handle(s, "Wait", func(ctx context.Context, req *helloReq) (*helloResp, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	_, base := start(t, s)
	r := do(t, rawClient(t), "POST", base+"/slow/Wait", "", nil, "Ferry-Timeout-Ms", "50")
	if r.status != 504 || r.problem.Code != "deadline_exceeded" {
		t.Errorf("status, code = %d, %s, want 504, deadline_exceeded", r.status, r.problem.Code)
	}
}

func TestClientCancel(t *testing.T) {
	started := make(chan struct{})
	handlerErr := make(chan error, 1)
	s := server.New("slow", server.WithLogger(quiet))
	server.Handle(s, "Wait", func(ctx context.Context, req *helloReq) (*helloResp, error) {
		close(started)
		select {
		case <-ctx.Done():
			handlerErr <- ctx.Err()
		case <-time.After(20 * time.Second):
			handlerErr <- nil
		}
		return nil, ctx.Err()
	})
	_, base := start(t, s)
	c := newClient(t, base)
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() {
		<-started
		cancel()
	}()
	err := c.Invoke(ctx, "slow", "Wait", &helloReq{}, &helloResp{})
	if errs.CodeOf(err) != errs.Canceled {
		t.Errorf("Invoke = %v, want canceled", err)
	}
	if herr := <-handlerErr; !errors.Is(herr, context.Canceled) {
		t.Errorf("handler ctx.Err() = %v, want context.Canceled", herr)
	}
}

func TestOversizedThroughClient(t *testing.T) {
	_, base := start(t, greeter(), fhttp.WithMaxBodyBytes(1024))
	c := newClient(t, base)
	err := c.Invoke(testCtx(t), "greeter", "Hello", &helloReq{Name: strings.Repeat("x", 4096)}, &helloResp{})
	if errs.CodeOf(err) != errs.ResourceExhausted {
		t.Errorf("Invoke(4 KiB) = %v, want resource_exhausted", err)
	}
	// The server keeps serving.
	if _, err := transport.Invoke[helloReq, helloResp](testCtx(t), c, "greeter", "Hello", &helloReq{Name: "a"}); err != nil {
		t.Errorf("Invoke after 413 = %v, want nil", err)
	}
}

func TestReplyTooLarge(t *testing.T) {
	s := server.New("big", server.WithLogger(quiet))
	server.Handle(s, "Get", func(context.Context, *helloReq) (*helloResp, error) {
		return &helloResp{Message: strings.Repeat("y", 10_000)}, nil
	})
	_, base := start(t, s)
	c := newClient(t, base, fhttp.WithMaxReplyBytes(1000))
	if err := c.Invoke(testCtx(t), "big", "Get", &helloReq{}, &helloResp{}); errs.CodeOf(err) != errs.ResourceExhausted {
		t.Errorf("Invoke = %v, want resource_exhausted", err)
	}
}

func TestUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, "http://"+addr)
	if err := c.Invoke(testCtx(t), "greeter", "Hello", &helloReq{}, &helloResp{}); errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("Invoke(closed port) = %v, want unavailable", err)
	}
}

func TestNewClientErrors(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://host", "http://", "http://h/?q=1", "://x", "http://u:p@host"} {
		if _, err := fhttp.NewClient(u); err == nil {
			t.Errorf("NewClient(%q) = nil error, want one", u)
		}
	}
	if _, err := fhttp.NewClient("http://h", fhttp.WithCodec(nil)); err == nil {
		t.Error("NewClient(WithCodec(nil)) = nil error, want one")
	}
}

func TestBaseURLPrefix(t *testing.T) {
	s := server.New("greeter", server.WithLogger(quiet))
	server.Handle(s, "Hello", hello)
	h, err := fhttp.NewHandler(s)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", http.StripPrefix("/api", h))
	hs := httptest.NewServer(mux)
	defer hs.Close()
	c := newClient(t, hs.URL+"/api/")
	resp, err := transport.Invoke[helloReq, helloResp](testCtx(t), c, "greeter", "Hello", &helloReq{Name: "P"})
	if err != nil || resp.Message != "Hello, P" {
		t.Errorf("Invoke via /api prefix = %+v, %v, want Hello, P", resp, err)
	}
}

func TestClientMiddleware(t *testing.T) {
	_, base := start(t, greeter())
	var order []string
	mw := func(name string) middleware.Middleware {
		return func(next middleware.Handler) middleware.Handler {
			return func(ctx context.Context, req any) (any, error) {
				order = append(order, name)
				return next(ctx, req)
			}
		}
	}
	cached := func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			if req.(*helloReq).Name == "cached" {
				return &helloResp{Message: "from cache"}, nil
			}
			return next(ctx, req)
		}
	}
	failing := func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			if req.(*helloReq).Name == "deny" {
				return nil, errs.New(errs.PermissionDenied, "denied by client middleware")
			}
			return next(ctx, req)
		}
	}
	c := newClient(t, base, fhttp.WithClientMiddleware(mw("a"), mw("b"), cached, failing))
	resp, err := transport.Invoke[helloReq, helloResp](testCtx(t), c, "greeter", "Hello", &helloReq{Name: "Ada"})
	if err != nil || resp.Message != "Hello, Ada" {
		t.Fatalf("Invoke = %+v, %v, want Hello, Ada", resp, err)
	}
	if got := strings.Join(order, ","); got != "a,b" {
		t.Errorf("middleware order = %s, want a,b", got)
	}
	resp, err = transport.Invoke[helloReq, helloResp](testCtx(t), c, "greeter", "Hello", &helloReq{Name: "cached"})
	if err != nil || resp.Message != "from cache" {
		t.Errorf("Invoke(cached) = %+v, %v, want from cache", resp, err)
	}
	_, err = transport.Invoke[helloReq, helloResp](testCtx(t), c, "greeter", "Hello", &helloReq{Name: "deny"})
	if errs.CodeOf(err) != errs.PermissionDenied {
		t.Errorf("Invoke(deny) = %v, want permission_denied", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	_, base := start(t, greeter())
	c := newClient(t, base)
	errc := make(chan error, 32)
	for i := range 32 {
		go func() {
			name := strings.Repeat("n", i)
			resp, err := transport.Invoke[helloReq, helloResp](testCtx(t), c, "greeter", "Hello", &helloReq{Name: name})
			if err == nil && resp.Message != "Hello, "+name {
				err = errors.New("wrong reply " + resp.Message)
			}
			errc <- err
		}()
	}
	for range 32 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}

func TestHeaderAdapter(t *testing.T) {
	h := fhttp.Header(http.Header{})
	h.Add("X-B", "1")
	h.Add("x-b", "2")
	h.Set("x-a", "3")
	http.Header(h)["raw-lower"] = []string{"4"}
	if got, want := h.Keys(), []string{"raw-lower", "x-a", "x-b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Keys() = %v, want %v", got, want)
	}
	if got := h.Values("X-b"); !reflect.DeepEqual(got, []string{"1", "2"}) {
		t.Errorf("Values(X-b) = %v, want [1 2]", got)
	}
	h.Del("X-A")
	if got := h.Get("x-a"); got != "" {
		t.Errorf("Get(x-a) after Del = %q, want empty", got)
	}
}

type richReq struct {
	Name   string            `json:"name"`
	Count  int32             `json:"count"`
	Tags   []string          `json:"tags"`
	Labels map[string]string `json:"labels"`
	When   time.Time         `json:"when"`
}

type anyReq struct {
	Value any `json:"value"` // protobuf cannot carry an interface
}

func TestPlainStructProtobuf(t *testing.T) {
	s := server.New("plain", server.WithLogger(quiet))
	server.Handle(s, "Echo", func(_ context.Context, req *richReq) (*richReq, error) { return req, nil })
	server.Handle(s, "Any", func(_ context.Context, req *anyReq) (*helloResp, error) { return &helloResp{Message: "ok"}, nil })
	_, base := start(t, s)
	c := newClient(t, base, fhttp.WithCodec(codec.Proto))
	in := &richReq{Name: "Ada", Count: 3, Tags: []string{"a", "b"}, Labels: map[string]string{"k": "v"}, When: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}
	out, err := transport.Invoke[richReq, richReq](testCtx(t), c, "plain", "Echo", in)
	if err != nil {
		t.Fatalf("Invoke(Echo) over protobuf = %v, want nil", err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("Invoke(Echo) over protobuf = %+v, want %+v", out, in)
	}

	err = c.Invoke(testCtx(t), "plain", "Any", &helloReq{}, &helloResp{})
	if errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), "cannot be called with protobuf") {
		t.Errorf("Invoke(Any) over protobuf = %v, want invalid_argument naming protobuf", err)
	}
	r := do(t, rawClient(t), "POST", base+"/plain/Any", "application/protobuf", nil)
	if r.status != http.StatusUnsupportedMediaType {
		t.Errorf("POST /plain/Any as protobuf = %d, want 415", r.status)
	}
	jc := newClient(t, base)
	if err := jc.Invoke(testCtx(t), "plain", "Any", &anyReq{Value: 1}, &helloResp{}); err != nil {
		t.Errorf("Invoke(Any) over JSON = %v, want nil", err)
	}
}

// A service name with a '.' is a fully qualified gRPC service name, which
// HTTP cannot call: InvalidArgument saying so, and no request is sent.
func TestFullGRPCNameRefused(t *testing.T) {
	var hits atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer hs.Close()
	mw := func(next middleware.Handler) middleware.Handler { return next }
	for _, c := range []*fhttp.Client{newClient(t, hs.URL), newClient(t, hs.URL, fhttp.WithClientMiddleware(mw))} {
		err := c.Invoke(testCtx(t), "grpc.health.v1.Health", "Check", &helloReq{}, &helloResp{})
		var e *errs.Error
		if !errors.As(err, &e) || e.Code() != errs.InvalidArgument || !strings.Contains(e.Message(), `"grpc.health.v1.Health"`) ||
			!strings.Contains(e.Message(), "fully qualified gRPC service name") {
			t.Errorf("Invoke(grpc.health.v1.Health, Check) = %v, want invalid_argument naming it a gRPC service name", err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server got %d requests, want none", n)
	}
}
