package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type HelloRequest struct {
	Name string `json:"name"`
}

type HelloReply struct {
	Message string `json:"message"`
}

type greeter struct{}

func (greeter) Hello(_ context.Context, r *HelloRequest) (*HelloReply, error) {
	return &HelloReply{Message: "Hello, " + r.Name + "!"}, nil
}

func (greeter) Fail(context.Context, *HelloRequest) (*HelloReply, error) {
	return nil, errs.New(errs.NotFound, "nope")
}

func (greeter) Empty(context.Context, *HelloRequest) (*HelloReply, error) { return nil, nil }

// Not an endpoint, and not meant as one: skipped.
func (greeter) Helper(string) string { return "" }
func (greeter) Close() error         { return nil }

// sloppy has handlers with a slip in their signatures: near misses.
type sloppy struct{ greeter }

func (sloppy) NoCtx(*HelloRequest) (*HelloReply, error)                 { return nil, nil }
func (sloppy) Value(context.Context, HelloRequest) (*HelloReply, error) { return nil, nil }
func (sloppy) NoErr(context.Context, *HelloRequest) *HelloReply         { return nil }

func TestHandleTyped(t *testing.T) {
	s := server.New("greeter")
	server.Handle(s, "Hello", greeter{}.Hello)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	e, ok := s.Endpoint("Hello")
	if !ok {
		t.Fatal(`Endpoint("Hello") not found`)
	}
	req := e.NewRequest().(*HelloRequest)
	req.Name = "Ada"
	resp, err := e.Handler(context.Background(), req)
	if err != nil || resp.(*HelloReply).Message != "Hello, Ada!" {
		t.Errorf("Handler = %v, %v, want Hello, Ada!", resp, err)
	}
	if _, err := e.Handler(context.Background(), "wrong type"); errs.CodeOf(err) != errs.Internal {
		t.Errorf("Handler(wrong type) err = %v, want internal", err)
	}
}

func TestHandleMethods(t *testing.T) {
	s := server.New("greeter")
	names := server.HandleMethods(s, greeter{})
	if got, want := strings.Join(names, ","), "Empty,Fail,Hello"; got != want {
		t.Fatalf("HandleMethods = %s, want %s", got, want)
	}
	e, _ := s.Endpoint("Hello")
	resp, err := e.Handler(context.Background(), &HelloRequest{Name: "Bo"})
	if err != nil || resp.(*HelloReply).Message != "Hello, Bo!" {
		t.Errorf("Hello = %v, %v", resp, err)
	}
	e, _ = s.Endpoint("Fail")
	if _, err := e.Handler(context.Background(), &HelloRequest{}); errs.CodeOf(err) != errs.NotFound {
		t.Errorf("Fail err = %v, want not_found", err)
	}
	e, _ = s.Endpoint("Empty")
	if resp, err := e.Handler(context.Background(), &HelloRequest{}); err != nil || resp.(*HelloReply) == nil {
		t.Errorf("Empty = %v, %v, want a non-nil empty reply", resp, err)
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err = %v, want nil (Helper and Close are not meant as endpoints)", err)
	}
}

// TestHandleMethodsNearMisses is issue #11's defect 14: a method that is
// almost an endpoint was skipped without a word; it is a registration
// error naming the method and its signature.
func TestHandleMethodsNearMisses(t *testing.T) {
	s := server.New("greeter")
	names := server.HandleMethods(s, sloppy{})
	if got, want := strings.Join(names, ","), "Empty,Fail,Hello"; got != want {
		t.Errorf("HandleMethods = %s, want %s", got, want)
	}
	err := s.Err()
	for _, want := range []string{
		"method NoCtx is func(*server_test.HelloRequest) (*server_test.HelloReply, error), not an endpoint",
		"method Value is func(context.Context, server_test.HelloRequest) (*server_test.HelloReply, error), not an endpoint",
		"method NoErr is func(context.Context, *server_test.HelloRequest) *server_test.HelloReply, not an endpoint",
		"want func(context.Context, *Req) (*Resp, error)",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Err = %v, want it to contain %q", err, want)
		}
	}
}

