package grpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// timeout bounds every wait in these tests; generous for a loaded machine.
const timeout = 20 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// HelloRequest and HelloReply are the plain-struct greeter's types.
type HelloRequest struct {
	Name string `json:"name"`
}

type HelloReply struct {
	Message string `json:"message"`
}

// newGreeter returns the "greeter" service with generated-message endpoints
// used by most tests:
//   - Echo replies with the request's value, "Hello, <v>!".
//   - Fail returns an *errs.Error whose code is named by the request.
//   - Block reports on h.started, waits for its context to end and reports
//     that on h.blocked.
//   - Panic panics.
func newGreeter(t *testing.T, h *hooks) *server.Server {
	t.Helper()
	s := server.New("greeter", server.WithLogger(quietLogger()))
	server.Handle(s, "Echo", func(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return wrapperspb.String("Hello, " + req.GetValue() + "!"), nil
	})
	server.Handle(s, "Fail", func(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		c, _ := errs.ParseCode(req.GetValue())
		return nil, errs.New(c, "failed with "+req.GetValue()).WithDetails(
			errs.Detail{Field: "name", Reason: "is required"},
			errs.Detail{Reason: "try again"},
		)
	})
	server.Handle(s, "Block", func(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		if h != nil {
			h.started <- struct{}{}
		}
		<-ctx.Done()
		if h != nil {
			h.blocked <- ctx.Err()
		}
		return nil, ctx.Err()
	})
	server.Handle(s, "Panic", func(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		panic("secret detail")
	})
	return s
}

// hooks let a test follow the Block handler.
type hooks struct {
	started chan struct{}
	blocked chan error
}

func newHooks() *hooks { return &hooks{started: make(chan struct{}, 1), blocked: make(chan error, 1)} }

// wait waits for ch, failing the test after timeout.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// start serves s on a fresh port until the test ends.
func start(t *testing.T, s *server.Server, opts ...fgrpc.ServerOption) *fgrpc.Server {
	t.Helper()
	tr := fgrpc.NewServer("127.0.0.1:0", opts...)
	if err := tr.Start(testContext(t), s); err != nil {
		t.Fatalf("Start() = %v, want nil", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := tr.Stop(ctx); err != nil {
			t.Errorf("Stop() = %v, want nil", err)
		}
	})
	return tr
}

