package natsembed_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("nats.Connect(%q) = %v, want nil", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestStartServesRequests(t *testing.T) {
	tests := []struct {
		name       string
		opts       natsembed.Options
		givenStore bool
	}{
		{name: "defaults"},
		{name: "named", opts: natsembed.Options{ServerName: "embedded-test"}},
		{name: "jetstream temp store", opts: natsembed.Options{JetStream: true}},
		{name: "jetstream given store", opts: natsembed.Options{JetStream: true}, givenStore: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			if tt.givenStore {
				tt.opts.StoreDir = t.TempDir()
			}
			s, err := natsembed.Start(ctx, tt.opts)
			if err != nil {
				t.Fatalf("Start(%+v) = %v, want nil", tt.opts, err)
			}
			defer s.Shutdown()

			if !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") {
				t.Errorf("ClientURL() = %q, want nats://127.0.0.1:<port>", s.ClientURL())
			}
			if a, ok := s.Addr().(*net.TCPAddr); !ok || a.Port == 0 {
				t.Errorf("Addr() = %v, want a TCP address with a port", s.Addr())
			}
			if tt.opts.ServerName != "" && s.NATS().Name() != tt.opts.ServerName {
				t.Errorf("NATS().Name() = %q, want %q", s.NATS().Name(), tt.opts.ServerName)
			}

			nc := connect(t, s.ClientURL())
			sub, err := nc.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
			if err != nil {
				t.Fatalf("Subscribe(echo) = %v, want nil", err)
			}
			defer sub.Unsubscribe()
			msg, err := nc.RequestWithContext(ctx, "echo", []byte("hi"))
			if err != nil {
				t.Fatalf("Request(echo) = %v, want nil", err)
			}
			if string(msg.Data) != "hi" {
				t.Errorf("Request(echo) = %q, want %q", msg.Data, "hi")
			}

			if tt.opts.JetStream {
				js, err := nc.JetStream()
				if err != nil {
					t.Fatalf("JetStream() = %v, want nil", err)
				}
				if _, err := js.AddStream(&nats.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
					t.Fatalf("AddStream(S) = %v, want nil", err)
				}
				if _, err := js.Publish("s.1", []byte("x")); err != nil {
					t.Fatalf("js.Publish(s.1) = %v, want nil", err)
				}
			}
		})
	}
}

func TestShutdownRemovesTempStore(t *testing.T) {
	ctx := testCtx(t)
	s, err := natsembed.Start(ctx, natsembed.Options{JetStream: true})
	if err != nil {
		t.Fatalf("Start(JetStream) = %v, want nil", err)
	}
	dir := s.NATS().JetStreamConfig().StoreDir
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Stat(store %q) = %v, want nil", dir, err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop() = %v, want nil", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stat(store %q) after Stop = %v, want not exist", dir, err)
	}
	s.Shutdown() // idempotent
}

func TestShutdownKeepsGivenStore(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	s, err := natsembed.Start(ctx, natsembed.Options{JetStream: true, StoreDir: dir})
	if err != nil {
		t.Fatalf("Start(JetStream, %q) = %v, want nil", dir, err)
	}
	s.Shutdown()
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("Stat(given store %q) after Shutdown = %v, want nil", dir, err)
	}
}

func TestStartPortInUse(t *testing.T) {
	ctx := testCtx(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("net.Listen = %v", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	s, err := natsembed.Start(ctx, natsembed.Options{Port: port})
	if err == nil {
		s.Shutdown()
		t.Fatalf("Start(port %d in use) = nil error, want an error", port)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("Start(port %d in use) = %q, want it to name %s", port, err, addr)
	}
}

func TestStartTwice(t *testing.T) {
	ctx := testCtx(t)
	s := natsembed.New(natsembed.Options{})
	if err := s.Start(ctx); err != nil {
		t.Fatalf("Start() = %v, want nil", err)
	}
	defer s.Shutdown()
	if err := s.Start(ctx); err == nil {
		t.Errorf("second Start() = nil, want an error")
	}
}

func TestNotStarted(t *testing.T) {
	s := natsembed.New(natsembed.Options{})
	if got := s.ClientURL(); got != "" {
		t.Errorf("ClientURL() before Start = %q, want \"\"", got)
	}
	if got := s.Addr(); got != nil {
		t.Errorf("Addr() before Start = %v, want nil", got)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("Stop() before Start = %v, want nil", err)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Errorf("Start() after Stop = nil, want an error")
	}
}

func TestStartCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// A cancelled ctx only bounds the wait; a server that is ready at once
	// may still start, which is fine. Either way nothing may leak.
	s, err := natsembed.Start(ctx, natsembed.Options{})
	if err == nil {
		s.Shutdown()
		return
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Start(canceled ctx) = %v, want context.Canceled", err)
	}
}

func TestLogger(t *testing.T) {
	var out ferrytest.Buffer
	l := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := natsembed.Start(testCtx(t), natsembed.Options{Logger: l})
	if err != nil {
		t.Fatalf("Start(Logger) = %v, want nil", err)
	}
	s.Shutdown()
	got := out.String()
	for _, want := range []string{"level=INFO", "Server is ready", "component=nats-server"} {
		if !strings.Contains(got, want) {
			t.Errorf("log output lacks %q; got:\n%s", want, got)
		}
	}
	if strings.Contains(got, "level=DEBUG") {
		t.Errorf("log output has DEBUG lines with an Info logger:\n%s", got)
	}
}