func TestProtoTypes(t *testing.T) {
	s := server.New("echo")
	server.Handle(s, "Echo", func(_ context.Context, r *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return r, nil
	})
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRegistrationErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func() *server.Server
		want  string
	}{
		{"bad service name", func() *server.Server { return server.New("has space") }, `invalid service name "has space"`},
		{"bad version", func() *server.Server { return server.New("a", server.WithVersion("v1")) }, `invalid version "v1"`},
		{"bad endpoint name", func() *server.Server {
			s := server.New("a")
			server.Handle(s, "say.hello", greeter{}.Hello)
			return s
		}, `invalid endpoint name "say.hello"`},
		{"duplicate", func() *server.Server {
			s := server.New("a")
			server.Handle(s, "Hello", greeter{}.Hello)
			server.Handle(s, "Hello", greeter{}.Hello)
			return s
		}, `endpoint "Hello" registered twice`},
		{"bad route", func() *server.Server {
			s := server.New("a")
			server.Handle(s, "Hello", greeter{}.Hello, server.WithRoute("/v1/hello"))
			return s
		}, `route "/v1/hello": want a method`},
		{"after freeze", func() *server.Server {
			s := server.New("a")
			s.Freeze()
			server.Handle(s, "Hello", greeter{}.Hello)
			return s
		}, `registered after the service started`},
		{"non-struct request", func() *server.Server {
			s := server.New("a")
			server.Handle(s, "Num", func(context.Context, *int) (*HelloReply, error) { return nil, nil })
			return s
		}, `request type int is not a struct`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.setup().Err()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Err() = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestServerMiddlewareOrderAndRecovery(t *testing.T) {
	var order []string
	s := server.New("a", server.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), server.WithMiddleware(func(next middlewareHandler) middlewareHandler {
		return func(ctx context.Context, req any) (any, error) {
			order = append(order, "server")
			return next(ctx, req)
		}
	}))
	server.Handle(s, "Boom", func(context.Context, *HelloRequest) (*HelloReply, error) {
		order = append(order, "handler")
		panic("boom")
	}, server.WithEndpointMiddleware(func(next middlewareHandler) middlewareHandler {
		return func(ctx context.Context, req any) (any, error) {
			order = append(order, "endpoint")
			return next(ctx, req)
		}
	}))
	e, _ := s.Endpoint("Boom")
	_, err := e.Handler(context.Background(), &HelloRequest{})
	if errs.CodeOf(err) != errs.Internal {
		t.Errorf("panic err = %v, want internal (recovery is always on)", err)
	}
	var fe *errs.Error
	if !errors.As(err, &fe) || strings.Contains(fe.Message(), "boom") {
		t.Errorf("panic message leaked: %v", err)
	}
	if got := strings.Join(order, ","); got != "server,endpoint,handler" {
		t.Errorf("order = %s, want server,endpoint,handler", got)
	}
}

// TestHiddenErrorIsLogged is issue #11's defect 10: a plain handler error
// reaches the caller as "unknown error" (rightly), and its text was logged
// nowhere. The server logs it with the endpoint; an *errs.Error returned
// as is, a cancellation or a deadline is not logged (the caller sees it
// all).
func TestHiddenErrorIsLogged(t *testing.T) {
	var buf strings.Builder
	s := server.New("svc", server.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	server.Handle(s, "Plain", func(context.Context, *HelloRequest) (*HelloReply, error) {
		return nil, errors.New("db: connection refused to 10.0.0.7:5432")
	})
	server.Handle(s, "Wrapped", func(context.Context, *HelloRequest) (*HelloReply, error) {
		return nil, fmt.Errorf("loading user 7: %w", errs.New(errs.NotFound, "no such user"))
	})
	server.Handle(s, "Clean", func(context.Context, *HelloRequest) (*HelloReply, error) {
		return nil, errs.New(errs.NotFound, "no such user")
	})
	server.Handle(s, "Late", func(ctx context.Context, _ *HelloRequest) (*HelloReply, error) {
		return nil, context.DeadlineExceeded
	})
	server.Handle(s, "Private", func(context.Context, *HelloRequest) (*HelloReply, error) {
		return nil, errs.New(errs.Unavailable, "the store is down").WithCause(errors.New("dial 10.0.0.7:5432: refused"))
	})
	call := func(name string) error {
		e, _ := s.Endpoint(name)
		_, err := e.Handler(context.Background(), &HelloRequest{})
		return err
	}
	if err := call("Plain"); errs.FromError(err).Message() != "unknown error" {
		t.Errorf("Plain = %v, want the wire to say unknown error", err)
	}
	_ = call("Wrapped")
	_ = call("Clean")
	_ = call("Late")
	if err := call("Private"); strings.Contains(errs.FromError(err).Error(), "10.0.0.7") {
		t.Errorf("Private = %v, want the cause kept off the wire", err)
	}
	out := buf.String()
	for _, want := range []string{
		`endpoint=Plain caller_sees="unknown: unknown error" error="db: connection refused to 10.0.0.7:5432"`,
		`endpoint=Wrapped caller_sees="not_found: no such user" error="loading user 7: not_found: no such user"`,
		`endpoint=Private caller_sees="unavailable: the store is down" error="dial 10.0.0.7:5432: refused"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log =\n%s\nwant a line with %s", out, want)
		}
	}
	if strings.Contains(out, "endpoint=Clean") || strings.Contains(out, "endpoint=Late") {
		t.Errorf("log =\n%s\nwant nothing for errors the caller sees whole", out)
	}
}

// A declared endpoint registers with its name and types, and an endpoint
// of another service is refused.
func TestRegisterDeclaredEndpoint(t *testing.T) {
	hello := transport.Endpoint[HelloRequest, HelloReply]{Service: "greeter", Name: "Hello"}
	s := server.New("greeter")
	server.Register(s, hello, func(_ context.Context, r *HelloRequest) (*HelloReply, error) {
		return &HelloReply{Message: "hi " + r.Name}, nil
	})
	if err := s.Err(); err != nil {
		t.Fatalf("Register = %v", err)
	}
	if e, ok := s.Endpoint("Hello"); !ok || e.RequestType != reflect.TypeFor[HelloRequest]() {
		t.Errorf("Endpoint(Hello) = %v, %v; want it registered with its types", e, ok)
	}
	if hello.String() != "greeter/Hello" {
		t.Errorf("String() = %q", hello.String())
	}
	other := server.New("billing")
	server.Register(other, hello, func(context.Context, *HelloRequest) (*HelloReply, error) { return nil, nil })
	if err := other.Err(); err == nil || !strings.Contains(err.Error(), `belongs to service "greeter"`) {
		t.Errorf("Register of another service's endpoint = %v, want a registration error", err)
	}
}

// Boundary keeps the codes that mean "try again later" and makes the
// others Internal, with a message that says nothing of the dependency.
func TestBoundary(t *testing.T) {
	for code, want := range map[errs.Code]errs.Code{
		errs.Unavailable: errs.Unavailable, errs.DeadlineExceeded: errs.DeadlineExceeded,
		errs.ResourceExhausted: errs.ResourceExhausted, errs.InvalidArgument: errs.Internal,
		errs.PermissionDenied: errs.Internal, errs.NotFound: errs.Internal,
	} {
		got := server.Boundary(errs.New(code, "dial tcp 10.0.0.7:5432: refused").WithReason("DB_DOWN").Received("db/Query"))
		if got.Code() != want || strings.Contains(got.Message(), "10.0.0.7") || strings.Contains(got.Message(), "db/Query") || got.Reason() != "" {
			t.Errorf("Boundary(%v) = %v (reason %q), want %v without the dependency's text", code, got, got.Reason(), want)
		}
	}
}
