package nats_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
)

var (
	holdEP  = transport.StreamEndpoint[Item, Item]{Service: "wire", Name: "Hold", Kind: transport.ServerStreaming}
	countEP = transport.StreamEndpoint[Item, Item]{Service: "wire", Name: "Count", Kind: transport.ServerStreaming}
	chatEP  = transport.StreamEndpoint[Item, Item]{Service: "wire", Name: "Chat", Kind: transport.BidiStreaming}
	sinkEP  = transport.StreamEndpoint[Item, Item]{Service: "wire", Name: "Sink", Kind: transport.BidiStreaming}
)

// freezer is a TCP proxy to a NATS server whose connections can be frozen:
// it stops moving bytes either way while keeping the sockets open, as a
// hung process or a dead network path does. Neither end notices, until
// heartbeats do.
type freezer struct {
	ln     net.Listener
	target string
	frozen chan struct{} // closed to freeze
	once   sync.Once

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: strings.TrimPrefix(target, "nats://"), frozen: make(chan struct{})}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *freezer) url() string { return "nats://" + f.ln.Addr().String() }

func (f *freezer) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, c, up)
		f.mu.Unlock()
		f.wg.Add(2)
		go f.pipe(c, up)
		go f.pipe(up, c)
	}
}

// pipe copies src to dst until either closes, or stops reading once
// frozen.
func (f *freezer) pipe(dst, src net.Conn) {
	defer f.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		select {
		case <-f.frozen:
			return // the sockets stay open: close closes them
		default:
		}
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-f.frozen:
				return
			default:
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *freezer) freeze() { f.once.Do(func() { close(f.frozen) }) }