func dial(t *testing.T, tr *fgrpc.Server, opts ...fgrpc.ClientOption) *fgrpc.Client {
	t.Helper()
	c, err := fgrpc.NewClient(tr.Addr().String(), opts...)
	if err != nil {
		t.Fatalf("NewClient() = %v, want nil", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a plain grpc-go connection for checks below the Ferry client.
func rawConn(t *testing.T, tr *fgrpc.Server) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(tr.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient() = %v, want nil", err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestNames(t *testing.T) {
	tests := []struct {
		service, endpoint, wantService, wantMethod string
	}{
		{"greeter", "Hello", "greeter.Greeter", "/greeter.Greeter/Hello"},
		{"order_service", "Place", "order_service.OrderService", "/order_service.OrderService/Place"},
		{"order-service", "Place", "order_service.OrderService", "/order_service.OrderService/Place"},
		{"myAPI2", "Get", "myAPI2.MyAPI2", "/myAPI2.MyAPI2/Get"},
		// A '.' makes a fully qualified gRPC name, used as it is.
		{"grpc.health.v1.Health", "Check", "grpc.health.v1.Health", "/grpc.health.v1.Health/Check"},
		{"grpc.testing.TestService", "EmptyCall", "grpc.testing.TestService", "/grpc.testing.TestService/EmptyCall"},
		{"greeter.Greeter", "Hello", "greeter.Greeter", "/greeter.Greeter/Hello"},
	}
	for _, tt := range tests {
		if got := fgrpc.ServiceName(tt.service); got != tt.wantService {
			t.Errorf("ServiceName(%q) = %q, want %q", tt.service, got, tt.wantService)
		}
		if got := fgrpc.MethodName(tt.service, tt.endpoint); got != tt.wantMethod {
			t.Errorf("MethodName(%q, %q) = %q, want %q", tt.service, tt.endpoint, got, tt.wantMethod)
		}
	}
}

func TestRoundTripMessages(t *testing.T) {
	tr := start(t, newGreeter(t, nil))
	c := dial(t, tr)
	for _, name := range []string{"Ada", "", strings.Repeat("é", 1000)} {
		resp, err := transport.Invoke[wrapperspb.StringValue, wrapperspb.StringValue](testContext(t), c, "greeter", "Echo", wrapperspb.String(name))
		if err != nil {
			t.Fatalf("Invoke(Echo, %q) error = %v, want nil", name, err)
		}
		if want := "Hello, " + name + "!"; resp.GetValue() != want {
			t.Errorf("Invoke(Echo, %q) = %q, want %q", name, resp.GetValue(), want)
		}
	}
}

// Order exercises more of the plain-struct mapping than the greeter.
type Order struct {
	ID       int64                   `json:"id"`
	Items    []Item                  `json:"items"`
	Tags     map[string]string       `json:"tags"`
	Note     *string                 `json:"note"`
	Blob     []byte                  `json:"blob"`
	Placed   time.Time               `json:"placed"`
	Customer *wrapperspb.StringValue `json:"customer"`
}

type Item struct {
	SKU string `json:"sku"`
	Qty uint32 `json:"qty"`
}

func TestRoundTripPlainStructs(t *testing.T) {
	s := server.New("order-service", server.WithLogger(quietLogger()))
	server.Handle(s, "Hello", func(ctx context.Context, req *HelloRequest) (*HelloReply, error) {
		return &HelloReply{Message: "Hello, " + req.Name + "!"}, nil
	})
	server.Handle(s, "Echo", func(ctx context.Context, req *Order) (*Order, error) { return req, nil })
	tr := start(t, s)
	c := dial(t, tr)

	resp, err := transport.Invoke[HelloRequest, HelloReply](testContext(t), c, "order-service", "Hello", &HelloRequest{Name: "Ada"})
	if err != nil {
		t.Fatalf("Invoke(Hello) error = %v, want nil", err)
	}
	if want := "Hello, Ada!"; resp.Message != want {
		t.Errorf("Invoke(Hello).Message = %q, want %q", resp.Message, want)
	}

	note := "ring twice"
	order := &Order{
		ID:       42,
		Items:    []Item{{SKU: "a-1", Qty: 2}, {SKU: "b-2", Qty: 1}},
		Tags:     map[string]string{"gift": "yes"},
		Note:     &note,
		Blob:     []byte{0, 1, 2},
		Placed:   time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC),
		Customer: wrapperspb.String("ada"),
	}
	got, err := transport.Invoke[Order, Order](testContext(t), c, "order-service", "Echo", order)
	if err != nil {
		t.Fatalf("Invoke(Echo) error = %v, want nil", err)
	}
	if got.ID != order.ID || !reflect.DeepEqual(got.Items, order.Items) || !reflect.DeepEqual(got.Tags, order.Tags) ||
		got.Note == nil || *got.Note != note || !reflect.DeepEqual(got.Blob, order.Blob) ||
		!got.Placed.Equal(order.Placed) || got.Customer.GetValue() != "ada" {
		t.Errorf("Invoke(Echo, %+v) = %+v, want it unchanged", order, got)
	}
}

func TestMetadata(t *testing.T) {
	type seen struct {
		user, peer string
		kind       transport.Kind
		client     bool
	}
	got := make(chan seen, 1)
	s := server.New("greeter", server.WithLogger(quietLogger()))
	server.Handle(s, "Echo", func(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		call, ok := transport.CallFromContext(ctx)
		if !ok {
			return nil, errs.New(errs.Internal, "no call in context")
		}
		got <- seen{user: call.Request.Get("X-User"), peer: call.Peer, kind: call.Kind, client: call.Client}
		call.Reply.Set("X-Reply", "r-"+call.Request.Get("x-user"))
		if mw := call.Request.Get("x-mw"); mw != "" {
			call.Reply.Set("x-mw-echo", mw)
		}
		if req.GetValue() == "fail" {
			return nil, errs.New(errs.FailedPrecondition, "failing with metadata")
		}
		return req, nil
	})
	tr := start(t, s)

	var mwReply string
	mw := func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			call, ok := transport.CallFromContext(ctx)
			if !ok || !call.Client || call.Kind != transport.GRPC || call.Service != "greeter" || call.Endpoint != "Echo" {
				return nil, errs.New(errs.Internal, "bad client call info")
			}
			call.Request.Set("x-mw", "added")
			resp, err := next(ctx, req)
			mwReply = call.Reply.Get("x-reply")
			return resp, err
		}
	}
	tests := []struct {
		name       string
		opts       []fgrpc.ClientOption
		value      string
		wantCode   errs.Code
		wantMWEcho string
	}{
		{"fast path", nil, "ok", 0, ""},
		{"fast path error", nil, "fail", errs.FailedPrecondition, ""},
		{"middleware", []fgrpc.ClientOption{fgrpc.WithClientMiddleware(mw)}, "ok", 0, "added"},
		{"middleware error", []fgrpc.ClientOption{fgrpc.WithClientMiddleware(mw)}, "fail", errs.FailedPrecondition, "added"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, tr, tt.opts...)
			mwReply = ""
			var reply transport.Metadata
			ctx := transport.WithMetadata(testContext(t), transport.Pairs("X-User", "ada"))
			ctx = transport.CaptureReply(ctx, &reply)
			err := c.Invoke(ctx, "greeter", "Echo", wrapperspb.String(tt.value), new(wrapperspb.StringValue))
			if code := errs.CodeOf(err); code != tt.wantCode {
				t.Fatalf("Invoke() error = %v, want code %v", err, tt.wantCode)
			}
			sv := <-got
			if sv.user != "ada" {
				t.Errorf("server Request.Get(x-user) = %q, want %q", sv.user, "ada")
			}
			if !strings.HasPrefix(sv.peer, "127.0.0.1:") {
				t.Errorf("server Call.Peer = %q, want 127.0.0.1:port", sv.peer)
			}
			if sv.kind != transport.GRPC || sv.client {
				t.Errorf("server Call.Kind, Client = %v, %v, want grpc, false", sv.kind, sv.client)
			}
			if got := reply.Get("x-reply"); got != "r-ada" {
				t.Errorf("captured reply x-reply = %q, want %q", got, "r-ada")
			}
			if got := reply.Get("x-mw-echo"); got != tt.wantMWEcho {
				t.Errorf("captured reply x-mw-echo = %q, want %q", got, tt.wantMWEcho)
			}
			if tt.opts != nil && mwReply != "r-ada" {
				t.Errorf("middleware Call.Reply.Get(x-reply) = %q, want %q", mwReply, "r-ada")
			}
		})
	}
}

