package http_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ferry-go/ferry/server"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quiet keeps recovered panics out of the test log.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type helloReq struct {
	Name string `json:"name"`
}

type helloResp struct {
	Message string `json:"message"`
}

func hello(_ context.Context, req *helloReq) (*helloResp, error) {
	return &helloResp{Message: "Hello, " + req.Name}, nil
}

// start serves s on 127.0.0.1:0 until the test ends and returns its base URL.
func start(t testing.TB, s *server.Server, opts ...fhttp.ServerOption) (*fhttp.Server, string) {
	t.Helper()
	hs := fhttp.NewServer("127.0.0.1:0", opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Start(ctx, s); err != nil {
		t.Fatalf("Start() = %v, want nil", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Stop(ctx); err != nil {
			t.Errorf("Stop() = %v, want nil", err)
		}
	})
	return hs, "http://" + hs.Addr().String()
}

func newClient(t testing.TB, base string, opts ...fhttp.ClientOption) *fhttp.Client {
	t.Helper()
	c, err := fhttp.NewClient(base, opts...)
	if err != nil {
		t.Fatalf("NewClient(%q) = %v, want nil", base, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testCtx bounds a test's calls so that a bug fails the test instead of
// hanging it.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
