package ferrytest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
)

// StreamLimits are the limits the stream suite serves with: requests up to
// 2 MiB, so a 1 MiB message passes and a 3 MiB one is refused.
var StreamLimits = Limits{MaxRequestBytes: 2 << 20, DefaultTimeout: 40 * time.Second, MaxTimeout: 90 * time.Second}

// The stream suite's endpoints and what they do.
const (
	streamService = "streams"
	trailerKey    = "X-Ferry-Trailer"
)

// streamSuite is the state the stream suite's handlers report through.
type streamSuite struct {
	opened   atomic.Int64 // middleware calls (once per stream)
	sentHook atomic.Int64 // OnMessages send hook calls
	ctxErr   chan error   // Hold's context error when it ends
	held     chan struct{}
	floodOut atomic.Int64  // Flood's messages handed to Send and returned
	stalled  chan struct{} // Stall received its first message
	closed   chan error    // EndEarly's handler: what its stream did after it returned
}

func newStreamServer(t testing.TB) (*server.Server, *streamSuite) {
	st := &streamSuite{ctxErr: make(chan error, 16), held: make(chan struct{}, 16), closed: make(chan error, 16), stalled: make(chan struct{}, 16)}
	count := func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			if c, ok := transport.CallFromContext(ctx); ok && c.Endpoint == "Count" {
				st.opened.Add(1)
				middleware.OnMessages(ctx, nil, func(context.Context, any) error { st.sentHook.Add(1); return nil })
			}
			return next(ctx, req)
		}
	}
	s := server.New(streamService, server.WithVersion("1.0.0"), server.WithLogger(quietLogger()), server.WithMiddleware(count))
	// Count sends Num messages numbered 0..Num-1, with a reply header
	// and a trailer.
	server.HandleServerStream(s, "Count", func(ctx context.Context, r *Echo, out server.Sender[Echo]) error {
		c, _ := transport.CallFromContext(ctx)
		c.Reply.Set(replyMDKey, "count:"+r.Text)
		for i := range r.Num {
			if err := out.Send(&Echo{Num: i, Text: r.Text}); err != nil {
				return err
			}
		}
		c.SetTrailer(trailerKey, fmt.Sprintf("sent:%d", r.Num))
		return nil
	})
	// Big sends one message of Num bytes.
	server.HandleServerStream(s, "Big", func(_ context.Context, r *Echo, out server.Sender[Echo]) error {
		return out.Send(&Echo{Text: strings.Repeat("b", int(r.Num))})
	})
	// FailAfter sends Num messages, then fails with the code in Text.
	server.HandleServerStream(s, "FailAfter", func(_ context.Context, r *Echo, out server.Sender[Echo]) error {
		for i := range r.Num {
			if err := out.Send(&Echo{Num: i}); err != nil {
				return err
			}
		}
		code, _ := errs.ParseCode(r.Text)
		return errs.Newf(code, "failed after %d", r.Num).WithDetails(errs.Detail{Field: "num", Reason: "too far"})
	})
	// Hold sends the milliseconds its context has left (-1: no deadline),
	// then waits for its context to end and reports why.
	server.HandleServerStream(s, "Hold", func(ctx context.Context, _ *Echo, out server.Sender[Echo]) error {
		left := int64(-1)
		if d, ok := ctx.Deadline(); ok {
			left = time.Until(d).Milliseconds()
		}
		if err := out.Send(&Echo{Num: left}); err != nil {
			return err
		}
		st.held <- struct{}{}
		<-ctx.Done()
		st.ctxErr <- ctx.Err()
		return ctx.Err()
	})
	// Flood sends Num messages of len(Text)... as fast as the reader lets it.
	server.HandleServerStream(s, "Flood", func(_ context.Context, r *Echo, out server.Sender[Echo]) error {
		st.floodOut.Store(0)
		for i := range r.Num {
			if err := out.Send(&Echo{Num: i, Text: r.Text}); err != nil {
				return err
			}
			st.floodOut.Add(1)
		}
		return nil
	})
	// Sum adds the numbers it receives and answers the sum, with the
	// texts joined.
	server.HandleClientStream(s, "Sum", func(_ context.Context, in server.Receiver[Echo]) (*Echo, error) {
		var sum Echo
		var texts []string
		for m, err := range in.All() {
			if err != nil {
				return nil, err
			}
			sum.Num += m.Num
			texts = append(texts, m.Text)
		}
		sum.Text = strings.Join(texts, ",")
		return &sum, nil
	})
	// Stall receives one message, then stops reading until its context
	// ends.
	server.HandleClientStream(s, "Stall", func(ctx context.Context, in server.Receiver[Echo]) (*Echo, error) {
		if _, err := in.Recv(); err != nil {
			return nil, err
		}
		st.stalled <- struct{}{}
		<-ctx.Done()
		st.ctxErr <- ctx.Err()
		return nil, ctx.Err()
	})
	// Chat echoes every message it receives, with Num doubled.
	server.HandleBidiStream(s, "Chat", func(_ context.Context, st server.Stream[Echo, Echo]) error {
		for m, err := range st.All() {
			if err != nil {
				return err
			}
			m.Num *= 2
			if err := st.Send(m); err != nil {
				return err
			}
		}
		return nil
	})
	// EndEarly answers the first message and returns while the caller
	// may still be sending.
	server.HandleBidiStream(s, "EndEarly", func(_ context.Context, st server.Stream[Echo, Echo]) error {
		m, err := st.Recv()
		if err != nil {
			return err
		}
		return st.Send(m)
	})
	// Panic panics after one message.
	server.HandleServerStream(s, "Panic", func(_ context.Context, _ *Echo, out server.Sender[Echo]) error {
		if err := out.Send(&Echo{Text: "before"}); err != nil {
			return err
		}
		panic("secret stream panic")
	})
	if err := s.Err(); err != nil {
		t.Fatalf("stream suite server: %v", err)
	}
	return s, st
}

