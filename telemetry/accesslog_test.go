package telemetry_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	"github.com/ferry-go/ferry/transport"
)

// TestAccessLog: one line per call on every transport, with trace_id and
// span_id of the server span; secret metadata (built-in and user-listed)
// never appears, even with metadata logging on; levels follow the code.
func TestAccessLog(t *testing.T) {
	tp, _ := newTracer(t)
	var buf ferrytest.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := server.New("logged", server.WithMiddleware(
		telemetry.Tracing(tp, nil),
		telemetry.AccessLog(log, telemetry.WithLoggedMetadata(), telemetry.WithSecretHeaders("X-Session-Token")),
	))
	server.Handle(srv, "Echo", func(ctx context.Context, h *hop) (*hop, error) {
		switch h.Path {
		case "bad":
			return nil, errs.New(errs.InvalidArgument, "bad path")
		case "broken":
			return nil, errs.New(errs.Internal, "broken")
		}
		return h, nil
	})
	inst := ferrytest.Start(t, srv)
	const secret = "s3cr3t-value"
	ctx := transport.WithMetadata(testCtx(t), transport.Pairs(
		"authorization", "Bearer "+secret, "x-api-key", secret, "x-session-token", secret, "cookie", "id="+secret, "x-visible", "shown"))
	for _, c := range []transport.Client{inst.HTTP, inst.GRPC, inst.NATS} {
		for _, p := range []string{"ok", "bad", "broken"} {
			_, _ = transport.Invoke[hop, hop](ctx, c, "logged", "Echo", &hop{Path: p})
		}
	}
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Errorf("a secret was logged:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 9 {
		t.Fatalf("%d lines, want 9 (3 calls × 3 transports):\n%s", len(lines), out)
	}
	levels := map[string]string{"ok": "INFO", "invalid_argument": "WARN", "internal": "ERROR"}
	seen := map[string]bool{}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		code, _ := rec["code"].(string)
		if rec["level"] != levels[code] {
			t.Errorf("code %s logged at %v, want %s", code, rec["level"], levels[code])
		}
		for _, k := range []string{"service", "endpoint", "transport", "duration", "trace_id", "span_id"} {
			if rec[k] == nil || rec[k] == "" {
				t.Errorf("line lacks %s: %s", k, l)
			}
		}
		if tid, _ := rec["trace_id"].(string); len(tid) != 32 {
			t.Errorf("trace_id = %q, want 32 hex digits", tid)
		}
		md, _ := rec["metadata"].(map[string]any)
		if md["authorization"] != telemetry.Redacted || md["x-session-token"] != telemetry.Redacted {
			t.Errorf("metadata = %v, want secrets redacted", md)
		}
		if v, _ := md["x-visible"].([]any); len(v) != 1 || v[0] != "shown" {
			t.Errorf("metadata x-visible = %v, want [shown]", md["x-visible"])
		}
		if strings.Contains(l, `"path"`) {
			t.Errorf("a body was logged: %s", l)
		}
		seen[rec["transport"].(string)] = true
	}
	if len(seen) != 3 {
		t.Errorf("transports logged = %v, want http, grpc, nats", seen)
	}
}