func TestErrorCodes(t *testing.T) {
	tr := start(t, newGreeter(t, nil))
	c := dial(t, tr)
	wantDetails := []errs.Detail{{Field: "name", Reason: "is required"}, {Reason: "try again"}}
	for _, code := range errs.Codes() {
		err := c.Invoke(testContext(t), "greeter", "Fail", wrapperspb.String(code.String()), new(wrapperspb.StringValue))
		var e *errs.Error
		if !errors.As(err, &e) {
			t.Errorf("Invoke(Fail, %v) = %v, want an *errs.Error", code, err)
			continue
		}
		if e.Code() != code {
			t.Errorf("Invoke(Fail, %v) code = %v, want %v", code, e.Code(), code)
		}
		if want := "failed with " + code.String(); e.Message() != want {
			t.Errorf("Invoke(Fail, %v) message = %q, want %q", code, e.Message(), want)
		}
		if !reflect.DeepEqual(e.Details(), wantDetails) {
			t.Errorf("Invoke(Fail, %v) details = %v, want %v", code, e.Details(), wantDetails)
		}
	}
}

func TestHandlerErrorsDoNotLeak(t *testing.T) {
	s := server.New("greeter", server.WithLogger(quietLogger()))
	server.Handle(s, "Plain", func(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return nil, errors.New("db password is hunter2")
	})
	server.Handle(s, "Status", func(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return nil, status.Error(codes.AlreadyExists, "made on purpose")
	})
	tr := start(t, s)
	c := dial(t, tr)
	tests := []struct {
		endpoint string
		want     string
	}{
		{"Plain", "unknown: unknown error"},
		{"Status", "already_exists: made on purpose"},
	}
	for _, tt := range tests {
		err := c.Invoke(testContext(t), "greeter", tt.endpoint, wrapperspb.String(""), new(wrapperspb.StringValue))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Invoke(%s) = %v, want %s", tt.endpoint, err, tt.want)
		}
	}
}

