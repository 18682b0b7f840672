package nats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestRoundTrip(t *testing.T) {
	e := newEnv(t)
	srv := server.New("greeter")
	server.Handle(srv, "Hello", hello)
	server.Handle(srv, "Upper", func(_ context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return wrapperspb.String(strings.ToUpper(req.GetValue())), nil
	})
	serve(t, e.nc, srv)
	protoClient := fnats.NewClient(e.nc, fnats.WithCodec(codec.Proto))

	tests := []struct {
		name     string
		client   *fnats.Client
		endpoint string
		req, got any
		want     any
	}{
		{"json struct", e.client, "Hello", &HelloRequest{Name: "Ferry"}, &HelloReply{}, &HelloReply{Message: "Hello, Ferry"}},
		{"empty body is the zero request", e.client, "Hello", nil, &HelloReply{}, &HelloReply{Message: "Hello, "}},
		{"proto message as json", e.client, "Upper", wrapperspb.String("abc"), &wrapperspb.StringValue{}, wrapperspb.String("ABC")},
		{"proto message as protobuf", protoClient, "Upper", wrapperspb.String("xyz"), &wrapperspb.StringValue{}, wrapperspb.String("XYZ")},
		{"plain struct as protobuf", protoClient, "Hello", &HelloRequest{Name: "proto"}, &HelloReply{}, &HelloReply{Message: "Hello, proto"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.client.Invoke(testCtx(t), "greeter", tt.endpoint, tt.req, tt.got)
			if err != nil {
				t.Fatalf("Invoke(greeter.%s, %v) = %v, want nil", tt.endpoint, tt.req, err)
			}
			if m, ok := tt.want.(proto.Message); ok {
				if !proto.Equal(tt.got.(proto.Message), m) {
					t.Errorf("Invoke(greeter.%s, %v) reply = %v, want %v", tt.endpoint, tt.req, tt.got, tt.want)
				}
			} else if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("Invoke(greeter.%s, %v) reply = %+v, want %+v", tt.endpoint, tt.req, tt.got, tt.want)
			}
		})
	}

	t.Run("typed helper", func(t *testing.T) {
		got, err := transport.Invoke[HelloRequest, HelloReply](testCtx(t), e.client, "greeter", "Hello", &HelloRequest{Name: "you"})
		if err != nil || got.Message != "Hello, you" {
			t.Errorf("transport.Invoke(greeter.Hello) = %+v, %v, want Hello, you", got, err)
		}
	})

	t.Run("nats req interop", func(t *testing.T) {
		// What `nats req greeter.Hello '{"name":"cli"}'` sends: no headers at all.
		msg, err := e.nc.RequestWithContext(testCtx(t), "greeter.Hello", []byte(`{"name":"cli"}`))
		if err != nil {
			t.Fatalf("Request(greeter.Hello) = %v, want nil", err)
		}
		if got, want := string(msg.Data), `{"message":"Hello, cli"}`; got != want {
			t.Errorf("Request(greeter.Hello) = %s, want %s", got, want)
		}
		if ct := msg.Header.Get("Content-Type"); ct != "" {
			t.Errorf("JSON reply Content-Type = %q, want none", ct)
		}
	})
}

