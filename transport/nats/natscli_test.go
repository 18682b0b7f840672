package nats_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/server"
)

// TestNATSCLI runs the real `nats` CLI (natscli) against a Ferry service:
// discovery through `nats micro` and calls through `nats req`. It is
// skipped when nats is not on PATH.
func TestNATSCLI(t *testing.T) {
	bin, err := exec.LookPath("nats")
	if err != nil {
		t.Skip("nats CLI not installed")
	}
	e := newEnv(t)
	srv := server.New("clisvc", server.WithVersion("2.0.1"), server.WithDescription("seen by natscli"))
	server.Handle(srv, "Hello", hello)
	server.Handle(srv, "Fail", func(context.Context, *HelloRequest) (*HelloReply, error) {
		return nil, errs.New(errs.PermissionDenied, "not you")
	})
	// The time the handler's deadline leaves it, to 10s.
	server.Handle(srv, "Deadline", func(ctx context.Context, _ *HelloRequest) (*HelloReply, error) {
		d, _ := ctx.Deadline()
		return &HelloReply{Message: time.Until(d).Round(10 * time.Second).String()}, nil
	})
	tr := serve(t, e.nc, srv)
	if err := e.client.Invoke(testCtx(t), "clisvc", "Hello", &HelloRequest{}, &HelloReply{}); err != nil {
		t.Fatalf("Invoke(clisvc.Hello) = %v", err)
	}

	run := func(t *testing.T, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Second)
		defer cancel()
		args = append([]string{"--server", e.ns.ClientURL(), "--timeout", "5s"}, args...)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if testing.Verbose() {
			t.Logf("nats %s:\n%s", strings.Join(args, " "), out)
		}
		if err != nil && !strings.Contains(strings.Join(args, " "), "Fail") {
			t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"micro ls", []string{"micro", "ls", "--json"}, []string{`"clisvc"`, tr.ID(), `"2.0.1"`}},
		{"micro info", []string{"micro", "info", "clisvc", "--json"}, []string{`"clisvc.Hello"`, `"clisvc.Fail"`, `"seen by natscli"`, `"ferry.endpoints": "Deadline,Fail,Hello"`}},
		{"micro stats", []string{"micro", "stats", "clisvc", "--json"}, []string{`"num_requests": 1`, tr.ID()}},
		{"req", []string{"req", "clisvc.Hello", `{"name":"cli"}`}, []string{`{"message":"Hello, cli"}`}},
		{"req error", []string{"req", "clisvc.Fail", `{}`}, []string{"403", "not you"}},
		// The documented way for any caller to send a deadline.
		{"req deadline", []string{"req", "-H", "Ferry-Timeout-Ms:20000", "clisvc.Deadline", `{}`}, []string{`{"message":"20s"}`}},
		{"req default deadline", []string{"req", "clisvc.Deadline", `{}`}, []string{`{"message":"30s"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := run(t, tt.args...)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("nats %s output lacks %q:\n%s", strings.Join(tt.args, " "), w, out)
				}
			}
		})
	}
}