func TestDeadlineAndCancel(t *testing.T) {
	h := newHooks()
	tr := start(t, newGreeter(t, h))
	c := dial(t, tr)

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(testContext(t), 200*time.Millisecond)
		defer cancel()
		err := c.Invoke(ctx, "greeter", "Block", wrapperspb.String(""), new(wrapperspb.StringValue))
		if code := errs.CodeOf(err); code != errs.DeadlineExceeded {
			t.Errorf("Invoke(Block) with deadline = %v, want deadline_exceeded", err)
		}
		wait(t, h.started, "Block to start")
		if err := wait(t, h.blocked, "Block's context to end"); err == nil {
			t.Errorf("handler ctx.Err() = nil, want an error")
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(testContext(t))
		done := make(chan error, 1)
		go func() { done <- c.Invoke(ctx, "greeter", "Block", wrapperspb.String(""), new(wrapperspb.StringValue)) }()
		wait(t, h.started, "Block to start")
		cancel()
		if err := wait(t, done, "Invoke(Block) to return"); errs.CodeOf(err) != errs.Canceled {
			t.Errorf("Invoke(Block) canceled = %v, want canceled", err)
		}
		if err := wait(t, h.blocked, "Block's context to end"); !errors.Is(err, context.Canceled) {
			t.Errorf("handler ctx.Err() = %v, want context.Canceled", err)
		}
	})
}

func TestDefaultTimeout(t *testing.T) {
	deadlines := make(chan time.Time, 1)
	s := server.New("greeter", server.WithLogger(quietLogger()))
	server.Handle(s, "Echo", func(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		call, _ := transport.CallFromContext(ctx)
		deadlines <- call.Deadline
		return req, nil
	})
	tr := start(t, s, fgrpc.WithDefaultTimeout(time.Hour))
	c := dial(t, tr)
	before := time.Now()
	if err := c.Invoke(context.Background(), "greeter", "Echo", wrapperspb.String(""), new(wrapperspb.StringValue)); err != nil {
		t.Fatalf("Invoke(Echo) = %v, want nil", err)
	}
	if d := <-deadlines; d.Before(before.Add(59*time.Minute)) || d.After(time.Now().Add(time.Hour)) {
		t.Errorf("Call.Deadline = %v, want about an hour from %v", d, before)
	}
}

// rawCodec sends and receives bytes as they are.
type rawCodec struct{}

func (rawCodec) Name() string                  { return "proto" }
func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}