func TestMetadata(t *testing.T) {
	e := newEnv(t)
	srv := server.New("meta")
	type seen struct {
		call    transport.Call
		user    string
		mixed   []string
		timeout string
	}
	seenCh := make(chan seen, 1)
	server.Handle(srv, "Echo", func(ctx context.Context, req *HelloRequest) (*HelloReply, error) {
		c, ok := transport.CallFromContext(ctx)
		if !ok {
			return nil, errs.New(errs.Internal, "no call in context")
		}
		seenCh <- seen{call: *c, user: c.Request.Get("X-User"), mixed: c.Request.Values("x-mixed"), timeout: c.Request.Get("ferry-timeout-ms")}
		c.Reply.Set("X-Answer", "42")
		c.Reply.Add("x-list", "a")
		c.Reply.Add("x-list", "b")
		if req.Name == "fail" {
			return nil, errs.New(errs.FailedPrecondition, "failed on purpose")
		}
		return &HelloReply{Message: "ok"}, nil
	})
	serve(t, e.nc, srv)

	t.Run("both ways", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(testCtx(t), 5*time.Second)
		defer cancel()
		ctx = transport.WithMetadata(ctx, transport.Pairs("x-user", "bob", "x-mixed", "1", "x-mixed", "2"))
		var reply transport.Metadata
		ctx = transport.CaptureReply(ctx, &reply)
		if err := e.client.Invoke(ctx, "meta", "Echo", &HelloRequest{}, &HelloReply{}); err != nil {
			t.Fatalf("Invoke(meta.Echo) = %v, want nil", err)
		}
		s := <-seenCh
		if s.user != "bob" {
			t.Errorf("server Request.Get(X-User) = %q, want bob", s.user)
		}
		if want := []string{"1", "2"}; !reflect.DeepEqual(s.mixed, want) {
			t.Errorf("server Request.Values(x-mixed) = %q, want %q", s.mixed, want)
		}
		if ms, err := strconv.Atoi(s.timeout); err != nil || ms <= 0 || ms > 5000 {
			t.Errorf("server Request.Get(ferry-timeout-ms) = %q, want 1..5000", s.timeout)
		}
		c := s.call
		if c.Service != "meta" || c.Endpoint != "Echo" || c.Kind != transport.NATS || c.Client {
			t.Errorf("server Call = %s.%s kind %v client %v, want meta.Echo kind nats client false", c.Service, c.Endpoint, c.Kind, c.Client)
		}
		if d := time.Until(c.Deadline); d <= 0 || d > 5*time.Second {
			t.Errorf("server Call.Deadline in %v, want within 5s", d)
		}
		if got := reply.Get("x-answer"); got != "42" {
			t.Errorf("reply metadata x-answer = %q, want 42", got)
		}
		if got, want := reply.Values("x-list"), []string{"a", "b"}; !reflect.DeepEqual(got, want) {
			t.Errorf("reply metadata x-list = %q, want %q", got, want)
		}
		for _, k := range reply.Keys() {
			if k == "content-type" || strings.HasPrefix(k, "nats-service") || k == "ferry-error-code" {
				t.Errorf("reply metadata has wire header %q", k)
			}
		}
	})

	t.Run("reply metadata on error", func(t *testing.T) {
		var reply transport.Metadata
		ctx := transport.CaptureReply(testCtx(t), &reply)
		err := e.client.Invoke(ctx, "meta", "Echo", &HelloRequest{Name: "fail"}, &HelloReply{})
		<-seenCh
		if errs.CodeOf(err) != errs.FailedPrecondition {
			t.Fatalf("Invoke(meta.Echo fail) = %v, want failed_precondition", err)
		}
		if got := reply.Get("x-answer"); got != "42" {
			t.Errorf("reply metadata x-answer on error = %q, want 42", got)
		}
	})

	t.Run("header case does not matter", func(t *testing.T) {
		msg := nats.NewMsg("meta.Echo")
		msg.Header.Set("X-USER", "shouty")
		msg.Data = []byte(`{}`)
		reply, err := e.nc.RequestMsgWithContext(testCtx(t), msg)
		if err != nil {
			t.Fatalf("Request(meta.Echo) = %v, want nil", err)
		}
		if s := <-seenCh; s.user != "shouty" {
			t.Errorf("server Request.Get(X-User) with key X-USER = %q, want shouty", s.user)
		}
		if got := reply.Header.Get("x-answer"); got != "42" {
			t.Errorf("reply header x-answer = %q, want 42 under a lower-case key", got)
		}
	})

	t.Run("client middleware", func(t *testing.T) {
		var clientCall transport.Call
		var replyAfter string
		mw := func(next middleware.Handler) middleware.Handler {
			return func(ctx context.Context, req any) (any, error) {
				c, _ := transport.CallFromContext(ctx)
				c.Request.Set("x-user", "from-middleware")
				resp, err := next(ctx, req)
				clientCall = *c
				replyAfter = c.Reply.Get("x-answer")
				return resp, err
			}
		}
		cl := fnats.NewClient(e.nc, fnats.WithClientMiddleware(mw))
		ctx := transport.WithMetadata(testCtx(t), transport.Pairs("x-mixed", "m"))
		var reply transport.Metadata
		ctx = transport.CaptureReply(ctx, &reply)
		var out HelloReply
		if err := cl.Invoke(ctx, "meta", "Echo", &HelloRequest{}, &out); err != nil {
			t.Fatalf("Invoke(meta.Echo) with middleware = %v, want nil", err)
		}
		s := <-seenCh
		if s.user != "from-middleware" || !reflect.DeepEqual(s.mixed, []string{"m"}) {
			t.Errorf("server saw x-user %q x-mixed %q, want from-middleware [m]", s.user, s.mixed)
		}
		if !clientCall.Client || clientCall.Kind != transport.NATS || clientCall.Service != "meta" || clientCall.Endpoint != "Echo" {
			t.Errorf("client Call = %+v, want Client true, Kind nats, meta.Echo", clientCall)
		}
		if clientCall.Deadline.IsZero() {
			t.Errorf("client Call.Deadline is zero, want the default timeout")
		}
		if replyAfter != "42" || reply.Get("x-answer") != "42" {
			t.Errorf("client Call.Reply x-answer = %q, sink %q, want 42", replyAfter, reply.Get("x-answer"))
		}
		if out.Message != "ok" {
			t.Errorf("reply through middleware = %+v, want ok", out)
		}
		if got := transport.OutgoingMetadata(ctx).Get("x-user"); got != "" {
			t.Errorf("middleware changed the caller's metadata: x-user = %q", got)
		}
	})
}

func TestErrorCodes(t *testing.T) {
	e := newEnv(t)
	srv := server.New("errors")
	detail := errs.Detail{Field: "name", Reason: "must not be empty"}
	server.Handle(srv, "Fail", func(_ context.Context, req *HelloRequest) (*HelloReply, error) {
		if req.Name == "plain" {
			return nil, errors.New("database password is hunter2")
		}
		c, _ := errs.ParseCode(req.Name)
		return nil, errs.New(c, "failed with "+req.Name+"\non two lines").WithDetails(detail)
	})
	serve(t, e.nc, srv)

	for _, code := range errs.Codes() {
		t.Run(code.String(), func(t *testing.T) {
			err := e.client.Invoke(testCtx(t), "errors", "Fail", &HelloRequest{Name: code.String()}, &HelloReply{})
			var got *errs.Error
			if !errors.As(err, &got) {
				t.Fatalf("Invoke(errors.Fail %s) = %v, want *errs.Error", code, err)
			}
			want := "failed with " + code.String() + "\non two lines"
			if got.Code() != code || got.Message() != want {
				t.Errorf("Invoke(errors.Fail %s) = %s %q, want %s %q", code, got.Code(), got.Message(), code, want)
			}
			if !reflect.DeepEqual(got.Details(), []errs.Detail{detail}) {
				t.Errorf("Invoke(errors.Fail %s) details = %+v, want %+v", code, got.Details(), []errs.Detail{detail})
			}

			// The wire form that micro clients read.
			msg, rerr := e.nc.RequestWithContext(testCtx(t), "errors.Fail", []byte(`{"name":"`+code.String()+`"}`))
			if rerr != nil {
				t.Fatalf("Request(errors.Fail) = %v, want nil", rerr)
			}
			if got, want := msg.Header.Get(micro.ErrorCodeHeader), strconv.Itoa(errs.HTTPStatus(code)); got != want {
				t.Errorf("%s header = %q, want %q", micro.ErrorCodeHeader, got, want)
			}
			if got := msg.Header.Get(fnats.ErrorCodeHeader); got != code.String() {
				t.Errorf("%s header = %q, want %q", fnats.ErrorCodeHeader, got, code.String())
			}
			if got := msg.Header.Get(micro.ErrorHeader); got != "failed with "+code.String()+" on two lines" {
				t.Errorf("%s header = %q, want the message on one line", micro.ErrorHeader, got)
			}
		})
	}

	t.Run("protobuf client", func(t *testing.T) {
		cl := fnats.NewClient(e.nc, fnats.WithCodec(codec.Proto))
		err := cl.Invoke(testCtx(t), "errors", "Fail", &HelloRequest{Name: "not_found"}, &HelloReply{})
		var got *errs.Error
		if !errors.As(err, &got) || got.Code() != errs.NotFound || len(got.Details()) != 1 {
			t.Errorf("Invoke(errors.Fail) with the proto codec = %v, want not_found with one detail", err)
		}
	})

	t.Run("plain error hides its text", func(t *testing.T) {
		err := e.client.Invoke(testCtx(t), "errors", "Fail", &HelloRequest{Name: "plain"}, &HelloReply{})
		if errs.CodeOf(err) != errs.Unknown || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Invoke(errors.Fail plain) = %v, want unknown without the error text", err)
		}
	})
}

