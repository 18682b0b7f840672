package nats_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
)

// deadlineServer serves "dl.Deadline", which answers with the time the
// handler's deadline left it, to 10s (so that a slow machine does not
// change it), and "h" if it saw a Ferry-Timeout-Ms header, "-" if not.
func deadlineServer(t *testing.T, nc *nats.Conn, opts ...fnats.ServerOption) {
	t.Helper()
	srv := server.New("dl")
	server.Handle(srv, "Deadline", func(ctx context.Context, _ *HelloRequest) (*HelloReply, error) {
		c, _ := transport.CallFromContext(ctx)
		d, _ := ctx.Deadline()
		h := "-"
		if c.Request.Get(fnats.TimeoutHeader) != "" {
			h = "h"
		}
		return &HelloReply{Message: time.Until(d).Round(10*time.Second).String() + " " + h}, nil
	})
	serve(t, nc, srv, opts...)
}

// A Ferry client puts the deadline of a call without metadata in the
// reply subject, with no header; the server applies it.
func TestDeadlineInReplySubject(t *testing.T) {
	e := newEnv(t)
	deadlineServer(t, e.nc, fnats.WithDefaultTimeout(time.Minute))

	// What the client sends: no header, a reply subject ending ferry-t<ms>.
	spy := connect(t, e.ns)
	seen := make(chan *nats.Msg, 1)
	sub, err := spy.Subscribe("spied.Hello", func(m *nats.Msg) {
		seen <- m
		_ = m.Respond([]byte(`{"message":"hi"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Second)
	defer cancel()
	var out HelloReply
	if err := e.client.Invoke(ctx, "spied", "Hello", &HelloRequest{}, &out); err != nil || out.Message != "hi" {
		t.Fatalf("Invoke(spied.Hello) = %+v, %v; want the spy's reply (a server that ignores the reply subject answers as ever)", out, err)
	}
	m := <-seen
	if len(m.Header) != 0 {
		t.Errorf("request headers = %v, want none", m.Header)
	}
	last := m.Reply[strings.LastIndexByte(m.Reply, '.')+1:]
	if !strings.HasPrefix(last, "ferry-t") {
		t.Errorf("reply subject %q, want its last token ferry-t<ms>", m.Reply)
	}

	// The server applies it.
	if err := e.client.Invoke(ctx, "dl", "Deadline", &HelloRequest{}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Message != "20s -" {
		t.Errorf("server saw %q, want the caller's 20s and no header", out.Message)
	}
	// With metadata the call has headers anyway, and the deadline rides
	// with them, as it does with WithTimeoutHeader.
	if err := e.client.Invoke(transport.WithMetadata(ctx, transport.Metadata{"x-k": {"v"}}), "dl", "Deadline", &HelloRequest{}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Message != "20s h" {
		t.Errorf("with metadata the server saw %q, want 20s from the header", out.Message)
	}
	hc := fnats.NewClient(e.nc, fnats.WithTimeoutHeader())
	if err := hc.Invoke(ctx, "dl", "Deadline", &HelloRequest{}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Message != "20s h" {
		t.Errorf("WithTimeoutHeader: the server saw %q, want 20s from the header", out.Message)
	}
	// Without a deadline nothing travels: the server's default.
	if err := e.client.Invoke(t.Context(), "dl", "Deadline", &HelloRequest{}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Message != "1m0s -" {
		t.Errorf("without a deadline the server saw %q, want its default 1m", out.Message)
	}
}

// What a plain nats.go caller sends: the header still works and comes
// before a reply-subject deadline; reply subjects that are not exactly
// ferry-t<ms> are left alone.
func TestDeadlineFromPlainCallers(t *testing.T) {
	e := newEnv(t)
	deadlineServer(t, e.nc, fnats.WithDefaultTimeout(time.Minute), fnats.WithMaxTimeout(40*time.Second))
	raw := connect(t, e.ns)
	inbox := raw.NewInbox()
	replies, err := raw.SubscribeSync(inbox + ".>")
	if err != nil {
		t.Fatal(err)
	}
	defer replies.Unsubscribe()
	tests := []struct {
		reply, header, want string
	}{
		{"ferry-t20000", "", "20s -"},
		{"ferry-t3600000", "", "40s -"}, // cut to WithMaxTimeout
		{"ferry-t20000", "30000", "30s h"},
		{"ferry-t", "", "1m0s -"},
		{"ferry-t0", "", "1m0s -"},
		{"ferry-t-5", "", "1m0s -"},
		{"ferry-t+5000", "", "1m0s -"},
		{"ferry-tsoon", "", "1m0s -"},
		{"Ferry-t20000", "", "1m0s -"},
		{"t20000", "", "1m0s -"},
		{"ferry-t20000.x", "", "1m0s -"},
	}
	for i, tt := range tests {
		msg := &nats.Msg{Subject: "dl.Deadline", Reply: inbox + "." + string(rune('a'+i)) + "." + tt.reply, Data: []byte(`{}`)}
		if tt.header != "" {
			msg.Header = nats.Header{fnats.TimeoutHeader: {tt.header}}
		}
		if err := raw.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		m, err := replies.NextMsgWithContext(testCtx(t))
		if err != nil {
			t.Fatalf("reply to %q: %v", tt.reply, err)
		}
		if got := string(m.Data); got != `{"message":"`+tt.want+`"}` {
			t.Errorf("reply subject …%s, header %q: server saw %s, want %q", tt.reply, tt.header, got, tt.want)
		}
	}
}

// Calls that carry their deadline in the reply subject fail as other calls
// do: no responders, a closed connection (also while waiting), a deadline.
func TestDeadlineInReplySubjectErrors(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Second)
	defer cancel()
	if err := e.client.Invoke(ctx, "ghost", "Hello", &HelloRequest{}, &HelloReply{}); errs.CodeOf(err) != errs.Unavailable ||
		!strings.Contains(err.Error(), "no responders for ghost.Hello") {
		t.Errorf("Invoke(ghost.Hello) = %v, want unavailable: no responders", err)
	}

	// A service that never answers.
	mute := connect(t, e.ns)
	got := make(chan struct{}, 4)
	sub, err := mute.Subscribe("mute.Hello", func(*nats.Msg) { got <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := mute.Flush(); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if err := e.client.Invoke(short, "mute", "Hello", &HelloRequest{}, &HelloReply{}); errs.CodeOf(err) != errs.DeadlineExceeded {
		t.Errorf("Invoke(mute.Hello, 50ms) = %v, want deadline_exceeded", err)
	}
	<-got

	// The caller's connection closes while it waits: it learns at once.
	nc := connect(t, e.ns)
	cl := fnats.NewClient(nc)
	done := make(chan error, 1)
	go func() { done <- cl.Invoke(ctx, "mute", "Hello", &HelloRequest{}, &HelloReply{}) }()
	<-got
	nc.Close()
	if err := <-done; errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("Invoke while the connection closes = %v, want unavailable", err)
	}
	if err := cl.Invoke(ctx, "mute", "Hello", &HelloRequest{}, &HelloReply{}); errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("Invoke on the closed connection = %v, want unavailable", err)
	}
}

// All clients of a connection share one reply subscription, as nats.go's
// requests share one; a new connection gets its own.
func TestDeadlineRepliesShareASubscription(t *testing.T) {
	e := newEnv(t)
	srv := server.New("greeter")
	server.Handle(srv, "Hello", hello)
	serve(t, e.nc, srv)
	nc := connect(t, e.ns)
	ctx := testCtx(t)
	for range 5 {
		cl := fnats.NewClient(nc)
		for range 10 {
			if err := cl.Invoke(ctx, "greeter", "Hello", &HelloRequest{Name: "x"}, &HelloReply{}); err != nil {
				t.Fatal(err)
			}
		}
		_ = cl.Close()
	}
	if n := nc.NumSubscriptions(); n != 1 {
		t.Errorf("5 clients' calls with deadlines hold %d subscriptions, want 1", n)
	}
}
