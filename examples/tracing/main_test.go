package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

// span is the part of stdouttrace's JSON the test reads.
type span struct {
	Name        string
	SpanKind    int
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
}

// TestOneTraceAcrossHops: a call to the frontend over HTTP produces one
// trace: frontend server → middle client/server (NATS) → backend
// client/server (gRPC), each client span the parent of the next server
// span; /metrics and /readyz answer on the admin port.
func TestOneTraceAcrossHops(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	var out syncBuffer
	a := &app{
		cfg:    config{httpAddr: "127.0.0.1:0", grpcAddr: "127.0.0.1:0", adminAddr: "127.0.0.1:0", stdout: &out},
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = a.stop(context.Background())
		}
	}()

	resp, err := http.Post("http://"+a.http.Addr().String()+"/frontend/Hello", "application/json", strings.NewReader(`{"name":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reply HelloReply
	err = json.NewDecoder(resp.Body).Decode(&reply)
	resp.Body.Close()
	if err != nil || reply.Message != "Hello, Ada!" || reply.Path != "frontend>middle>backend" || len(reply.TraceID) != 32 {
		t.Fatalf("reply = %+v, %v", reply, err)
	}

	admin := "http://" + a.admin.Addr().String()
	for path, want := range map[string]string{"/metrics": `rpc_server_call_duration_seconds_count{ferry_code="ok",ferry_endpoint="backend/Greet"`, "/readyz": "ok", "/livez": "ok"} {
		r, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d, want 200 containing %q", path, r.StatusCode, want)
		}
	}

	if err := a.stop(context.Background()); err != nil {
		t.Errorf("stop = %v", err)
	}
	stopped = true

	var spans []span
	dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
	for dec.More() {
		var s span
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("decoding stdout spans: %v", err)
		}
		spans = append(spans, s)
	}
	byName := map[string]span{}
	for _, s := range spans {
		if s.SpanContext.TraceID != reply.TraceID {
			t.Errorf("span %s in trace %s, want %s", s.Name, s.SpanContext.TraceID, reply.TraceID)
		}
		byName[s.Name+"/"+kindName(s.SpanKind)] = s
	}
	chain := []string{"POST /frontend/Hello/server", "middle/Relay/client", "middle/Relay/server", "backend.Backend/Greet/client", "backend.Backend/Greet/server"}
	for i, k := range chain {
		s, ok := byName[k]
		if !ok {
			t.Fatalf("no span %s among %v", k, byName)
		}
		if i > 0 && s.Parent.SpanID != byName[chain[i-1]].SpanContext.SpanID {
			t.Errorf("%s's parent = %s, want %s (%s)", k, s.Parent.SpanID, byName[chain[i-1]].SpanContext.SpanID, chain[i-1])
		}
	}
}

// kindName maps trace.SpanKind numbers as stdouttrace writes them.
func kindName(k int) string {
	switch k {
	case 2:
		return "server"
	case 3:
		return "client"
	}
	return "other"
}