func TestBadRequests(t *testing.T) {
	tr := start(t, newGreeter(t, nil), fgrpc.WithMaxRecvMsgSize(1024))
	c := dial(t, tr)
	cc := rawConn(t, tr)

	t.Run("oversized", func(t *testing.T) {
		err := c.Invoke(testContext(t), "greeter", "Echo", wrapperspb.String(strings.Repeat("x", 2048)), new(wrapperspb.StringValue))
		if code := errs.CodeOf(err); code != errs.ResourceExhausted {
			t.Errorf("Invoke(Echo, 2 KiB) = %v, want resource_exhausted", err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		in, out := []byte{0x0a, 0xff, 0xff, 0xff}, []byte(nil)
		err := cc.Invoke(testContext(t), "/greeter.Greeter/Echo", &in, &out, grpc.ForceCodec(rawCodec{}))
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "invalid request body: ") {
			t.Errorf("Invoke(garbage) = %v, want InvalidArgument \"invalid request body: ...\"", err)
		}
	})
	for _, method := range []string{"/greeter.Greeter/Nope", "/nope.Nope/Echo", "/grpc.health.v1.Health/Nope"} {
		t.Run("unknown "+method, func(t *testing.T) {
			in, out := []byte{}, []byte(nil)
			err := cc.Invoke(testContext(t), method, &in, &out, grpc.ForceCodec(rawCodec{}))
			st := status.Convert(err)
			if st.Code() != codes.Unimplemented || !strings.Contains(st.Message(), method) {
				t.Errorf("Invoke(%s) = %v, want Unimplemented naming the method", method, err)
			}
		})
	}
	t.Run("unknown endpoint via client", func(t *testing.T) {
		err := c.Invoke(testContext(t), "greeter", "Nope", wrapperspb.String(""), new(wrapperspb.StringValue))
		var e *errs.Error
		if !errors.As(err, &e) || e.Code() != errs.Unimplemented || !strings.Contains(e.Message(), "/greeter.Greeter/Nope") {
			t.Errorf("Invoke(Nope) = %v, want an *errs.Error unimplemented naming /greeter.Greeter/Nope", err)
		}
	})
}

func TestPanic(t *testing.T) {
	tr := start(t, newGreeter(t, nil))
	c := dial(t, tr)
	err := c.Invoke(testContext(t), "greeter", "Panic", wrapperspb.String(""), new(wrapperspb.StringValue))
	if code := errs.CodeOf(err); code != errs.Internal || strings.Contains(err.Error(), "secret") {
		t.Errorf("Invoke(Panic) = %v, want internal without the panic value", err)
	}
	if err := c.Invoke(testContext(t), "greeter", "Echo", wrapperspb.String("again"), new(wrapperspb.StringValue)); err != nil {
		t.Errorf("Invoke(Echo) after a panic = %v, want nil", err)
	}
}

func TestInterceptor(t *testing.T) {
	var sawMethod string
	var sawReq any
	icpt := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		sawMethod, sawReq = info.FullMethod, req
		return h(ctx, req)
	}
	tr := start(t, newGreeter(t, nil), fgrpc.WithServerOptions(grpc.UnaryInterceptor(icpt)))
	c := dial(t, tr)
	resp := new(wrapperspb.StringValue)
	if err := c.Invoke(testContext(t), "greeter", "Echo", wrapperspb.String("Ada"), resp); err != nil {
		t.Fatalf("Invoke(Echo) = %v, want nil", err)
	}
	if sawMethod != "/greeter.Greeter/Echo" {
		t.Errorf("interceptor FullMethod = %q, want /greeter.Greeter/Echo", sawMethod)
	}
	if r, ok := sawReq.(*wrapperspb.StringValue); !ok || r.GetValue() != "Ada" {
		t.Errorf("interceptor req = %v, want the decoded request", sawReq)
	}
	if err := c.Invoke(testContext(t), "greeter", "Fail", wrapperspb.String("not_found"), resp); errs.CodeOf(err) != errs.NotFound {
		t.Errorf("Invoke(Fail) through interceptor = %v, want not_found", err)
	}
}

