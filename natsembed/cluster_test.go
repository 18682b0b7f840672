package natsembed_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/natsembed"
	"github.com/nats-io/nats.go"
)

func TestStartCluster(t *testing.T) {
	ctx := testCtx(t)
	servers, err := natsembed.StartCluster(ctx, 3, natsembed.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartCluster(3, JetStream) = %v, want nil", err)
	}
	defer func() {
		for _, s := range servers {
			s.Shutdown()
		}
	}()
	for i, s := range servers {
		if want := "ferry-" + string(rune('1'+i)); s.NATS().Name() != want {
			t.Errorf("server %d name = %q, want %q", i, s.NATS().Name(), want)
		}
		if !strings.HasPrefix(s.ClusterURL(), "nats://127.0.0.1:") {
			t.Errorf("server %d ClusterURL() = %q, want nats://127.0.0.1:<port>", i, s.ClusterURL())
		}
	}

	// A message published on one node reaches a subscriber on another.
	sub := connect(t, servers[0].ClientURL())
	if _, err := sub.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		t.Fatalf("Subscribe(echo) = %v, want nil", err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatalf("Flush = %v", err)
	}
	pub := connect(t, servers[2].ClientURL())
	var msg *nats.Msg
	// Interest crosses routes asynchronously; retry until it has.
	for deadline := time.Now().Add(10 * time.Second); ; {
		msg, err = pub.RequestWithContext(ctx, "echo", []byte("hi"))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || string(msg.Data) != "hi" {
		t.Fatalf("Request(echo) across nodes = %v, %v, want hi", msg, err)
	}

	// Replicated streams can be created at once.
	js, err := pub.JetStream()
	if err != nil {
		t.Fatalf("JetStream() = %v", err)
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}); err != nil {
		t.Fatalf("AddStream(R3, replicas 3) = %v, want nil", err)
	}
}

func TestClusterOptionsInvalid(t *testing.T) {
	tests := []struct {
		name string
		opts natsembed.Options
	}{
		{"routes without name", natsembed.Options{Cluster: natsembed.ClusterOptions{Routes: []string{"nats://127.0.0.1:1"}}}},
		{"bad route", natsembed.Options{Cluster: natsembed.ClusterOptions{Name: "c", Routes: []string{"::"}}}},
	}
	for _, tt := range tests {
		s, err := natsembed.Start(testCtx(t), tt.opts)
		if err == nil {
			s.Shutdown()
			t.Errorf("Start(%s) = nil error, want an error", tt.name)
		}
	}
	if _, err := natsembed.StartCluster(testCtx(t), 0, natsembed.Options{}); err == nil {
		t.Errorf("StartCluster(0) = nil error, want an error")
	}
}
