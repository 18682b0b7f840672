package nats_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	"github.com/nats-io/nats.go"
)

// Item is the message type of the stream tests.
type Item struct {
	Num  int64  `json:"num"`
	Text string `json:"text,omitempty"`
}

// probe is what the stream tests' handlers report through. Its channels
// are buffered and written without blocking, so a handler never waits on
// a test that does not listen.
type probe struct {
	entered chan int64    // Count: about to send message n
	sendErr chan error    // Count: a Send failed with this
	held    chan struct{} // Hold and Sink: running, their first message sent (Hold)
	ctxErr  chan error    // Hold and Sink: their context ended so
	release chan struct{} // Hold: closing it ends Hold cleanly
}

func report[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// await returns the next value of ch, failing the test if none comes
// within ferrytest.WaitBound (a bound for failure only, never a timing
// assertion).
func await[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(ferrytest.WaitBound):
		t.Fatalf("%s never happened", what)
	}
	var zero T
	return zero
}

// streamServer returns a service "wire" with the stream tests' endpoints.
func streamServer(t testing.TB) (*server.Server, *probe) {
	t.Helper()
	p := &probe{
		entered: make(chan int64, 64), sendErr: make(chan error, 64),
		held: make(chan struct{}, 64), ctxErr: make(chan error, 64), release: make(chan struct{}),
	}
	s := server.New("wire", server.WithLogger(discardLogger()))
	server.Handle(s, "Hello", hello)
	// Count sends Num messages numbered 0.., with reply metadata and a
	// trailer.
	server.HandleServerStream(s, "Count", func(ctx context.Context, r *Item, out server.Sender[Item]) error {
		c, _ := transport.CallFromContext(ctx)
		c.Reply.Set("x-reply", "yes")
		for i := range r.Num {
			report(p.entered, i)
			if err := out.Send(&Item{Num: i}); err != nil {
				report(p.sendErr, err)
				return err
			}
		}
		c.SetTrailer("x-trailer", "sent:"+strconv.FormatInt(r.Num, 10))
		return nil
	})
	// FailAfter sends Num messages, then fails with the code in Text.
	server.HandleServerStream(s, "FailAfter", func(ctx context.Context, r *Item, out server.Sender[Item]) error {
		for i := range r.Num {
			if err := out.Send(&Item{Num: i}); err != nil {
				return err
			}
		}
		c, _ := transport.CallFromContext(ctx)
		c.SetTrailer("x-trailer", "failed")
		code, _ := errs.ParseCode(r.Text)
		return errs.Newf(code, "failed after %d", r.Num)
	})
	// Hold sends one message and waits for its context or release.
	server.HandleServerStream(s, "Hold", func(ctx context.Context, _ *Item, out server.Sender[Item]) error {
		if err := out.Send(&Item{Text: "held"}); err != nil {
			return err
		}
		report(p.held, struct{}{})
		select {
		case <-ctx.Done():
			report(p.ctxErr, ctx.Err())
			return ctx.Err()
		case <-p.release:
			return nil
		}
	})
	// Sum adds the numbers it receives.
	server.HandleClientStream(s, "Sum", func(_ context.Context, in server.Receiver[Item]) (*Item, error) {
		var sum Item
		for m, err := range in.All() {
			if err != nil {
				return nil, err
			}
			sum.Num += m.Num
		}
		return &sum, nil
	})
	// Chat echoes every message.
	server.HandleBidiStream(s, "Chat", func(_ context.Context, st server.Stream[Item, Item]) error {
		for m, err := range st.All() {
			if err != nil {
				return err
			}
			if err := st.Send(m); err != nil {
				return err
			}
		}
		return nil
	})
	// Sink reads nothing and waits for its context.
	server.HandleBidiStream(s, "Sink", func(ctx context.Context, _ server.Stream[Item, Item]) error {
		report(p.held, struct{}{})
		<-ctx.Done()
		report(p.ctxErr, ctx.Err())
		return ctx.Err()
	})
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return s, p
}

// raw is one stream spoken by hand over a plain nats.go connection, as a
// client in another language would.
type raw struct {
	t     testing.TB
	nc    *nats.Conn
	sub   *nats.Subscription
	inbox string
	peer  string // the server's stream inbox, from the accept
	seq   int    // the last frame number sent
}

// hdr builds a header from key, value pairs.
func hdr(kv ...string) nats.Header {
	h := nats.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// rawOpen subscribes an inbox and publishes an open to subject.
func rawOpen(t testing.TB, nc *nats.Conn, subject string, h nats.Header, body string) *raw {
	t.Helper()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.PublishMsg(&nats.Msg{Subject: subject, Reply: inbox, Header: h, Data: []byte(body)}); err != nil {
		t.Fatalf("publish the open: %v", err)
	}
	return &raw{t: t, nc: nc, sub: sub, inbox: inbox}
}

// openHdr is the header of an open of kind granting credit, with no pings.
func openHdr(kind string, credit int) nats.Header {
	return hdr("Ferry-Stream", kind, "Ferry-Credit", strconv.Itoa(credit), "Ferry-Heartbeat-Ms", "0")
}

func (r *raw) next() *nats.Msg {
	r.t.Helper()
	m, err := r.sub.NextMsg(ferrytest.WaitBound)
	if err != nil {
		r.t.Fatalf("no frame from the server: %v", err)
	}
	return m
}

// expect reads the next frame and checks its type and number.
func (r *raw) expect(kind string, seq int) *nats.Msg {
	r.t.Helper()
	m := r.next()
	if got, gotSeq := m.Header.Get("Ferry-Frame"), m.Header.Get("Ferry-Seq"); got != kind || gotSeq != strconv.Itoa(seq) {
		r.t.Fatalf("frame %s %s (headers %v, body %.200s), want %s %d", got, gotSeq, m.Header, m.Data, kind, seq)
	}
	if kind == "accept" {
		r.peer = m.Reply
	}
	return m
}

// send publishes a frame of kind with the next number and extra headers.
func (r *raw) send(kind string, h nats.Header, body []byte) {
	r.t.Helper()
	if h == nil {
		h = nats.Header{}
	}
	r.seq++
	h.Set("Ferry-Frame", kind)
	h.Set("Ferry-Seq", strconv.Itoa(r.seq))
	r.sendRaw(h, body)
}

// sendRaw publishes h and body to the server's stream inbox as they are.
func (r *raw) sendRaw(h nats.Header, body []byte) {
	r.t.Helper()
	if err := r.nc.PublishMsg(&nats.Msg{Subject: r.peer, Reply: r.inbox, Header: h, Data: body}); err != nil {
		r.t.Fatalf("publish a frame: %v", err)
	}
}

// expectError reads the next frame, an error frame numbered seq, and
// checks its code and that its message holds want.
func (r *raw) expectError(seq int, code errs.Code, want string) *nats.Msg {
	r.t.Helper()
	m := r.expect("error", seq)
	var e errs.Error
	if err := json.Unmarshal(m.Data, &e); err != nil {
		r.t.Fatalf("error frame body %s: %v", m.Data, err)
	}
	if e.Code() != code || m.Header.Get("Ferry-Error-Code") != code.String() || !strings.Contains(e.Message(), want) {
		r.t.Fatalf("error frame %s %q (header %s), want %s saying %q", e.Code(), e.Message(), m.Header.Get("Ferry-Error-Code"), code, want)
	}
	return m
}

func item(t testing.TB, data []byte) Item {
	t.Helper()
	var it Item
	if err := json.Unmarshal(data, &it); err != nil {
		t.Fatalf("message %s: %v", data, err)
	}
	return it
}

func jsonOf(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
