package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	natsreg "github.com/ferry-go/ferry/registry/nats"
	"github.com/ferry-go/ferry/server"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// result is what one ferry command line did.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// ferryCmd runs the ferry command line args in-process, as main does.
func ferryCmd(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(ctx, args, &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code, took: time.Since(start)}
}

// want fails the test unless r exited with code and stderr holds every
// one of msgs.
func (r result) want(t *testing.T, code int, msgs ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, m := range msgs {
		if !strings.Contains(r.stderr, m) {
			t.Errorf("stderr = %q, want it to contain %q", r.stderr, m)
		}
	}
}

// Types of the test service: one of each kind that JSON renders
// differently, so that the gRPC reply conversion is checked against
// encoding/json.
type (
	EchoRequest struct {
		Name   string            `json:"name"`
		Count  int64             `json:"count"`
		Ratio  float64           `json:"ratio"`
		Tags   []string          `json:"tags"`
		Labels map[string]int32  `json:"labels"`
		At     time.Time         `json:"at"`
		Blob   []byte            `json:"blob"`
		Inner  Inner             `json:"inner"`
		Opt    *int32            `json:"opt"`
		Next   *Inner            `json:"next"`
		Flags  map[string]string `json:"flags"`
		OK     bool              `json:"ok"`
		Unit   uint64            `json:"unit"`
		UserID string            // no tag: proto name user_id, JSON name UserID
	}
	Inner struct {
		N    int32  `json:"n"`
		Note string `json:"note"`
	}
	HelloRequest struct {
		Name string `json:"name"`
	}
	HelloReply struct {
		Message string `json:"message"`
	}
)

func echo(_ context.Context, req *EchoRequest) (*EchoRequest, error) { return req, nil }

// slow answers only when its context ends.
func slow(ctx context.Context, _ *HelloRequest) (*HelloReply, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func hello(_ context.Context, req *HelloRequest) (*HelloReply, error) {
	if req.Name == "" {
		return nil, errs.New(errs.InvalidArgument, "name is required").
			WithDetails(errs.Detail{Field: "name", Reason: "must not be empty"})
	}
	return &HelloReply{Message: "Hello, " + req.Name + "!"}, nil
}

// greetings streams a greeting per letter of the name, then fails if the
// name is "fail".
func greetings(_ context.Context, req *HelloRequest, out server.Sender[HelloReply]) error {
	for _, r := range req.Name {
		if err := out.Send(&HelloReply{Message: "Hello, " + string(r) + "!"}); err != nil {
			return err
		}
	}
	if req.Name == "fail" {
		return errs.New(errs.FailedPrecondition, "failed as asked")
	}
	return nil
}

// chat greets every name it receives.
func chat(_ context.Context, st server.Stream[HelloRequest, HelloReply]) error {
	for m, err := range st.All() {
		if err != nil {
			return err
		}
		if err := st.Send(&HelloReply{Message: "Hello, " + m.Name + "!"}); err != nil {
			return err
		}
	}
	return nil
}

// testService is a running instance of the "echo" service.
type testService struct {
	natsURL  string
	httpURL  string // http://127.0.0.1:port
	grpcAddr string // 127.0.0.1:port
}

// startService runs the echo service on HTTP, gRPC and NATS (an embedded
// server of its own) until the end of the test, registered in the NATS
// registry when registered is true.
func startService(t *testing.T, registered bool) *testService {
	t.Helper()
	url := ferrytest.NATS(t).ClientURL()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := server.New("echo", server.WithVersion("1.2.3"), server.WithDescription("Echoes its request"), server.WithLogger(quiet))
	server.Handle(srv, "Echo", echo)
	server.Handle(srv, "Hello", hello)
	server.Handle(srv, "Slow", slow)
	server.HandleServerStream(srv, "Greetings", greetings)
	server.HandleBidiStream(srv, "Chat", chat)
	h := fhttp.NewServer("127.0.0.1:0")
	g := fgrpc.NewServer("127.0.0.1:0")
	nc := fnats.Connect(url)
	opts := []ferry.Option{ferry.WithConnection(nc), ferry.WithTransport(h), ferry.WithTransport(g), ferry.WithTransport(nc.Serve()), ferry.WithSignals(), ferry.WithLogger(quiet)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if registered {
		js, err := jetstream.New(ferrytest.Connect(t, url))
		if err != nil {
			t.Fatal(err)
		}
		reg, err := natsreg.New(ctx, js)
		if err != nil {
			t.Fatalf("natsreg.New: %v", err)
		}
		t.Cleanup(func() { _ = reg.Close() })
		opts = append(opts, ferry.WithRegistry(reg), ferry.WithAdvertiseHost("127.0.0.1"))
	}
	svc := ferry.New(srv, opts...)
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("start the echo service: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("stop the echo service: %v", err)
		}
	})
	return &testService{natsURL: url, httpURL: "http://" + h.Addr().String(), grpcAddr: g.Addr().String()}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