// TestMicroServiceErrors checks that the client understands a service
// written with nats.go/micro, which sends only the micro error headers.
func TestMicroServiceErrors(t *testing.T) {
	e := newEnv(t)
	svc, err := micro.AddService(e.nc, micro.Config{
		Name:    "legacy",
		Version: "1.0.0",
		Endpoint: &micro.EndpointConfig{
			Subject: "legacy.Find",
			Handler: micro.HandlerFunc(func(r micro.Request) {
				switch string(r.Data()) {
				case `"ok"`:
					_ = r.Respond([]byte(`{"message":"found"}`))
				case `"teapot"`:
					_ = r.Error("418", "short and stout", nil)
				case `"text"`:
					_ = r.Error("bad", "odd code", nil)
				default:
					_ = r.Error("404", "no such thing", nil)
				}
			}),
		},
	})
	if err != nil {
		t.Fatalf("micro.AddService() = %v, want nil", err)
	}
	defer svc.Stop()

	tests := []struct {
		req      string
		wantCode errs.Code
		wantMsg  string
	}{
		{"ok", 0, ""},
		{"missing", errs.NotFound, "no such thing"},
		{"teapot", errs.Unknown, "short and stout"},
		{"text", errs.Unknown, "odd code"},
	}
	for _, tt := range tests {
		var out HelloReply
		err := e.client.Invoke(testCtx(t), "legacy", "Find", tt.req, &out)
		if tt.wantCode == 0 {
			if err != nil || out.Message != "found" {
				t.Errorf("Invoke(legacy.Find %q) = %+v, %v, want found", tt.req, out, err)
			}
			continue
		}
		var got *errs.Error
		if !errors.As(err, &got) || got.Code() != tt.wantCode || got.Message() != tt.wantMsg {
			t.Errorf("Invoke(legacy.Find %q) = %v, want %s: %s", tt.req, err, tt.wantCode, tt.wantMsg)
		}
	}
}

func TestDeadlineExceeded(t *testing.T) {
	e := newEnv(t)
	srv := server.New("slow")
	handlerErr := make(chan error, 1)
	server.Handle(srv, "Wait", func(ctx context.Context, _ *HelloRequest) (*HelloReply, error) {
		<-ctx.Done()
		handlerErr <- ctx.Err()
		return nil, ctx.Err()
	})
	serve(t, e.nc, srv)

	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := e.client.Invoke(ctx, "slow", "Wait", &HelloRequest{}, &HelloReply{})
	if errs.CodeOf(err) != errs.DeadlineExceeded {
		t.Errorf("Invoke(slow.Wait, 300ms) = %v, want deadline_exceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Invoke(slow.Wait, 300ms) took %v, want about 300ms", d)
	}
	select {
	case herr := <-handlerErr:
		if !errors.Is(herr, context.DeadlineExceeded) {
			t.Errorf("handler ctx.Err() = %v, want context.DeadlineExceeded", herr)
		}
	case <-testCtx(t).Done():
		t.Fatalf("handler context was never cancelled")
	}
}

func TestServerDefaultTimeout(t *testing.T) {
	e := newEnv(t)
	srv := server.New("deflt")
	server.Handle(srv, "Deadline", func(ctx context.Context, _ *HelloRequest) (*HelloReply, error) {
		d, _ := ctx.Deadline()
		return &HelloReply{Message: time.Until(d).Round(time.Second).String()}, nil
	})
	serve(t, e.nc, srv, fnats.WithDefaultTimeout(7*time.Second))

	// No Ferry-Timeout-Ms header: the server's default applies.
	msg, err := e.nc.RequestWithContext(testCtx(t), "deflt.Deadline", nil)
	if err != nil {
		t.Fatalf("Request(deflt.Deadline) = %v, want nil", err)
	}
	if got, want := string(msg.Data), `{"message":"7s"}`; got != want {
		t.Errorf("handler deadline without header = %s, want %s", got, want)
	}
}