func (f *freezer) close() {
	f.freeze()
	_ = f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// dial connects to url without reconnecting, closed when the test ends.
func dial(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.NoReconnect(), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// serveUntil starts srv over nc; the test stops it (stop) when it wants.
func serveUntil(t *testing.T, nc *nats.Conn, srv *server.Server, opts ...fnats.ServerOption) (tr *fnats.Server, stop func(context.Context) error) {
	t.Helper()
	tr = fnats.NewServer(nc, opts...)
	if err := tr.Start(testCtx(t), srv); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var err error
	stop = func(ctx context.Context) error {
		once.Do(func() { err = tr.Stop(ctx) })
		return err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = stop(ctx)
	})
	return tr, stop
}

// heartbeat is the short interval of the crash tests, so that they end
// soon; nothing asserts how soon.
const heartbeat = 100 * time.Millisecond

// TestStreamCallerGone: when the caller's connection closes, or hangs, in
// the middle of a stream, the handler's context ends.
func TestStreamCallerGone(t *testing.T) {
	for _, how := range []string{"connection closed", "connection hung"} {
		t.Run(how, func(t *testing.T) {
			ns := startNATS(t, natsembed.Options{})
			s, p := streamServer(t)
			serveUntil(t, connect(t, ns), s, fnats.WithHeartbeat(heartbeat))
			url := ns.ClientURL()
			var fr *freezer
			if how == "connection hung" {
				fr = newFreezer(t, url)
				url = fr.url()
			}
			cnc := dial(t, url)
			c := fnats.NewClient(cnc, fnats.WithClientHeartbeat(heartbeat))
			rs, err := holdEP.OpenServer(testCtx(t), c, &Item{})
			if err != nil {
				t.Fatal(err)
			}
			if m, err := rs.Recv(); err != nil || m.Text != "held" {
				t.Fatalf("first message = %+v, %v", m, err)
			}
			await(t, p.held, "Hold running")
			if fr != nil {
				fr.freeze() // the server hears nothing more: heartbeats tell
			} else {
				cnc.Close() // the caller's inbox goes: the server's next frame gets no responders
			}
			if err := await(t, p.ctxErr, "the handler's context ending"); !errors.Is(err, context.Canceled) {
				t.Errorf("handler context ended with %v, want canceled", err)
			}
		})
	}
}

// TestStreamServerGone: when the server's connection closes, or hangs, in
// the middle of a stream, the caller's Recv returns Unavailable.
func TestStreamServerGone(t *testing.T) {
	for _, how := range []string{"connection closed", "connection hung"} {
		t.Run(how, func(t *testing.T) {
			ns := startNATS(t, natsembed.Options{})
			url := ns.ClientURL()
			var fr *freezer
			if how == "connection hung" {
				fr = newFreezer(t, url)
				url = fr.url()
			}
			snc := dial(t, url)
			s, p := streamServer(t)
			_, stop := serveUntil(t, snc, s, fnats.WithHeartbeat(heartbeat))
			c := fnats.NewClient(connect(t, ns), fnats.WithClientHeartbeat(heartbeat))
			rs, err := holdEP.OpenServer(testCtx(t), c, &Item{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rs.Recv(); err != nil {
				t.Fatalf("first message: %v", err)
			}
			await(t, p.held, "Hold running")
			if fr != nil {
				fr.freeze()
			} else {
				snc.Close()
			}
			_, err = rs.Recv()
			if errs.CodeOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "gone") {
				t.Errorf("Recv after the server's connection went = %v, want unavailable, the server gone", err)
			}
			// The server's side ends too, once it notices (its closed
			// connection, or Stop).
			if fr != nil {
				fr.close()
			}
			ctx, cancel := context.WithTimeout(testCtx(t), time.Second)
			defer cancel()
			_ = stop(ctx)
			await(t, p.ctxErr, "the handler's context ending")
		})
	}
}

// TestStreamMaxStreams: past WithMaxStreams an open is refused with
// ResourceExhausted; a slot frees when a stream ends.
func TestStreamMaxStreams(t *testing.T) {
	e := newEnv(t)
	s, p := streamServer(t)
	serve(t, e.nc, s, fnats.WithMaxStreams(2))
	ctx := testCtx(t)
	var open []*transport.TypedStream[Item, Item]
	for range 2 {
		rs, err := holdEP.OpenServer(ctx, e.client, &Item{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Recv(); err != nil {
			t.Fatal(err)
		}
		open = append(open, rs)
	}
	rs, err := holdEP.OpenServer(ctx, e.client, &Item{})
	if err == nil {
		_, err = rs.Recv()
	}
	if errs.CodeOf(err) != errs.ResourceExhausted || !strings.Contains(err.Error(), "serving 2 streams, its limit") {
		t.Errorf("third stream past WithMaxStreams(2) = %v, want resource_exhausted naming the limit", err)
	}
	_ = open[0].Close()
	await(t, p.ctxErr, "the closed stream's handler ending")
	// The slot frees once the stream is gone at the server.
	ferrytest.Eventually(t, "a stream opens after one closed", func() bool {
		rs, err := holdEP.OpenServer(ctx, e.client, &Item{})
		if err != nil {
			return false
		}
		_, err = rs.Recv()
		if err != nil {
			return false
		}
		open = append(open, rs)
		return true
	})
	for _, rs := range open {
		_ = rs.Close()
	}
}

// TestStreamStopDrains: Stop refuses new streams and waits for open ones;
// once its context ends it cancels them, and their callers get
// Unavailable.
func TestStreamStopDrains(t *testing.T) {
	t.Run("waits", func(t *testing.T) {
		e := newEnv(t)
		s, p := streamServer(t)
		_, stop := serveUntil(t, e.nc, s)
		ctx := testCtx(t)
		rs, err := holdEP.OpenServer(ctx, e.client, &Item{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Recv(); err != nil {
			t.Fatal(err)
		}
		await(t, p.held, "Hold running")
		stopped := make(chan error, 1)
		go func() { stopped <- stop(ctx) }()
		// New streams are refused while Stop waits.
		// New streams are refused while Stop waits: "service is
		// stopping", or no responders once the endpoints' subscription
		// has drained (a caller may try another instance either way).
		ferrytest.Eventually(t, "an open refused while stopping", func() bool {
			rs, err := countEP.OpenServer(ctx, e.client, &Item{Num: 1})
			if err == nil {
				_, err = rs.Recv()
			}
			return errs.CodeOf(err) == errs.Unavailable
		})
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned (%v) while a stream was open", err)
		default:
		}
		close(p.release) // Hold ends cleanly
		if _, err := rs.Recv(); err != io.EOF {
			t.Errorf("Recv after Hold ended = %v, want io.EOF", err)
		}
		if err := await(t, stopped, "Stop returning"); err != nil {
			t.Errorf("Stop = %v, want nil", err)
		}
	})

	t.Run("cancels at its deadline", func(t *testing.T) {
		e := newEnv(t)
		s, p := streamServer(t)
		_, stop := serveUntil(t, e.nc, s)
		rs, err := holdEP.OpenServer(testCtx(t), e.client, &Item{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Recv(); err != nil {
			t.Fatal(err)
		}
		await(t, p.held, "Hold running")
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // Stop gives up waiting at once
		if err := stop(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Stop with an ended context = %v, want its error", err)
		}
		if err := await(t, p.ctxErr, "the handler's context ending"); !errors.Is(err, context.Canceled) {
			t.Errorf("handler context ended with %v, want canceled", err)
		}
		if _, err := rs.Recv(); errs.CodeOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "stopping") {
			t.Errorf("Recv after Stop = %v, want unavailable, service is stopping", err)
		}
	})
}

// fakeServer answers opens on "fake.S" with the frames script returns,
// published by hand; what the client sends back arrives on got.
func fakeServer(t *testing.T, nc *nats.Conn, script func(open *nats.Msg) []*nats.Msg) (got chan *nats.Msg) {
	t.Helper()
	got = make(chan *nats.Msg, 16)
	const inbox = "fake._stream.X.1"
	back, err := nc.Subscribe(inbox, func(m *nats.Msg) { report(got, m) })
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nc.Subscribe("fake.S", func(open *nats.Msg) {
		for _, m := range script(open) {
			m.Subject = open.Reply
			if m.Reply == "" {
				m.Reply = inbox
			}
			if m.Reply == "-" {
				m.Reply = ""
			}
			_ = nc.PublishMsg(m)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe(); _ = back.Unsubscribe() })
	return got
}

// frames builds a script of frames, each given as header pairs and a body.
func frames(fs ...[]string) []*nats.Msg {
	out := make([]*nats.Msg, 0, len(fs))
	for _, f := range fs {
		m := &nats.Msg{Header: nats.Header{}}
		for i := 0; i+1 < len(f); i += 2 {
			switch f[i] {
			case "body":
				m.Data = []byte(f[i+1])
			case "reply":
				m.Reply = f[i+1]
			default:
				m.Header.Add(f[i], f[i+1])
			}
		}
		out = append(out, m)
	}
	return out
}

// TestStreamClientMalformedFrames: a server frame that breaks the protocol
// ends the client's stream with a clear error, and the client cancels the
// stream at the server; never a panic or a hang.
func TestStreamClientMalformedFrames(t *testing.T) {
	accept := []string{"Ferry-Frame", "accept", "Ferry-Seq", "1"}
	tests := []struct {
		name   string
		opts   []fnats.ClientOption
		script [][]string
		code   errs.Code
		want   string
		cancel bool // the client cancels at the server
		// recvFirst: the client finds the fault when it decodes, in
		// Recv; otherwise as the frame arrives, whether or not Recv runs.
		recvFirst bool
	}{
		{"unknown type", nil, [][]string{accept, {"Ferry-Frame", "bogus", "Ferry-Seq", "2"}}, errs.Internal, `unknown frame type "bogus"`, true, false},
		{"lost frames", nil, [][]string{accept, {"Ferry-Frame", "ping", "Ferry-Seq", "5"}}, errs.Unavailable, "frame 5 arrived where 2 was due", true, false},
		{"beyond credit", []fnats.ClientOption{fnats.WithClientStreamWindow(1)}, [][]string{accept,
			{"Ferry-Frame", "msg", "Ferry-Seq", "2", "body", "{}"}, {"Ferry-Frame", "msg", "Ferry-Seq", "3", "body", "{}"}},
			errs.Internal, "beyond the credit granted (a window of 1 messages)", true, false},
		{"message too large", []fnats.ClientOption{fnats.WithMaxStreamMessageBytes(100)}, [][]string{accept,
			{"Ferry-Frame", "chunk", "Ferry-Seq", "2", "Ferry-Size", "5000", "body", "{"}},
			errs.ResourceExhausted, "message of 5000 bytes exceeds the limit of 100 bytes", true, false},
		{"message before accept", nil, [][]string{{"Ferry-Frame", "msg", "Ferry-Seq", "1", "body", "{}"}}, errs.Internal, "msg frame before the accept", false, false},
		{"accept without reply subject", nil, [][]string{append(accept, "reply", "-")}, errs.Internal, "accept frame without a reply subject", false, false},
		{"error frame without error", nil, [][]string{accept, {"Ferry-Frame", "error", "Ferry-Seq", "2"}}, errs.Internal, "error frame without error headers", true, false},
		{"a caller's frame", nil, [][]string{accept, {"Ferry-Frame", "cancel", "Ferry-Seq", "2"}}, errs.Internal, "cancel frame, which servers do not send", true, false},
		{"plain reply", nil, [][]string{{"body", `{"num":1}`}}, errs.Internal, "answered the open with a plain reply", false, false},
		{"micro error reply", nil, [][]string{{"Nats-Service-Error", "down for now", "Nats-Service-Error-Code", "503"}}, errs.Unavailable, "down for now", false, false},
		{"not json", nil, [][]string{accept, {"Ferry-Frame", "msg", "Ferry-Seq", "2", "body", "{"}}, errs.Internal, "malformed json message", true, true},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fakeServer(t, e.nc, func(*nats.Msg) []*nats.Msg { return frames(tt.script...) })
			c := fnats.NewClient(e.nc, tt.opts...)
			defer c.Close()
			st := transport.StreamEndpoint[Item, Item]{Service: "fake", Name: "S", Kind: transport.ServerStreaming}
			// The fault may surface at once (OpenServer's CloseSend sees
			// the stream ended) or at Recv.
			rs, end := st.OpenServer(testCtx(t), c, &Item{})
			awaitCancel := func() {
				t.Helper()
				var m *nats.Msg
				for m == nil || m.Header.Get("Ferry-Frame") == "credit" {
					m = await(t, got, "the client's cancel")
				}
				if m.Header.Get("Ferry-Frame") != "cancel" {
					t.Errorf("client sent %v after the bad frame, want a cancel", m.Header)
				}
			}
			if tt.cancel && !tt.recvFirst {
				awaitCancel()
			}
			for end == nil {
				_, end = rs.Recv()
			}
			if errs.CodeOf(end) != tt.code || !strings.Contains(end.Error(), tt.want) {
				t.Errorf("stream ended with %v, want %s saying %q", end, tt.code, tt.want)
			}
			if tt.cancel && tt.recvFirst {
				awaitCancel()
			}
		})
	}
}

// TestStreamClientClose: closing the Client ends its open streams (the
// server sees them canceled); it goes on opening new ones.
func TestStreamClientClose(t *testing.T) {
	e := newEnv(t)
	s, p := streamServer(t)
	serve(t, e.nc, s)
	c := fnats.NewClient(e.nc)
	rs, err := holdEP.OpenServer(testCtx(t), c, &Item{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Recv(); err != nil {
		t.Fatal(err)
	}
	await(t, p.held, "Hold running")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Recv(); errs.CodeOf(err) != errs.Canceled {
		t.Errorf("Recv after Client.Close = %v, want canceled", err)
	}
	await(t, p.ctxErr, "the handler's context ending")
	rs, err = countEP.OpenServer(testCtx(t), c, &Item{Num: 3})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range rs.All() {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Errorf("Count(3) after Close delivered %d", n)
	}
}

// TestStreamSendAfterClose: Send after CloseSend or Close is
// ErrStreamClosed; the server's early end makes Send return, not hang.
func TestStreamSendAfterClose(t *testing.T) {
	e := newEnv(t)
	s, _ := streamServer(t)
	serve(t, e.nc, s)
	bs, err := chatEP.Open(testCtx(t), e.client)
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := bs.Send(&Item{}); !errors.Is(err, transport.ErrStreamClosed) && errs.CodeOf(err) != errs.FailedPrecondition {
		t.Errorf("Send after CloseSend = %v, want ErrStreamClosed", err)
	}
	if _, err := bs.Recv(); err != io.EOF {
		t.Errorf("Recv after CloseSend = %v, want io.EOF", err)
	}
	bs, err = chatEP.Open(testCtx(t), e.client)
	if err != nil {
		t.Fatal(err)
	}
	_ = bs.Close()
	if err := bs.Send(&Item{}); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Errorf("Send after Close = %v, want ErrStreamClosed", err)
	}
	if _, err := bs.Recv(); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Errorf("Recv after Close = %v, want ErrStreamClosed", err)
	}
}

// TestStreamManyOnOneSubscription: a client's streams share one
// subscription, whatever their number.
func TestStreamManyOnOneSubscription(t *testing.T) {
	e := newEnv(t)
	s, _ := streamServer(t)
	serve(t, e.nc, s)
	cnc := connect(t, e.ns)
	c := fnats.NewClient(cnc)
	ctx := testCtx(t)
	var streams []*transport.TypedStream[Item, Item]
	for i := range 50 {
		bs, err := chatEP.Open(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := bs.Send(&Item{Num: int64(i)}); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, bs)
	}
	if n := cnc.NumSubscriptions(); n != 1 {
		t.Errorf("50 open streams hold %d subscriptions, want 1", n)
	}
	for i, bs := range streams {
		if m, err := bs.Recv(); err != nil || m.Num != int64(i) {
			t.Errorf("stream %d: %+v, %v", i, m, err)
		}
		_ = bs.Close()
	}
}

// TestStreamMetadataAndDeadline: request metadata and the deadline reach
// the handler; protocol headers in metadata are dropped, not sent.
func TestStreamMetadataAndDeadline(t *testing.T) {
	e := newEnv(t)
	srv := server.New("meta", server.WithLogger(discardLogger()))
	type seen struct {
		user, credit string
		deadline     bool
	}
	ch := make(chan seen, 1)
	server.HandleServerStream(srv, "Look", func(ctx context.Context, _ *Item, out server.Sender[Item]) error {
		c, _ := transport.CallFromContext(ctx)
		_, ok := ctx.Deadline()
		ch <- seen{c.Request.Get("x-user"), c.Request.Get("ferry-credit"), ok && !c.Deadline.IsZero()}
		return out.Send(&Item{})
	})
	serve(t, e.nc, srv)
	ctx, cancel := context.WithTimeout(testCtx(t), time.Minute)
	defer cancel()
	ctx = transport.WithMetadata(ctx, transport.Pairs("x-user", "ann", "ferry-credit", "999999"))
	ep := transport.StreamEndpoint[Item, Item]{Service: "meta", Name: "Look", Kind: transport.ServerStreaming}
	rs, err := ep.OpenServer(ctx, e.client, &Item{})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range rs.All() {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := <-ch
	if s.user != "ann" || s.credit != strconv.Itoa(fnats.DefaultStreamWindow) || !s.deadline {
		t.Errorf("handler saw x-user %q, Ferry-Credit %q, deadline %v; want ann, the client's window %d, a deadline", s.user, s.credit, s.deadline, fnats.DefaultStreamWindow)
	}
}

// TestStreamsDoNotHoldWorkers: a stream's handler runs on a goroutine of
// its own: with one worker and three streams held open, unary calls are
// served.
func TestStreamsDoNotHoldWorkers(t *testing.T) {
	e := newEnv(t)
	s, p := streamServer(t)
	serve(t, e.nc, s, fnats.WithMaxConcurrent(1))
	ctx := testCtx(t)
	for range 3 {
		rs, err := holdEP.OpenServer(ctx, e.client, &Item{})
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		if _, err := rs.Recv(); err != nil {
			t.Fatal(err)
		}
		await(t, p.held, "Hold running")
	}
	got, err := transport.Invoke[HelloRequest, HelloReply](ctx, e.client, "wire", "Hello", &HelloRequest{Name: "w"})
	if err != nil || got.Message != "Hello, w" {
		t.Errorf("unary call beside three open streams on one worker = %+v, %v", got, err)
	}
}

// TestStreamClientSendBlocks: a server that reads nothing bounds its
// caller: Send past the server's window waits until the stream ends.
func TestStreamClientSendBlocks(t *testing.T) {
	e := newEnv(t)
	s, p := streamServer(t)
	serve(t, e.nc, s, fnats.WithStreamWindow(2))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	bs, err := sinkEP.Open(ctx, e.client)
	if err != nil {
		t.Fatal(err)
	}
	await(t, p.held, "Sink running")
	for i := range 2 {
		if err := bs.Send(&Item{Num: int64(i)}); err != nil {
			t.Fatalf("Send %d within the window: %v", i, err)
		}
	}
	// The third Send has no credit: it returns only when the stream ends.
	// The timer only ends the wait; a Send that did not wait would return
	// nil before it fires, whatever the machine's speed.
	stop := time.AfterFunc(200*time.Millisecond, cancel)
	defer stop.Stop()
	if err := bs.Send(&Item{Num: 2}); errs.CodeOf(err) != errs.Canceled {
		t.Errorf("Send past the server's window of 2 = %v, want canceled (it waited for credit until the context ended)", err)
	}
	if err := await(t, p.ctxErr, "Sink's context ending"); !errors.Is(err, context.Canceled) {
		t.Errorf("Sink's context ended with %v, want canceled (no protocol error)", err)
	}
}

// TestStreamBadTrailer: a trailer that cannot go as NATS headers ends the
// stream with an error the caller hears, not silence.
func TestStreamBadTrailer(t *testing.T) {
	e := newEnv(t)
	srv := server.New("bad", server.WithLogger(discardLogger()))
	server.HandleServerStream(srv, "Trail", func(ctx context.Context, r *Item, out server.Sender[Item]) error {
		c, _ := transport.CallFromContext(ctx)
		if r.Text == "reply" {
			c.Reply.Set("bad key", "x")
		} else {
			c.SetTrailer("bad key", "x")
		}
		return nil
	})
	serve(t, e.nc, srv)
	ep := transport.StreamEndpoint[Item, Item]{Service: "bad", Name: "Trail", Kind: transport.ServerStreaming}
	for _, which := range []string{"trailer", "reply"} {
		rs, err := ep.OpenServer(testCtx(t), e.client, &Item{Text: which})
		if err == nil {
			_, err = rs.Recv()
		}
		if errs.CodeOf(err) != errs.Internal || !strings.Contains(err.Error(), "not a valid NATS header name") {
			t.Errorf("stream with a bad %s key ended with %v, want internal naming the header", which, err)
		}
	}
}
