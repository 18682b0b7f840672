package nats_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/server"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every test; generous for a loaded 2-core machine.
const testTimeout = 30 * time.Second

type HelloRequest struct {
	Name string `json:"name"`
}

type HelloReply struct {
	Message string `json:"message"`
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startNATS starts an embedded NATS server for the test.
func startNATS(t testing.TB, opts natsembed.Options) *natsembed.Server {
	t.Helper()
	ns, err := natsembed.Start(testCtx(t), opts)
	if err != nil {
		t.Fatalf("natsembed.Start() = %v, want nil", err)
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// connect opens a connection to ns, closed when the test ends.
func connect(t testing.TB, ns *natsembed.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatalf("nats.Connect(%s) = %v, want nil", ns.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// serve starts srv over nc and stops it when the test ends.
func serve(t testing.TB, nc *nats.Conn, srv *server.Server, opts ...fnats.ServerOption) *fnats.Server {
	t.Helper()
	tr := fnats.NewServer(nc, opts...)
	if err := tr.Start(testCtx(t), srv); err != nil {
		t.Fatalf("Start(%s) = %v, want nil", srv.Name(), err)
	}
	t.Cleanup(func() {
		// t.Context is already done when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := tr.Stop(ctx); err != nil {
			t.Errorf("Stop(%s) = %v, want nil", srv.Name(), err)
		}
	})
	return tr
}

// env is a NATS server, a connection, and a client over it.
type env struct {
	ns     *natsembed.Server
	nc     *nats.Conn
	client *fnats.Client
}

func newEnv(t testing.TB, opts ...fnats.ClientOption) *env {
	t.Helper()
	ns := startNATS(t, natsembed.Options{})
	nc := connect(t, ns)
	return &env{ns: ns, nc: nc, client: fnats.NewClient(nc, opts...)}
}

func hello(_ context.Context, req *HelloRequest) (*HelloReply, error) {
	return &HelloReply{Message: "Hello, " + req.Name}, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