func TestClientDefaultTimeout(t *testing.T) {
	e := newEnv(t)
	srv := server.New("hang")
	type seen struct {
		header   string
		deadline time.Duration
	}
	seenCh := make(chan seen, 1)
	server.Handle(srv, "Wait", func(ctx context.Context, _ *HelloRequest) (*HelloReply, error) {
		c, _ := transport.CallFromContext(ctx)
		d, _ := ctx.Deadline()
		seenCh <- seen{header: c.Request.Get(fnats.TimeoutHeader), deadline: time.Until(d)}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	serve(t, e.nc, srv, fnats.WithDefaultTimeout(time.Second))
	cl := fnats.NewClient(e.nc, fnats.WithClientTimeout(200*time.Millisecond))

	start := time.Now()
	err := cl.Invoke(t.Context(), "hang", "Wait", &HelloRequest{}, &HelloReply{})
	if errs.CodeOf(err) != errs.DeadlineExceeded {
		t.Errorf("Invoke(hang.Wait) without deadline = %v, want deadline_exceeded after the client default", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Invoke(hang.Wait) without deadline took %v, want about 200ms", d)
	}
	// The caller set no deadline, so none travels: the server's default applies.
	s := <-seenCh
	if s.header != "" || s.deadline <= 500*time.Millisecond || s.deadline > time.Second {
		t.Errorf("server saw %s %q and a deadline in %v, want no header and the server default of 1s", fnats.TimeoutHeader, s.header, s.deadline)
	}
}

func TestCanceled(t *testing.T) {
	e := newEnv(t)
	srv := server.New("cancel")
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	server.Handle(srv, "Wait", func(ctx context.Context, _ *HelloRequest) (*HelloReply, error) {
		started <- struct{}{}
		// NATS does not carry cancellation: the handler runs on until its
		// deadline or, here, the end of the test.
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, ctx.Err()
	})
	serve(t, e.nc, srv)
	defer close(release)

	ctx, cancel := context.WithCancel(testCtx(t))
	go func() {
		<-started
		cancel()
	}()
	err := e.client.Invoke(ctx, "cancel", "Wait", &HelloRequest{}, &HelloReply{})
	if errs.CodeOf(err) != errs.Canceled {
		t.Errorf("Invoke(cancel.Wait) cancelled = %v, want canceled", err)
	}

	err = e.client.Invoke(ctx, "cancel", "Wait", &HelloRequest{}, &HelloReply{})
	if errs.CodeOf(err) != errs.Canceled {
		t.Errorf("Invoke(cancel.Wait) with a cancelled ctx = %v, want canceled", err)
	}
}

func TestOversized(t *testing.T) {
	const maxPayload = 4 << 10
	ns := startNATS(t, natsembed.Options{MaxPayload: maxPayload})
	nc := connect(t, ns)
	client := fnats.NewClient(nc)
	srv := server.New("big")
	server.Handle(srv, "Echo", func(_ context.Context, req *HelloRequest) (*HelloReply, error) {
		return &HelloReply{Message: strings.Repeat(req.Name, 1000)}, nil
	})
	serve(t, nc, srv)

	t.Run("request", func(t *testing.T) {
		err := client.Invoke(testCtx(t), "big", "Echo", &HelloRequest{Name: strings.Repeat("x", 2*maxPayload)}, &HelloReply{})
		if errs.CodeOf(err) != errs.ResourceExhausted {
			t.Errorf("Invoke(big.Echo, 8 KiB) = %v, want resource_exhausted", err)
		}
	})
	t.Run("reply", func(t *testing.T) {
		err := client.Invoke(testCtx(t), "big", "Echo", &HelloRequest{Name: "abcdefghij"}, &HelloReply{})
		if errs.CodeOf(err) != errs.ResourceExhausted {
			t.Errorf("Invoke(big.Echo) with a 10 KB reply = %v, want resource_exhausted", err)
		}
	})
	t.Run("server limit", func(t *testing.T) {
		srv := server.New("small")
		server.Handle(srv, "Echo", hello)
		serve(t, nc, srv, fnats.WithMaxRequestBytes(100))
		err := client.Invoke(testCtx(t), "small", "Echo", &HelloRequest{Name: strings.Repeat("x", 200)}, &HelloReply{})
		if errs.CodeOf(err) != errs.ResourceExhausted {
			t.Errorf("Invoke(small.Echo, 200 B) over a 100 B limit = %v, want resource_exhausted", err)
		}
	})
}

// TestBadRequests sends raw NATS requests and checks the error reply on the
// wire.
func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	srv := server.New("strict")
	server.Handle(srv, "Hello", hello)
	serve(t, e.nc, srv)

	tests := []struct {
		name     string
		subject  string
		header   nats.Header
		body     string
		wantCode errs.Code
		wantIn   string // part of the message
	}{
		{"malformed json", "strict.Hello", nil, `{"name":`, errs.InvalidArgument, "malformed json request body"},
		{"wrong json type", "strict.Hello", nil, `{"name":42}`, errs.InvalidArgument, "malformed json request body"},
		{"unsupported content type", "strict.Hello", nats.Header{"Content-Type": {"text/xml"}}, `<a/>`, errs.InvalidArgument, `"text/xml"`},
		{"bad timeout", "strict.Hello", nats.Header{"Ferry-Timeout-Ms": {"soon"}}, `{}`, errs.InvalidArgument, "Ferry-Timeout-Ms"},
		{"negative timeout", "strict.Hello", nats.Header{"ferry-timeout-ms": {"-5"}}, `{}`, errs.InvalidArgument, "Ferry-Timeout-Ms"},
		{"unknown endpoint", "strict.Nope", nil, `{}`, errs.NotFound, `"Nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := &nats.Msg{Subject: tt.subject, Header: tt.header, Data: []byte(tt.body)}
			reply, err := e.nc.RequestMsgWithContext(testCtx(t), msg)
			if err != nil {
				t.Fatalf("Request(%s) = %v, want nil", tt.subject, err)
			}
			if got := reply.Header.Get(fnats.ErrorCodeHeader); got != tt.wantCode.String() {
				t.Errorf("Request(%s %s) %s = %q, want %q", tt.subject, tt.body, fnats.ErrorCodeHeader, got, tt.wantCode)
			}
			var body errs.Error
			if err := json.Unmarshal(reply.Data, &body); err != nil {
				t.Fatalf("error body %s: %v", reply.Data, err)
			}
			if body.Code() != tt.wantCode || !strings.Contains(body.Message(), tt.wantIn) {
				t.Errorf("Request(%s %s) error = %v, want %s mentioning %s", tt.subject, tt.body, &body, tt.wantCode, tt.wantIn)
			}
		})
	}

	t.Run("client", func(t *testing.T) {
		err := e.client.Invoke(testCtx(t), "strict", "Missing", &HelloRequest{}, &HelloReply{})
		if errs.CodeOf(err) != errs.NotFound || !strings.Contains(err.Error(), "Missing") {
			t.Errorf("Invoke(strict.Missing) = %v, want not_found naming Missing", err)
		}
		for _, name := range []string{"", "a.b", "*", ">", "has space"} {
			err := e.client.Invoke(testCtx(t), "strict", name, &HelloRequest{}, &HelloReply{})
			if errs.CodeOf(err) != errs.InvalidArgument {
				t.Errorf("Invoke(strict, endpoint %q) = %v, want invalid_argument", name, err)
			}
		}
		ctx := transport.WithMetadata(testCtx(t), transport.Pairs("bad key", "v"))
		err = e.client.Invoke(ctx, "strict", "Hello", &HelloRequest{}, &HelloReply{})
		if errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Invoke with metadata key %q = %v, want invalid_argument", "bad key", err)
		}
		err = e.client.Invoke(testCtx(t), "strict", "Hello", make(chan int), &HelloReply{})
		if errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Invoke with an unencodable request = %v, want invalid_argument", err)
		}
	})
}

func TestNoResponders(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Second)
	defer cancel()
	start := time.Now()
	err := e.client.Invoke(ctx, "ghost", "Hello", &HelloRequest{}, &HelloReply{})
	if errs.CodeOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "no responders for ghost.Hello") {
		t.Errorf("Invoke(ghost.Hello) = %v, want unavailable: no responders for ghost.Hello", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Invoke(ghost.Hello) took %v, want a fast failure", d)
	}
}

func TestPanicKeepsServing(t *testing.T) {
	e := newEnv(t)
	srv := server.New("panicky", server.WithLogger(discardLogger()))
	server.Handle(srv, "Hello", func(ctx context.Context, req *HelloRequest) (*HelloReply, error) {
		if req.Name == "boom" {
			panic("boom")
		}
		return hello(ctx, req)
	})
	serve(t, e.nc, srv)

	err := e.client.Invoke(testCtx(t), "panicky", "Hello", &HelloRequest{Name: "boom"}, &HelloReply{})
	if errs.CodeOf(err) != errs.Internal || strings.Contains(err.Error(), "boom") {
		t.Errorf("Invoke(panicky.Hello boom) = %v, want internal without the panic value", err)
	}
	var out HelloReply
	if err := e.client.Invoke(testCtx(t), "panicky", "Hello", &HelloRequest{Name: "again"}, &out); err != nil || out.Message != "Hello, again" {
		t.Errorf("Invoke(panicky.Hello) after a panic = %+v, %v, want Hello, again", out, err)
	}
}

func TestQueueGroupSharesLoad(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	client := fnats.NewClient(connect(t, ns))
	var counts [2]atomic.Int64
	for i := range counts {
		srv := server.New("shared")
		server.Handle(srv, "Who", func(context.Context, *HelloRequest) (*HelloReply, error) {
			counts[i].Add(1)
			return &HelloReply{Message: strconv.Itoa(i)}, nil
		})
		serve(t, connect(t, ns), srv)
	}
	const calls = 60
	for range calls {
		if err := client.Invoke(testCtx(t), "shared", "Who", &HelloRequest{}, &HelloReply{}); err != nil {
			t.Fatalf("Invoke(shared.Who) = %v, want nil", err)
		}
	}
	a, b := counts[0].Load(), counts[1].Load()
	if a+b != calls || a == 0 || b == 0 {
		t.Errorf("calls served per instance = %d, %d, want both > 0 and %d in all", a, b, calls)
	}
}

func TestConcurrentHandlers(t *testing.T) {
	e := newEnv(t)
	srv := server.New("sleepy")
	server.Handle(srv, "Nap", func(ctx context.Context, _ *HelloRequest) (*HelloReply, error) {
		select {
		case <-time.After(100 * time.Millisecond):
			return &HelloReply{}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	serve(t, e.nc, srv)

	const calls = 50
	start := time.Now()
	var wg sync.WaitGroup
	errCh := make(chan error, calls)
	for range calls {
		wg.Go(func() {
			errCh <- e.client.Invoke(testCtx(t), "sleepy", "Nap", &HelloRequest{}, &HelloReply{})
		})
	}
	wg.Wait()
	close(errCh)
	for err := range errCh {
		if err != nil {
			t.Fatalf("Invoke(sleepy.Nap) = %v, want nil", err)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("%d calls sleeping 100ms took %v, want well under %v (serial)", calls, d, calls*100*time.Millisecond)
	}
}

func TestSlowHandlerDoesNotBlockOthers(t *testing.T) {
	e := newEnv(t)
	srv := server.New("mixed")
	entered, release := make(chan struct{}), make(chan struct{})
	server.Handle(srv, "Slow", func(context.Context, *HelloRequest) (*HelloReply, error) {
		close(entered)
		<-release
		return &HelloReply{}, nil
	})
	server.Handle(srv, "Fast", hello)
	serve(t, e.nc, srv)

	slowDone := make(chan error, 1)
	go func() {
		slowDone <- e.client.Invoke(testCtx(t), "mixed", "Slow", &HelloRequest{}, &HelloReply{})
	}()
	<-entered
	for i := range 20 {
		ctx, cancel := context.WithTimeout(testCtx(t), 5*time.Second)
		err := e.client.Invoke(ctx, "mixed", "Fast", &HelloRequest{Name: strconv.Itoa(i)}, &HelloReply{})
		cancel()
		if err != nil {
			t.Fatalf("Invoke(mixed.Fast) #%d while Slow runs = %v, want nil", i, err)
		}
	}
	close(release)
	if err := <-slowDone; err != nil {
		t.Errorf("Invoke(mixed.Slow) = %v, want nil", err)
	}
}

func TestMaxConcurrentWaits(t *testing.T) {
	e := newEnv(t)
	srv := server.New("narrow")
	var running, peak atomic.Int64
	server.Handle(srv, "Work", func(context.Context, *HelloRequest) (*HelloReply, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
		return &HelloReply{}, nil
	})
	serve(t, e.nc, srv, fnats.WithMaxConcurrent(2))

	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 20 {
		wg.Go(func() {
			if err := e.client.Invoke(testCtx(t), "narrow", "Work", &HelloRequest{}, &HelloReply{}); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of 20 calls failed with WithMaxConcurrent(2), want none (requests wait)", failed.Load())
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("peak concurrent handlers = %d, want <= 2", p)
	}
}

func TestPublishWithoutReplyIsIgnored(t *testing.T) {
	e := newEnv(t)
	srv := server.New("quiet")
	var calls atomic.Int64
	server.Handle(srv, "Hello", func(ctx context.Context, req *HelloRequest) (*HelloReply, error) {
		calls.Add(1)
		return hello(ctx, req)
	})
	tr := serve(t, e.nc, srv)
	if err := e.nc.Publish("quiet.Hello", []byte(`{}`)); err != nil {
		t.Fatalf("Publish(quiet.Hello) = %v", err)
	}
	// A request after the publish is handled after it: subscriptions
	// deliver in order.
	if err := e.client.Invoke(testCtx(t), "quiet", "Hello", &HelloRequest{}, &HelloReply{}); err != nil {
		t.Fatalf("Invoke(quiet.Hello) = %v, want nil", err)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("handler calls = %d, want 1 (the publish has nobody to answer)", got)
	}
	// A request is counted once its reply went out; the caller may see the
	// reply first.
	ferrytest.Eventually(t, "the request counted", func() bool { return tr.Stats().Endpoints[0].NumRequests >= 1 })
	if n := tr.Stats().Endpoints[0].NumRequests; n != 1 {
		t.Errorf("Stats().NumRequests = %d, want 1 (the publish without reply is not a request)", n)
	}
}

func TestStartErrors(t *testing.T) {
	e := newEnv(t)
	srv := server.New("twice")
	server.Handle(srv, "Hello", hello)
	tr := serve(t, e.nc, srv)
	if err := tr.Start(testCtx(t), srv); err == nil {
		t.Errorf("second Start() = nil, want an error")
	}

	bad := server.New("bad")
	server.Handle(bad, "Hello", hello)
	server.Handle(bad, "Hello", hello)
	if err := fnats.NewServer(e.nc).Start(testCtx(t), bad); err == nil {
		t.Errorf("Start() with a duplicate endpoint = nil, want the registration error")
	}

	if err := fnats.NewServer(e.nc).Stop(testCtx(t)); err != nil {
		t.Errorf("Stop() before Start = %v, want nil", err)
	}
	if err := fnats.NewServer(e.nc).Start(testCtx(t), nil); err == nil {
		t.Errorf("Start(nil) = nil, want an error")
	}

	closed := connect(t, e.ns)
	closed.Close()
	ok := server.New("closed")
	server.Handle(ok, "Hello", hello)
	if err := fnats.NewServer(closed).Start(testCtx(t), ok); err == nil {
		t.Errorf("Start() on a closed connection = nil, want an error")
	}
}

func TestStopDrainsInFlight(t *testing.T) {
	e := newEnv(t)
	srv := server.New("drain")
	entered := make(chan struct{})
	release := make(chan struct{})
	server.Handle(srv, "Slow", func(context.Context, *HelloRequest) (*HelloReply, error) {
		close(entered)
		<-release
		return &HelloReply{Message: "finished"}, nil
	})
	tr := fnats.NewServer(e.nc)
	if err := tr.Start(testCtx(t), srv); err != nil {
		t.Fatalf("Start() = %v, want nil", err)
	}

	type result struct {
		reply HelloReply
		err   error
	}
	callDone := make(chan result, 1)
	go func() {
		var r result
		r.err = e.client.Invoke(testCtx(t), "drain", "Slow", &HelloRequest{}, &r.reply)
		callDone <- r
	}()
	<-entered

	stopDone := make(chan error, 1)
	go func() { stopDone <- tr.Stop(testCtx(t)) }()
	select {
	case err := <-stopDone:
		t.Fatalf("Stop() = %v returned while a handler was running, want it to wait", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)

	r := <-callDone
	if r.err != nil || r.reply.Message != "finished" {
		t.Errorf("in-flight Invoke(drain.Slow) = %+v, %v, want finished", r.reply, r.err)
	}
	if err := <-stopDone; err != nil {
		t.Errorf("Stop() = %v, want nil", err)
	}

	err := e.client.Invoke(testCtx(t), "drain", "Slow", &HelloRequest{}, &HelloReply{})
	if errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("Invoke(drain.Slow) after Stop = %v, want unavailable", err)
	}
	if _, err := e.nc.RequestWithContext(testCtx(t), "$SRV.PING.drain", nil); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("Request($SRV.PING.drain) after Stop = %v, want no responders", err)
	}
	if err := tr.Stop(testCtx(t)); err != nil {
		t.Errorf("second Stop() = %v, want nil", err)
	}
}

func TestStopDeadlineCancelsHandlers(t *testing.T) {
	e := newEnv(t)
	srv := server.New("stuck")
	entered := make(chan struct{})
	handlerErr := make(chan error, 1)
	server.Handle(srv, "Wait", func(ctx context.Context, _ *HelloRequest) (*HelloReply, error) {
		close(entered)
		<-ctx.Done()
		handlerErr <- ctx.Err()
		return nil, ctx.Err()
	})
	tr := fnats.NewServer(e.nc)
	if err := tr.Start(testCtx(t), srv); err != nil {
		t.Fatalf("Start() = %v, want nil", err)
	}
	callDone := make(chan error, 1)
	go func() {
		callDone <- e.client.Invoke(testCtx(t), "stuck", "Wait", &HelloRequest{}, &HelloReply{})
	}()
	<-entered

	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	if err := tr.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop(200ms) with a stuck handler = %v, want context.DeadlineExceeded", err)
	}
	select {
	case err := <-handlerErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler ctx.Err() after Stop = %v, want context.Canceled", err)
		}
	default:
		t.Errorf("handler still running after Stop returned")
	}
	if err := <-callDone; errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("Invoke(stuck.Wait) cut off by Stop = %v, want unavailable", err)
	}
}

func TestConnectionClosedUnderServer(t *testing.T) {
	e := newEnv(t)
	srvConn := connect(t, e.ns)
	srv := server.New("orphan")
	server.Handle(srv, "Hello", hello)
	tr := fnats.NewServer(srvConn)
	if err := tr.Start(testCtx(t), srv); err != nil {
		t.Fatalf("Start() = %v, want nil", err)
	}
	if err := e.client.Invoke(testCtx(t), "orphan", "Hello", &HelloRequest{}, &HelloReply{}); err != nil {
		t.Fatalf("Invoke(orphan.Hello) = %v, want nil", err)
	}
	srvConn.Close()
	if err := tr.Stop(testCtx(t)); err != nil {
		t.Errorf("Stop() after the connection closed = %v, want nil", err)
	}
	// Until the NATS server notices the closed connection a request may
	// still be routed to it and go unanswered; either way it must fail.
	ctx, cancel := context.WithTimeout(testCtx(t), 2*time.Second)
	defer cancel()
	err := e.client.Invoke(ctx, "orphan", "Hello", &HelloRequest{}, &HelloReply{})
	if c := errs.CodeOf(err); c != errs.Unavailable && c != errs.DeadlineExceeded {
		t.Errorf("Invoke(orphan.Hello) after its connection closed = %v, want unavailable or deadline_exceeded", err)
	}
}

func TestClientClosedConnection(t *testing.T) {
	e := newEnv(t)
	nc := connect(t, e.ns)
	cl := fnats.NewClient(nc)
	nc.Close()
	err := cl.Invoke(testCtx(t), "any", "Hello", &HelloRequest{}, &HelloReply{})
	if errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("Invoke on a closed connection = %v, want unavailable", err)
	}
	if err := cl.Close(); err != nil {
		t.Errorf("Client.Close() = %v, want nil", err)
	}
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	srv := server.New("disco", server.WithVersion("1.2.3"), server.WithDescription("finds things"))
	server.Handle(srv, "Hello", hello)
	server.Handle(srv, "Fail", func(context.Context, *HelloRequest) (*HelloReply, error) {
		return nil, errs.New(errs.NotFound, "nothing here")
	})
	tr := serve(t, e.nc, srv)
	id := tr.ID()
	if id == "" {
		t.Fatalf("ID() = \"\", want a NUID")
	}
	for range 2 {
		if err := e.client.Invoke(testCtx(t), "disco", "Hello", &HelloRequest{}, &HelloReply{}); err != nil {
			t.Fatalf("Invoke(disco.Hello) = %v", err)
		}
	}
	_ = e.client.Invoke(testCtx(t), "disco", "Fail", &HelloRequest{}, &HelloReply{})
	// A request is counted once its reply has gone out, so the caller may
	// see the reply before the count.
	ferrytest.Eventually(t, "the requests counted", func() bool {
		st := tr.Stats()
		return len(st.Endpoints) == 2 && st.Endpoints[0].NumRequests == 2 && st.Endpoints[1].NumRequests == 1
	})

	request := func(t *testing.T, subject string, v any) {
		t.Helper()
		msg, err := e.nc.RequestWithContext(testCtx(t), subject, nil)
		if err != nil {
			t.Fatalf("Request(%s) = %v, want nil", subject, err)
		}
		if err := json.Unmarshal(msg.Data, v); err != nil {
			t.Fatalf("Request(%s) reply %s: %v", subject, msg.Data, err)
		}
	}
	checkIdentity := func(t *testing.T, subject string, got micro.ServiceIdentity, gotType, wantType string) {
		t.Helper()
		if got.Name != "disco" || got.Version != "1.2.3" || got.ID != id || gotType != wantType {
			t.Errorf("Request(%s) = %s %s %s type %q, want disco 1.2.3 %s type %q", subject, got.Name, got.Version, got.ID, gotType, id, wantType)
		}
	}
	wantEndpoints := []micro.EndpointInfo{
		{Name: "Hello", Subject: "disco.Hello", QueueGroup: "disco", Metadata: map[string]string{"request": "nats_test.HelloRequest", "response": "nats_test.HelloReply"}},
		{Name: "Fail", Subject: "disco.Fail", QueueGroup: "disco", Metadata: map[string]string{"request": "nats_test.HelloRequest", "response": "nats_test.HelloReply"}},
	}

	wantMeta, err := registry.Describe(srv)
	if err != nil {
		t.Fatal(err)
	}
	if wantMeta[registry.MetadataEndpoints] != "Fail,Hello" {
		t.Fatalf("Describe = %v, want endpoints Fail,Hello", wantMeta)
	}

	for _, suffix := range []string{"", ".disco", ".disco." + id} {
		t.Run("PING"+suffix, func(t *testing.T) {
			subject := "$SRV.PING" + suffix
			var p micro.Ping
			request(t, subject, &p)
			checkIdentity(t, subject, p.ServiceIdentity, p.Type, micro.PingResponseType)
			if len(p.Metadata) != 0 {
				t.Errorf("Request(%s).Metadata = %v, want none (INFO carries it)", subject, p.Metadata)
			}
		})
		t.Run("INFO"+suffix, func(t *testing.T) {
			subject := "$SRV.INFO" + suffix
			var info micro.Info
			request(t, subject, &info)
			checkIdentity(t, subject, info.ServiceIdentity, info.Type, micro.InfoResponseType)
			if info.Description != "finds things" {
				t.Errorf("Request(%s).Description = %q, want finds things", subject, info.Description)
			}
			if !reflect.DeepEqual(info.Endpoints, wantEndpoints) {
				t.Errorf("Request(%s).Endpoints = %+v, want %+v", subject, info.Endpoints, wantEndpoints)
			}
			// The identity carries what a registry would hold, so that NATS
			// discovery alone can route (registry/natssrv).
			if !maps.Equal(info.Metadata, wantMeta) {
				t.Errorf("Request(%s).Metadata = %v, want registry.Describe's %v", subject, info.Metadata, wantMeta)
			}
		})
		t.Run("STATS"+suffix, func(t *testing.T) {
			subject := "$SRV.STATS" + suffix
			var st micro.Stats
			request(t, subject, &st)
			checkIdentity(t, subject, st.ServiceIdentity, st.Type, micro.StatsResponseType)
			if len(st.Metadata) != 0 {
				t.Errorf("Request(%s).Metadata = %v, want none (INFO carries it)", subject, st.Metadata)
			}
			if st.Started.IsZero() || time.Since(st.Started) > time.Minute {
				t.Errorf("Request(%s).Started = %v, want a recent time", subject, st.Started)
			}
			if len(st.Endpoints) != 2 {
				t.Fatalf("Request(%s) has %d endpoints, want 2", subject, len(st.Endpoints))
			}
			hi, fail := st.Endpoints[0], st.Endpoints[1]
			if hi.Name != "Hello" || hi.Subject != "disco.Hello" || hi.QueueGroup != "disco" ||
				hi.NumRequests != 2 || hi.NumErrors != 0 || hi.LastError != "" || hi.ProcessingTime <= 0 ||
				hi.AverageProcessingTime != hi.ProcessingTime/2 {
				t.Errorf("Request(%s) Hello stats = %+v, want 2 requests, 0 errors", subject, hi)
			}
			if fail.Name != "Fail" || fail.NumRequests != 1 || fail.NumErrors != 1 || !strings.Contains(fail.LastError, "nothing here") {
				t.Errorf("Request(%s) Fail stats = %+v, want 1 request, 1 error, last error nothing here", subject, fail)
			}
		})
	}

	t.Run("other instance id", func(t *testing.T) {
		_, err := e.nc.RequestWithContext(testCtx(t), "$SRV.PING.disco.someone-else", nil)
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("Request($SRV.PING.disco.someone-else) = %v, want no responders", err)
		}
	})

	t.Run("methods", func(t *testing.T) {
		if got := tr.Info(); got.Name != "disco" || len(got.Endpoints) != 2 {
			t.Errorf("Info() = %+v, want disco with 2 endpoints", got)
		}
		if got := fnats.NewServer(e.nc).Stats(); got.Name != "" {
			t.Errorf("Stats() before Start = %+v, want zero", got)
		}
	})
}

// TestTwoInstancesAnswerPing checks that every instance answers the
// discovery subjects, not one per queue group.
func TestQueueGroupOption(t *testing.T) {
	e := newEnv(t)
	srv := server.New("grouped")
	server.Handle(srv, "Hello", hello)
	tr := serve(t, e.nc, srv, fnats.WithQueueGroup("blue"))
	if got := tr.Info().Endpoints[0].QueueGroup; got != "blue" {
		t.Errorf("Info().Endpoints[0].QueueGroup = %q, want blue", got)
	}
	var out HelloReply
	if err := e.client.Invoke(testCtx(t), "grouped", "Hello", &HelloRequest{Name: "q"}, &out); err != nil || out.Message != "Hello, q" {
		t.Errorf("Invoke(grouped.Hello) = %+v, %v, want Hello, q", out, err)
	}
}

func TestTwoInstancesAnswerPing(t *testing.T) {
	e := newEnv(t)
	ids := map[string]bool{}
	for range 2 {
		srv := server.New("pair")
		server.Handle(srv, "Hello", hello)
		ids[serve(t, e.nc, srv).ID()] = true
	}
	inbox := e.nc.NewInbox()
	sub, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatalf("SubscribeSync() = %v", err)
	}
	defer sub.Unsubscribe()
	if err := e.nc.PublishRequest("$SRV.PING.pair", inbox, nil); err != nil {
		t.Fatalf("PublishRequest($SRV.PING.pair) = %v", err)
	}
	got := map[string]bool{}
	for range 2 {
		msg, err := sub.NextMsgWithContext(testCtx(t))
		if err != nil {
			t.Fatalf("NextMsg() = %v, want a ping reply", err)
		}
		var p micro.Ping
		if err := json.Unmarshal(msg.Data, &p); err != nil {
			t.Fatalf("ping reply %s: %v", msg.Data, err)
		}
		got[p.ID] = true
	}
	if !reflect.DeepEqual(got, ids) {
		t.Errorf("$SRV.PING.pair answered by %v, want %v", got, ids)
	}
}

func ExampleNewServer() {
	ctx := context.Background()
	ns, err := natsembed.Start(ctx, natsembed.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()

	srv := server.New("greeter")
	server.Handle(srv, "Hello", func(_ context.Context, req *HelloRequest) (*HelloReply, error) {
		return &HelloReply{Message: "Hello, " + req.Name}, nil
	})
	tr := fnats.NewServer(nc)
	if err := tr.Start(ctx, srv); err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Stop(ctx)

	client := fnats.NewClient(nc)
	reply, err := transport.Invoke[HelloRequest, HelloReply](ctx, client, "greeter", "Hello", &HelloRequest{Name: "Ferry"})
	fmt.Println(reply.Message, err)

	err = client.Invoke(ctx, "greeter", "Goodbye", &HelloRequest{}, &HelloReply{})
	fmt.Println(err)
	// Output:
	// Hello, Ferry <nil>
	// not_found: service greeter has no endpoint "Goodbye"
}

// server.WithJSON's codec decodes NATS requests: a strict one refuses a
// key that matches a field only when case is ignored.
func TestStrictJSON(t *testing.T) {
	e := newEnv(t)
	srv := server.New("strict", server.WithJSON(codec.NewJSON(codec.JSONOptions{CaseSensitive: true, DisallowUnknownFields: true})))
	server.Handle(srv, "Hello", func(_ context.Context, r *HelloRequest) (*HelloReply, error) {
		return &HelloReply{Message: "hi " + r.Name}, nil
	})
	serve(t, e.nc, srv)
	c := fnats.NewClient(e.nc)
	var out HelloReply
	if err := c.Invoke(testCtx(t), "strict", "Hello", map[string]string{"name": "Ada"}, &out); err != nil || out.Message != "hi Ada" {
		t.Fatalf("Hello with exact names = %+v, %v", out, err)
	}
	err := c.Invoke(testCtx(t), "strict", "Hello", map[string]string{"Name": "Ada"}, &out)
	if errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), `did you mean "name"`) {
		t.Errorf("Hello with a miscased key = %v, want invalid_argument suggesting name", err)
	}
}

// A Conn that cannot connect says where, without the password.
func TestConnStartErrorHidesPassword(t *testing.T) {
	c := fnats.Connect("nats://orders:s3cret@127.0.0.1:1", nats.MaxReconnects(0))
	err := c.Start(testCtx(t))
	if err == nil {
		_ = c.Stop(testCtx(t))
		t.Fatal("Start to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Start error = %q, want the address without the password", err)
	}
	if c.NATS() != nil || c.Check(testCtx(t)) == nil {
		t.Error("a Conn that failed to start reports a connection")
	}
}

// A service name with a '.' is a fully qualified gRPC service name, which
// NATS cannot call (it would make a subject of more tokens): InvalidArgument
// saying so, and nothing is published.
func TestFullGRPCNameRefused(t *testing.T) {
	e := newEnv(t)
	sub, err := e.nc.SubscribeSync("grpc.>")
	if err != nil {
		t.Fatal(err)
	}
	mw := func(next middleware.Handler) middleware.Handler { return next }
	for _, c := range []*fnats.Client{e.client, fnats.NewClient(e.nc, fnats.WithClientMiddleware(mw))} {
		err := c.Invoke(testCtx(t), "grpc.health.v1.Health", "Check", &HelloRequest{}, &HelloReply{})
		var fe *errs.Error
		if !errors.As(err, &fe) || fe.Code() != errs.InvalidArgument || !strings.Contains(fe.Message(), `"grpc.health.v1.Health"`) ||
			!strings.Contains(fe.Message(), "fully qualified gRPC service name") {
			t.Errorf("Invoke(grpc.health.v1.Health, Check) = %v, want invalid_argument naming it a gRPC service name", err)
		}
	}
	// Messages on one connection arrive in order: the first one the
	// subscription gets is the marker published after the calls.
	if err := e.nc.Publish("grpc.marker", nil); err != nil {
		t.Fatal(err)
	}
	if msg, err := sub.NextMsgWithContext(testCtx(t)); err != nil || msg.Subject != "grpc.marker" {
		t.Errorf("first message under grpc.> = %v, %v; want the marker, no request", msg, err)
	}
}