// StreamConformance runs the streaming behaviours every transport must
// show against tr, served with StreamLimits: order, reply header and
// trailer, middleware once per stream with per-message hooks, client and
// bidirectional streams, errors mid-stream, early close by either side,
// cancellation and deadlines reaching the handler, back-pressure (a reader
// that stops bounds what the writer gets out), large and oversized
// messages, unknown endpoints, panics and 1,000 concurrent streams.
// tr.Serve's client must implement transport.Streamer.
func StreamConformance(t *testing.T, tr Transport) {
	t.Helper()
	s, st := newStreamServer(t)
	conn := tr.Serve(t, s, StreamLimits)
	c := conn.Client
	if _, ok := c.(transport.Streamer); !ok {
		t.Fatalf("%s client %T does not implement transport.Streamer", tr.Name, c)
	}
	ctx10 := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	count := transport.StreamEndpoint[Echo, Echo]{Service: streamService, Name: "Count", Kind: transport.ServerStreaming}
	serverStream := func(name string) transport.StreamEndpoint[Echo, Echo] {
		return transport.StreamEndpoint[Echo, Echo]{Service: streamService, Name: name, Kind: transport.ServerStreaming}
	}
	bidi := func(name string) transport.StreamEndpoint[Echo, Echo] {
		return transport.StreamEndpoint[Echo, Echo]{Service: streamService, Name: name, Kind: transport.BidiStreaming}
	}

	t.Run("server stream in order with header and trailer", func(t *testing.T) {
		before, hooks := st.opened.Load(), st.sentHook.Load()
		const n = 1000
		rs, err := count.OpenServer(ctx10(t), c, &Echo{Text: "x", Num: n})
		if err != nil {
			t.Fatalf("open Count: %v", err)
		}
		var got int64
		for m, err := range rs.All() {
			if err != nil {
				t.Fatalf("Count: after %d messages: %v", got, err)
			}
			if m.Num != got || m.Text != "x" {
				t.Fatalf("Count message %d = %+v, want num %d: out of order", got, m, got)
			}
			got++
		}
		if got != n {
			t.Errorf("Count(%d) delivered %d messages", n, got)
		}
		if h := rs.Header().Get(replyMDKey); h != "count:x" {
			t.Errorf("reply header %s = %q, want count:x", replyMDKey, h)
		}
		if tr := rs.Trailer().Get(trailerKey); tr != fmt.Sprintf("sent:%d", n) {
			t.Errorf("trailer %s = %q, want sent:%d", trailerKey, tr, n)
		}
		if d := st.opened.Load() - before; d != 1 {
			t.Errorf("middleware ran %d times for one stream, want 1", d)
		}
		if d := st.sentHook.Load() - hooks; d != n {
			t.Errorf("OnMessages send hook ran %d times for %d messages", d, n)
		}
	})

	t.Run("empty server stream", func(t *testing.T) {
		rs, err := count.OpenServer(ctx10(t), c, &Echo{Num: 0})
		if err != nil {
			t.Fatalf("open Count: %v", err)
		}
		if m, err := rs.Recv(); err != io.EOF {
			t.Errorf("Count(0) Recv = %+v, %v; want io.EOF", m, err)
		}
	})

	t.Run("client stream", func(t *testing.T) {
		ups, err := transport.StreamEndpoint[Echo, Echo]{Service: streamService, Name: "Sum", Kind: transport.ClientStreaming}.Open(ctx10(t), c)
		if err != nil {
			t.Fatalf("open Sum: %v", err)
		}
		var want int64
		for i := range int64(100) {
			if err := ups.Send(&Echo{Num: i, Text: fmt.Sprint(i)}); err != nil {
				t.Fatalf("Send %d: %v", i, err)
			}
			want += i
		}
		got, err := ups.CloseAndRecv()
		if err != nil {
			t.Fatalf("Sum: %v", err)
		}
		if got.Num != want || !strings.HasPrefix(got.Text, "0,1,2,") || !strings.HasSuffix(got.Text, ",98,99") {
			t.Errorf("Sum = %d %q, want %d and the texts in order", got.Num, got.Text, want)
		}
	})

	t.Run("client stream with no messages", func(t *testing.T) {
		ups, err := transport.StreamEndpoint[Echo, Echo]{Service: streamService, Name: "Sum", Kind: transport.ClientStreaming}.Open(ctx10(t), c)
		if err != nil {
			t.Fatalf("open Sum: %v", err)
		}
		got, err := ups.CloseAndRecv()
		if err != nil || got.Num != 0 {
			t.Errorf("Sum of nothing = %+v, %v; want 0", got, err)
		}
	})

	t.Run("bidi stream", func(t *testing.T) {
		bs, err := bidi("Chat").Open(ctx10(t), c)
		if err != nil {
			t.Fatalf("open Chat: %v", err)
		}
		// Lock step: each answer arrives before the next question goes.
		for i := range int64(50) {
			if err := bs.Send(&Echo{Num: i, Text: "q"}); err != nil {
				t.Fatalf("Send %d: %v", i, err)
			}
			m, err := bs.Recv()
			if err != nil || m.Num != 2*i {
				t.Fatalf("Recv %d = %+v, %v; want num %d", i, m, err, 2*i)
			}
		}
		if err := bs.CloseSend(); err != nil {
			t.Fatalf("CloseSend: %v", err)
		}
		if m, err := bs.Recv(); err != io.EOF {
			t.Errorf("Recv after CloseSend = %+v, %v; want io.EOF", m, err)
		}
	})

	t.Run("bidi stream both ways at once", func(t *testing.T) {
		bs, err := bidi("Chat").Open(ctx10(t), c)
		if err != nil {
			t.Fatalf("open Chat: %v", err)
		}
		const n = 2000
		sendErr := make(chan error, 1)
		go func() {
			for i := range int64(n) {
				if err := bs.Send(&Echo{Num: i}); err != nil {
					sendErr <- err
					return
				}
			}
			sendErr <- bs.CloseSend()
		}()
		var got int64
		for m, err := range bs.All() {
			if err != nil {
				t.Fatalf("Recv after %d: %v", got, err)
			}
			if m.Num != 2*got {
				t.Fatalf("message %d = %d, want %d", got, m.Num, 2*got)
			}
			got++
		}
		if err := <-sendErr; err != nil {
			t.Errorf("sending: %v", err)
		}
		if got != n {
			t.Errorf("received %d of %d", got, n)
		}
	})

	t.Run("error mid-stream", func(t *testing.T) {
		rs, err := serverStream("FailAfter").OpenServer(ctx10(t), c, &Echo{Num: 3, Text: "failed_precondition"})
		if err != nil {
			t.Fatalf("open FailAfter: %v", err)
		}
		var got int
		var end error
		for m, err := range rs.All() {
			if err != nil {
				end = err
				break
			}
			if m.Num != int64(got) {
				t.Errorf("message %d = %d", got, m.Num)
			}
			got++
		}
		e := errs.FromError(end)
		if got != 3 || e.Code() != errs.FailedPrecondition || e.Message() != "failed after 3" ||
			len(e.Details()) != 1 || e.Details()[0].Field != "num" {
			t.Errorf("FailAfter(3) = %d messages then %v (details %v); want 3 then failed_precondition with its detail", got, end, e.Details())
		}
	})

	t.Run("every error code mid-stream", func(t *testing.T) {
		for _, code := range errs.Codes() {
			rs, err := serverStream("FailAfter").OpenServer(ctx10(t), c, &Echo{Num: 1, Text: code.String()})
			if err != nil {
				t.Fatalf("open FailAfter: %v", err)
			}
			if _, err := rs.Recv(); err != nil {
				t.Errorf("%v: first message: %v", code, err)
				continue
			}
			if _, err := rs.Recv(); errs.CodeOf(err) != code {
				t.Errorf("%v: stream ended with %v", code, err)
			}
		}
	})

	t.Run("handler panic", func(t *testing.T) {
		rs, err := serverStream("Panic").OpenServer(ctx10(t), c, &Echo{})
		if err != nil {
			t.Fatalf("open Panic: %v", err)
		}
		m, err := rs.Recv()
		if err != nil || m.Text != "before" {
			t.Fatalf("first message = %+v, %v", m, err)
		}
		_, err = rs.Recv()
		if errs.CodeOf(err) != errs.Internal || strings.Contains(err.Error(), "secret") {
			t.Errorf("after the panic: %v, want internal without the panic value", err)
		}
	})

	t.Run("caller closes early", func(t *testing.T) {
		rs, err := serverStream("Hold").OpenServer(ctx10(t), c, &Echo{})
		if err != nil {
			t.Fatalf("open Hold: %v", err)
		}
		if _, err := rs.Recv(); err != nil {
			t.Fatalf("first message: %v", err)
		}
		<-st.held
		if err := rs.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		expectCtxEnd(t, st.ctxErr, "the caller closed the stream")
		if _, err := rs.Recv(); err == nil || err == io.EOF {
			t.Errorf("Recv after Close = %v, want an error", err)
		}
	})

	t.Run("cancellation reaches the handler", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rs, err := serverStream("Hold").OpenServer(ctx, c, &Echo{})
		if err != nil {
			t.Fatalf("open Hold: %v", err)
		}
		if _, err := rs.Recv(); err != nil {
			t.Fatalf("first message: %v", err)
		}
		<-st.held
		cancel()
		if _, err := rs.Recv(); errs.CodeOf(err) != errs.Canceled {
			t.Errorf("Recv after cancel = %v, want canceled", err)
		}
		expectCtxEnd(t, st.ctxErr, "the caller cancelled")
	})

	t.Run("deadline reaches the handler", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		rs, err := serverStream("Hold").OpenServer(ctx, c, &Echo{})
		if err != nil {
			t.Fatalf("open Hold: %v", err)
		}
		m, err := rs.Recv()
		if err != nil {
			t.Fatalf("first message: %v", err)
		}
		if m.Num <= 0 || m.Num > 2000 {
			t.Errorf("handler's deadline in %dms, want the caller's (at most 2000ms)", m.Num)
		}
		<-st.held
		if _, err := rs.Recv(); errs.CodeOf(err) != errs.DeadlineExceeded {
			t.Errorf("Recv past the deadline = %v, want deadline_exceeded", err)
		}
		expectCtxEnd(t, st.ctxErr, "the deadline passed")
	})

	t.Run("stream without a deadline has none", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rs, err := serverStream("Hold").OpenServer(ctx, c, &Echo{})
		if err != nil {
			t.Fatalf("open Hold: %v", err)
		}
		m, err := rs.Recv()
		if err != nil {
			t.Fatalf("first message: %v", err)
		}
		if m.Num != -1 {
			t.Errorf("handler of a stream opened without a deadline has one in %dms; a stream lives until either side ends it", m.Num)
		}
		<-st.held
		cancel()
		expectCtxEnd(t, st.ctxErr, "the caller cancelled")
	})

	t.Run("server ends while the caller sends", func(t *testing.T) {
		bs, err := bidi("EndEarly").Open(ctx10(t), c)
		if err != nil {
			t.Fatalf("open EndEarly: %v", err)
		}
		if err := bs.Send(&Echo{Text: "first"}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		m, err := bs.Recv()
		if err != nil || m.Text != "first" {
			t.Fatalf("Recv = %+v, %v", m, err)
		}
		if _, err := bs.Recv(); err != io.EOF {
			t.Errorf("Recv after the server ended = %v, want io.EOF", err)
		}
		// Sending on is refused or dropped, never a hang.
		for range 100 {
			if err := bs.Send(&Echo{Text: "more"}); err != nil {
				break
			}
		}
		_ = bs.Close()
	})

	t.Run("back-pressure bounds the writer", func(t *testing.T) {
		const n, size = 4000, 16 << 10 // 64 MiB in all
		rs, err := serverStream("Flood").OpenServer(ctx10(t), c, &Echo{Num: n, Text: strings.Repeat("f", size)})
		if err != nil {
			t.Fatalf("open Flood: %v", err)
		}
		if _, err := rs.Recv(); err != nil {
			t.Fatalf("first message: %v", err)
		}
		// The reader stops; the writer must stop too, well short of n.
		ahead := Settled(&st.floodOut)
		buffered := (ahead - 1) * size
		t.Logf("%s: with the reader stopped after 1 message, the writer got %d of %d messages (%.1f MiB) out before blocking",
			tr.Name, ahead, n, float64(buffered)/(1<<20))
		if ahead >= n || buffered > 24<<20 {
			t.Errorf("writer sent %d messages (%d MiB) past a stopped reader: no back-pressure", ahead, buffered>>20)
		}
		got := int64(1)
		for m, err := range rs.All() {
			if err != nil {
				t.Fatalf("after %d: %v", got, err)
			}
			if m.Num != got {
				t.Fatalf("message %d = %d", got, m.Num)
			}
			got++
		}
		if got != n {
			t.Errorf("received %d of %d", got, n)
		}
	})

	t.Run("back-pressure bounds the caller", func(t *testing.T) {
		const n, size = 4000, 16 << 10
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ups, err := transport.StreamEndpoint[Echo, Echo]{Service: streamService, Name: "Stall", Kind: transport.ClientStreaming}.Open(ctx, c)
		if err != nil {
			t.Fatalf("open Stall: %v", err)
		}
		var sent atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			m := &Echo{Text: strings.Repeat("u", size)}
			for range n {
				if ups.Send(m) != nil {
					return
				}
				sent.Add(1)
			}
		}()
		select {
		case <-st.stalled:
		case <-time.After(WaitBound):
			t.Fatal("the handler never received the first message")
		}
		ahead := Settled(&sent)
		t.Logf("%s: with the handler not reading, the caller got %d of %d messages (%.1f MiB) out before blocking",
			tr.Name, ahead, n, float64(ahead*size)/(1<<20))
		if ahead >= n || ahead*size > 24<<20 {
			t.Errorf("caller sent %d messages (%d MiB) past a handler that stopped reading: no back-pressure", ahead, (ahead*size)>>20)
		}
		_ = ups.Close()
		cancel()
		<-done
		expectCtxEnd(t, st.ctxErr, "the caller closed")
	})

	t.Run("large messages", func(t *testing.T) {
		rs, err := serverStream("Big").OpenServer(ctx10(t), c, &Echo{Num: 1 << 20})
		if err != nil {
			t.Fatalf("open Big: %v", err)
		}
		m, err := rs.Recv()
		if err != nil || len(m.Text) != 1<<20 {
			t.Fatalf("Big(1 MiB) = %d bytes, %v", len(m.Text), err)
		}
		bs, err := bidi("Chat").Open(ctx10(t), c)
		if err != nil {
			t.Fatalf("open Chat: %v", err)
		}
		big := strings.Repeat("c", 1<<20)
		if err := bs.Send(&Echo{Text: big, Num: 1}); err != nil {
			t.Fatalf("Send 1 MiB: %v", err)
		}
		if m, err := bs.Recv(); err != nil || m.Text != big {
			t.Fatalf("Chat echo of 1 MiB = %v; want it back", err)
		}
		_ = bs.Close()
	})

	t.Run("oversized message", func(t *testing.T) {
		bs, err := bidi("Chat").Open(ctx10(t), c)
		if err != nil {
			t.Fatalf("open Chat: %v", err)
		}
		defer bs.Close()
		// The send may succeed (the server refuses it on arrival) or fail at
		// once; either way the stream ends with ResourceExhausted.
		_ = bs.Send(&Echo{Text: strings.Repeat("o", 3<<20)})
		var end error
		for _, err := range bs.All() {
			if err != nil {
				end = err
				break
			}
		}
		if errs.CodeOf(end) != errs.ResourceExhausted {
			t.Errorf("3 MiB message on a 2 MiB server ended the stream with %v, want resource_exhausted", end)
		}
	})

	t.Run("unknown stream endpoint", func(t *testing.T) {
		want := cmp.Or(tr.UnknownEndpoint, errs.NotFound)
		rs, err := serverStream("NoSuchStream").OpenServer(ctx10(t), c, &Echo{})
		if err == nil {
			_, err = rs.Recv()
		}
		if errs.CodeOf(err) != want || !strings.Contains(err.Error(), "NoSuchStream") {
			t.Errorf("NoSuchStream = %v, want %v naming it", err, want)
		}
	})

	t.Run("client middleware once per stream", func(t *testing.T) {
		if conn.ClientWith == nil {
			t.Skip("the transport gives no client with middleware (Conn.ClientWith)")
		}
		type seen struct {
			kind transport.StreamKind
			err  error
		}
		calls := make(chan seen, 4)
		mw := func(next middleware.Handler) middleware.Handler {
			return func(ctx context.Context, req any) (any, error) {
				c, _ := transport.CallFromContext(ctx)
				c.Request.Set(mdKey, "from-mw")
				resp, err := next(ctx, req)
				calls <- seen{c.StreamKind, err}
				return resp, err
			}
		}
		mc := conn.ClientWith(mw)
		t.Cleanup(func() { _ = mc.Close() })
		rs, err := serverStream("FailAfter").OpenServer(ctx10(t), mc, &Echo{Num: 2, Text: "aborted"})
		if err != nil {
			t.Fatalf("open FailAfter: %v", err)
		}
		select {
		case s := <-calls:
			t.Fatalf("client middleware returned (%v) before the stream ended", s.err)
		default:
		}
		n := 0
		for _, err := range rs.All() {
			if err != nil {
				break
			}
			n++
		}
		select {
		case s := <-calls:
			if s.kind != transport.ServerStreaming || errs.CodeOf(s.err) != errs.Aborted {
				t.Errorf("client middleware saw kind %v ending with %v, want server_streaming ending aborted", s.kind, s.err)
			}
		case <-time.After(WaitBound):
			t.Fatal("client middleware never saw the stream end")
		}
		if n != 2 {
			t.Errorf("received %d messages, want 2", n)
		}
		// A clean end is a nil error, and metadata added by middleware
		// reaches the server.
		rs, err = count.OpenServer(ctx10(t), mc, &Echo{Num: 1})
		if err != nil {
			t.Fatalf("open Count: %v", err)
		}
		for _, err := range rs.All() {
			if err != nil {
				t.Fatalf("Count: %v", err)
			}
		}
		select {
		case s := <-calls:
			if s.err != nil {
				t.Errorf("client middleware saw a clean stream end as %v", s.err)
			}
		case <-time.After(WaitBound):
			t.Fatal("client middleware never saw the stream end")
		}
	})

	t.Run("1000 concurrent streams", func(t *testing.T) {
		const streams, each = 1000, 3
		ctx := ctx10(t)
		var wg sync.WaitGroup
		errc := make(chan error, streams)
		for i := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				bs, err := bidi("Chat").Open(ctx, c)
				if err != nil {
					errc <- fmt.Errorf("open %d: %w", i, err)
					return
				}
				defer bs.Close()
				for j := range int64(each) {
					if err := bs.Send(&Echo{Num: int64(i)*10 + j}); err != nil {
						errc <- fmt.Errorf("stream %d send %d: %w", i, j, err)
						return
					}
					m, err := bs.Recv()
					if err != nil || m.Num != 2*(int64(i)*10+j) {
						errc <- fmt.Errorf("stream %d recv %d = %+v, %v: crossed or lost", i, j, m, err)
						return
					}
				}
				if err := bs.CloseSend(); err != nil {
					errc <- fmt.Errorf("stream %d CloseSend: %w", i, err)
					return
				}
				if _, err := bs.Recv(); err != io.EOF {
					errc <- fmt.Errorf("stream %d end = %v, want io.EOF", i, err)
				}
			}()
		}
		wg.Wait()
		close(errc)
		n := 0
		for err := range errc {
			if n++; n <= 10 {
				t.Error(err)
			}
		}
		if n > 10 {
			t.Errorf("… and %d more", n-10)
		}
	})
}

// expectCtxEnd waits (generously) for a handler to report its context's end.
func expectCtxEnd(t *testing.T, ch <-chan error, why string) {
	t.Helper()
	select {
	case err := <-ch:
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("handler context ended with %v after %s", err, why)
		}
	case <-time.After(WaitBound):
		t.Errorf("handler context never ended after %s", why)
	}
}