func TestHealthAndStop(t *testing.T) {
	s := newGreeter(t, nil)
	release := make(chan struct{})
	started := make(chan struct{})
	server.Handle(s, "Slow", func(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		close(started)
		select {
		case <-release:
			return wrapperspb.String("finished"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	tr := fgrpc.NewServer("127.0.0.1:0")
	if err := tr.Start(testContext(t), s); err != nil {
		t.Fatalf("Start() = %v, want nil", err)
	}
	addr := tr.Addr().String()
	c := dial(t, tr)
	cc := rawConn(t, tr)
	hc := healthpb.NewHealthClient(cc)
	for _, svc := range []string{"", "greeter.Greeter"} {
		resp, err := hc.Check(testContext(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v, %v, want SERVING", svc, resp.GetStatus(), err)
		}
	}

	// Readiness drives health: NOT_SERVING and back.
	for _, serving := range []bool{false, true} {
		tr.SetServing(serving)
		want := healthpb.HealthCheckResponse_NOT_SERVING
		if serving {
			want = healthpb.HealthCheckResponse_SERVING
		}
		for _, svc := range []string{"", "greeter.Greeter"} {
			resp, err := hc.Check(testContext(t), &healthpb.HealthCheckRequest{Service: svc})
			if err != nil || resp.GetStatus() != want {
				t.Errorf("after SetServing(%v): Check(%q) = %v, %v, want %v", serving, svc, resp.GetStatus(), err, want)
			}
		}
	}

	watchCtx, stopWatch := context.WithCancel(testContext(t))
	defer stopWatch()
	watch, err := hc.Watch(watchCtx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("Watch() = %v, want nil", err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch().Recv() = %v, %v, want SERVING", resp.GetStatus(), err)
	}

	inflight := make(chan error, 1)
	resp := new(wrapperspb.StringValue)
	go func() { inflight <- c.Invoke(testContext(t), "greeter", "Slow", wrapperspb.String(""), resp) }()
	<-started

	stopped := make(chan error, 1)
	go func() { stopped <- tr.Stop(testContext(t)) }()
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Watch().Recv() during Stop = %v, %v, want NOT_SERVING", r.GetStatus(), err)
	}
	stopWatch()
	close(release)
	if err := <-inflight; err != nil || resp.GetValue() != "finished" {
		t.Errorf("in-flight Invoke(Slow) = %q, %v, want finished, nil", resp.GetValue(), err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Stop() = %v, want nil", err)
	}

	c2, err := fgrpc.NewClient(addr)
	if err != nil {
		t.Fatalf("NewClient() = %v, want nil", err)
	}
	defer c2.Close()
	err = c2.Invoke(testContext(t), "greeter", "Echo", wrapperspb.String(""), new(wrapperspb.StringValue))
	if code := errs.CodeOf(err); code != errs.Unavailable {
		t.Errorf("Invoke() after Stop = %v, want unavailable", err)
	}
}

func TestForcedStop(t *testing.T) {
	h := newHooks()
	s := newGreeter(t, h)
	tr := fgrpc.NewServer("127.0.0.1:0")
	if err := tr.Start(testContext(t), s); err != nil {
		t.Fatalf("Start() = %v, want nil", err)
	}
	c := dial(t, tr)
	// A warm-up call makes sure the connection is up before the blocking one.
	if err := c.Invoke(testContext(t), "greeter", "Echo", wrapperspb.String(""), new(wrapperspb.StringValue)); err != nil {
		t.Fatalf("Invoke(Echo) = %v, want nil", err)
	}
	inflight := make(chan error, 1)
	go func() {
		inflight <- c.Invoke(testContext(t), "greeter", "Block", wrapperspb.String(""), new(wrapperspb.StringValue))
	}()
	wait(t, h.started, "Block to start")

	expired, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tr.Stop(expired); !errors.Is(err, context.Canceled) {
		t.Errorf("Stop(expired ctx) = %v, want context.Canceled", err)
	}
	if err := wait(t, inflight, "the in-flight call to end"); errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("in-flight Invoke(Block) = %v, want unavailable", err)
	}
	if err := wait(t, h.blocked, "Block's context to end"); err == nil {
		t.Errorf("handler ctx.Err() = nil, want an error")
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		tr   *fgrpc.Server
		want string
	}{
		{"address in use", fgrpc.NewServer(busy.Addr().String()), busy.Addr().String()},
		{"negative send size", fgrpc.NewServer("127.0.0.1:0", fgrpc.WithMaxSendMsgSize(-1)), "max send message size"},
		{"negative size", fgrpc.NewServer("127.0.0.1:0", fgrpc.WithMaxRecvMsgSize(-1)), "max receive message size"},
	}
	for _, tt := range tests {
		err := tt.tr.Start(testContext(t), newGreeter(t, nil))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Start() = %v, want an error naming %q", tt.name, err, tt.want)
		}
		if err := tt.tr.Stop(testContext(t)); err != nil {
			t.Errorf("%s: Stop() after a failed Start = %v, want nil", tt.name, err)
		}
	}
}

func TestInvalidReplyMetadataDropped(t *testing.T) {
	s := server.New("greeter", server.WithLogger(quietLogger()))
	server.Handle(s, "Echo", func(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		call, _ := transport.CallFromContext(ctx)
		call.Reply.Set("good", "yes")
		call.Reply.Set("bad key", "space in key")
		call.Reply.Set("bad-value", "line\nbreak")
		call.Reply.Set("raw-bin", "\x00\x01")
		return req, nil
	})
	tr := start(t, s)
	c := dial(t, tr)
	var reply transport.Metadata
	ctx := transport.CaptureReply(testContext(t), &reply)
	if err := c.Invoke(ctx, "greeter", "Echo", wrapperspb.String("x"), new(wrapperspb.StringValue)); err != nil {
		t.Fatalf("Invoke(Echo) = %v, want nil", err)
	}
	want := map[string]string{"good": "yes", "bad key": "", "bad-value": "", "raw-bin": "\x00\x01"}
	for k, v := range want {
		if got := reply.Get(k); got != v {
			t.Errorf("reply.Get(%q) = %q, want %q", k, got, v)
		}
	}
}

// Unsupported is a request type with no protobuf form.
type Unsupported struct {
	Name  string   `json:"name"`
	Flush chan int `json:"flush"`
}

func TestStartRejectsTypesWithoutProtobufForm(t *testing.T) {
	s := server.New("greeter", server.WithLogger(quietLogger()))
	server.Handle(s, "Hello", func(ctx context.Context, req *HelloRequest) (*HelloReply, error) { return nil, nil })
	server.Handle(s, "Bad", func(ctx context.Context, req *Unsupported) (*HelloReply, error) { return nil, nil })
	tr := fgrpc.NewServer("127.0.0.1:0")
	err := tr.Start(testContext(t), s)
	if err == nil {
		tr.Stop(testContext(t))
		t.Fatal("Start() = nil, want an error for endpoint Bad")
	}
	for _, want := range []string{`"Bad"`, "Flush"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start() = %v, want it to name %s", err, want)
		}
	}
	if tr.Addr() != nil {
		t.Errorf("Addr() after a failed Start = %v, want nil", tr.Addr())
	}
}

func TestMalformedPlainStruct(t *testing.T) {
	s := server.New("greeter", server.WithLogger(quietLogger()))
	server.Handle(s, "Hello", func(ctx context.Context, req *HelloRequest) (*HelloReply, error) {
		return &HelloReply{Message: "Hello, " + req.Name + "!"}, nil
	})
	tr := start(t, s)
	cc := rawConn(t, tr)
	tests := []struct {
		name string
		body []byte
	}{
		{"truncated", []byte{0x0a, 0x05, 'A'}},
		{"wrong wire type", []byte{0x08, 0x01}},
		{"bad utf-8", []byte{0x0a, 0x01, 0xff}},
	}
	for _, tt := range tests {
		out := []byte(nil)
		err := cc.Invoke(testContext(t), "/greeter.Greeter/Hello", &tt.body, &out, grpc.ForceCodec(rawCodec{}))
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "invalid request body: ") ||
			!strings.Contains(st.Message(), "field name") || strings.Contains(st.Message(), "invalid_argument") {
			t.Errorf("Invoke(%s) = %v, want InvalidArgument \"invalid request body: ...\" naming field name once", tt.name, err)
		}
	}
}

func TestListenerAndBorrowedConn(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := start(t, newGreeter(t, nil), fgrpc.WithListener(lis))
	if got, want := tr.Addr().String(), lis.Addr().String(); got != want {
		t.Errorf("Addr() = %s, want %s", got, want)
	}
	cc := rawConn(t, tr)
	c := fgrpc.NewClientConn(cc)
	for i := range 2 {
		resp := new(wrapperspb.StringValue)
		if err := c.Invoke(testContext(t), "greeter", "Echo", wrapperspb.String("Ada"), resp); err != nil || resp.GetValue() != "Hello, Ada!" {
			t.Errorf("Invoke(Echo) #%d = %q, %v, want Hello, Ada!, nil", i, resp.GetValue(), err)
		}
		if err := c.Close(); err != nil { // must leave cc open
			t.Errorf("Close() = %v, want nil", err)
		}
	}
}

// TestStreamWorkers: calls are served with the default workers, with a
// few, and with none (a goroutine per call), also when more calls are in
// flight than there are workers; Stop leaves no worker behind (goleak).
func TestStreamWorkers(t *testing.T) {
	for _, n := range []uint32{fgrpc.DefaultStreamWorkers, 2, 0} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			c := dial(t, start(t, newGreeter(t, nil), fgrpc.WithStreamWorkers(n)))
			var wg sync.WaitGroup
			errc := make(chan error, 200)
			for i := range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					name := fmt.Sprint(i)
					resp, err := transport.Invoke[wrapperspb.StringValue, wrapperspb.StringValue](testContext(t), c, "greeter", "Echo", wrapperspb.String(name))
					if err == nil && resp.GetValue() != "Hello, "+name+"!" {
						err = fmt.Errorf("Echo(%s) = %q", name, resp.GetValue())
					}
					errc <- err
				}()
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
