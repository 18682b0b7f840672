package ferrytest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Transport describes one transport to the conformance suite. A transport
// plug-in proves itself by passing its Transport to Conformance.
type Transport struct {
	// Name names the transport in subtest names, e.g. "http".
	Name string
	// Serve serves s over the transport on a loopback address for the rest
	// of the test (stopping it at cleanup), enforcing lim, and returns a
	// connection to it.
	Serve func(t testing.TB, s *server.Server, lim Limits) Conn
	// New, if set, returns an unstarted transport for the lifecycle cases
	// (skipped without it).
	New func(t testing.TB) Lifecycle
	// UnknownEndpoint is the code a call to an endpoint the service does
	// not have fails with, each protocol's standard: NotFound over HTTP
	// (404) and NATS, Unimplemented over gRPC. Zero means NotFound.
	UnknownEndpoint errs.Code
}

// Limits are the server limits the suite needs configured.
type Limits struct {
	// MaxRequestBytes is the largest request payload the server accepts;
	// larger ones must fail with ResourceExhausted.
	MaxRequestBytes int
	// DefaultTimeout is the deadline the server gives a call that carries
	// none; MaxTimeout the longest deadline it lets a caller ask for.
	DefaultTimeout, MaxTimeout time.Duration
}

// Conn is the client side of a served transport.
type Conn struct {
	// Client invokes endpoints with typed values.
	Client transport.Client
	// SendRaw sends body as-is as the request payload of service/endpoint,
	// labelled with contentType where the transport carries one, and
	// returns the call's error (nil on success), decoded the way the
	// transport's client decodes errors.
	SendRaw func(ctx context.Context, service, endpoint, contentType string, body []byte) error
	// ClientWith, if set, returns another client of the same server whose
	// calls run through mws (the transport's WithClientMiddleware), for
	// the client middleware cases; they are skipped without it.
	ClientWith func(mws ...middleware.Middleware) transport.Client
}

// Echo is the suite's request and reply type.
type Echo struct {
	Text   string            `json:"text"`
	Num    int64             `json:"num"`
	Tags   []string          `json:"tags,omitempty"`
	Attrs  map[string]string `json:"attrs,omitempty"`
	Nested *EchoNested       `json:"nested,omitempty"`
}

// EchoNested is a nested message of Echo.
type EchoNested struct {
	Flag  bool    `json:"flag"`
	Ratio float64 `json:"ratio"`
}

// ErrorRequest asks the Fail endpoint for an error with this code.
type ErrorRequest struct {
	Code     string            `json:"code"`
	Message  string            `json:"message"`
	Field    string            `json:"field"`
	Reason   string            `json:"reason,omitempty"`
	Domain   string            `json:"domain,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Empty is an empty message.
type Empty struct{}

// suite is the service the conformance suite serves.
type suite struct {
	ctxErr  chan error // handler context errors from Block
	started chan struct{}
	seenMD  chan map[string]string
}

const (
	suiteService = "conformance"
	mdKey        = "X-Ferry-Test"
	replyMDKey   = "X-Ferry-Reply"
)

func newSuiteServer(t testing.TB) (*server.Server, *suite) {
	st := &suite{ctxErr: make(chan error, 16), started: make(chan struct{}, 16), seenMD: make(chan map[string]string, 16)}
	s := server.New(suiteService, server.WithVersion("1.0.0"), server.WithLogger(quietLogger()))
	server.Handle(s, "Echo", func(_ context.Context, r *Echo) (*Echo, error) { return r, nil })
	server.Handle(s, "EchoProto", func(_ context.Context, r *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return wrapperspb.String("echo: " + r.GetValue()), nil
	})
	server.Handle(s, "Meta", func(ctx context.Context, r *Empty) (*Empty, error) {
		c, ok := transport.CallFromContext(ctx)
		if !ok {
			return nil, errs.New(errs.Internal, "no call info in context")
		}
		st.seenMD <- map[string]string{
			"value":    c.Request.Get(mdKey),
			"service":  c.Service,
			"endpoint": c.Endpoint,
			"kind":     c.Kind.String(),
			"client":   fmt.Sprint(c.Client),
		}
		c.Reply.Set(replyMDKey, "pong:"+c.Request.Get(mdKey))
		c.SetTrailer(trailerKey, "trailer:"+c.Request.Get(mdKey))
		return r, nil
	})
	server.Handle(s, "Fail", func(_ context.Context, r *ErrorRequest) (*Empty, error) {
		code, ok := errs.ParseCode(r.Code)
		if !ok {
			return nil, errors.New("a plain error with a secret inside")
		}
		e := errs.New(code, r.Message)
		if r.Field != "" {
			e = e.WithDetails(errs.Detail{Field: r.Field, Reason: "is wrong"})
		}
		if r.Reason != "" {
			e = e.WithReason(r.Reason)
		}
		if r.Domain != "" {
			e = e.WithDomain(r.Domain)
		}
		for k, v := range r.Metadata {
			e = e.WithMetadata(k, v)
		}
		return nil, e
	})
	server.Handle(s, "Block", func(ctx context.Context, r *Empty) (*Empty, error) {
		st.started <- struct{}{}
		<-ctx.Done()
		st.ctxErr <- ctx.Err()
		return nil, ctx.Err()
	})
	// Deadline answers how many milliseconds its context has left, -1 for
	// no deadline.
	server.Handle(s, "Deadline", func(ctx context.Context, _ *Empty) (*Echo, error) {
		d, ok := ctx.Deadline()
		if !ok {
			return &Echo{Num: -1}, nil
		}
		return &Echo{Num: time.Until(d).Milliseconds()}, nil
	})
	server.Handle(s, "Panic", func(context.Context, *Empty) (*Empty, error) { panic("secret panic value") })
	server.Handle(s, "Slow", func(ctx context.Context, r *Echo) (*Echo, error) {
		select {
		case <-time.After(20 * time.Millisecond):
			return r, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	if err := s.Err(); err != nil {
		t.Fatalf("conformance server: %v", err)
	}
	return s, st
}

// Conformance runs the behaviours every transport must show — round trips
// of plain and protobuf messages, metadata both ways, every error code,
// deadline and cancellation, oversized, malformed and mislabelled payloads,
// unknown endpoints (tr.UnknownEndpoint), handler panics and concurrent
// calls — against tr.
func Conformance(t *testing.T, tr Transport) {
	t.Helper()
	lim := Limits{MaxRequestBytes: 64 << 10, DefaultTimeout: 40 * time.Second, MaxTimeout: 90 * time.Second}
	s, st := newSuiteServer(t)
	conn := tr.Serve(t, s, lim)
	c := conn.Client

	call := func(t *testing.T, endpoint string, req, resp any) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.Invoke(ctx, suiteService, endpoint, req, resp)
	}

	t.Run("round trip", func(t *testing.T) {
		in := &Echo{Text: "héllo ✓", Num: -42, Tags: []string{"a", "b"}, Attrs: map[string]string{"k": "v"},
			Nested: &EchoNested{Flag: true, Ratio: 0.25}}
		var out Echo
		if err := call(t, "Echo", in, &out); err != nil {
			t.Fatalf("Echo: %v", err)
		}
		if out.Text != in.Text || out.Num != in.Num || strings.Join(out.Tags, ",") != "a,b" ||
			out.Attrs["k"] != "v" || out.Nested == nil || *out.Nested != *in.Nested {
			t.Errorf("Echo = %+v, want %+v", out, in)
		}
	})

	t.Run("lifecycle", func(t *testing.T) {
		if tr.New == nil {
			t.Skip("the transport gives no unstarted instance (Transport.New)")
		}
		confLifecycle(t, tr.New)
	})

	t.Run("client middleware", func(t *testing.T) {
		if conn.ClientWith == nil {
			t.Skip("the transport gives no client with middleware (Conn.ClientWith)")
		}
		confClientMiddleware(t, tr.Name, conn.ClientWith)
	})

	t.Run("round trip protobuf message", func(t *testing.T) {
		var out wrapperspb.StringValue
		if err := call(t, "EchoProto", wrapperspb.String("hi"), &out); err != nil {
			t.Fatalf("EchoProto: %v", err)
		}
		if out.GetValue() != "echo: hi" {
			t.Errorf("EchoProto = %q, want %q", out.GetValue(), "echo: hi")
		}
	})

	t.Run("metadata both ways", func(t *testing.T) {
		var reply transport.Metadata
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = transport.WithMetadata(ctx, transport.Pairs(mdKey, "ping"))
		ctx = transport.CaptureReply(ctx, &reply)
		if err := c.Invoke(ctx, suiteService, "Meta", &Empty{}, &Empty{}); err != nil {
			t.Fatalf("Meta: %v", err)
		}
		seen := <-st.seenMD
		want := map[string]string{"value": "ping", "service": suiteService, "endpoint": "Meta", "kind": tr.Name, "client": "false"}
		for k, v := range want {
			if seen[k] != v {
				t.Errorf("server saw %s = %q, want %q", k, seen[k], v)
			}
		}
		if got := reply.Get(replyMDKey); got != "pong:ping" {
			t.Errorf("reply metadata %s = %q, want pong:ping", replyMDKey, got)
		}
		// A trailer reaches the caller with the reply metadata (gRPC and
		// HTTP trailers; NATS, which has none, as reply headers).
		if got := reply.Get(trailerKey); got != "trailer:ping" {
			t.Errorf("reply metadata %s = %q, want the handler's trailer trailer:ping", trailerKey, got)
		}
	})

	t.Run("every error code", func(t *testing.T) {
		for _, code := range errs.Codes() {
			err := call(t, "Fail", &ErrorRequest{Code: code.String(), Message: "msg for " + code.String(), Field: "f." + code.String()}, &Empty{})
			var e *errs.Error
			if !errors.As(err, &e) {
				t.Errorf("Fail(%v) error = %v (%T), want *errs.Error", code, err, err)
				continue
			}
			if e.Code() != code || e.Message() != "msg for "+code.String() {
				t.Errorf("Fail(%v) = %v, %q; want %v, %q", code, e.Code(), e.Message(), code, "msg for "+code.String())
			}
			if d := e.Details(); len(d) != 1 || d[0].Field != "f."+code.String() || d[0].Reason != "is wrong" {
				t.Errorf("Fail(%v) details = %+v, want one for field f.%v", code, d, code)
			}
		}
	})

	t.Run("error reason, domain and metadata", func(t *testing.T) {
		outOfStock := errs.New(errs.FailedPrecondition, "").WithReason("OUT_OF_STOCK")
		err := call(t, "Fail", &ErrorRequest{Code: "failed_precondition", Message: "only 0 left", Field: "sku",
			Reason: "OUT_OF_STOCK", Domain: "shop.example.com", Metadata: map[string]string{"sku": "A-17", "available": "0"}}, &Empty{})
		e := errs.FromError(err)
		if e.Code() != errs.FailedPrecondition || e.Message() != "only 0 left" || e.Reason() != "OUT_OF_STOCK" || e.Domain() != "shop.example.com" ||
			e.Metadata()["sku"] != "A-17" || e.Metadata()["available"] != "0" || len(errs.DetailsOf(err)) != 1 {
			t.Errorf("Fail = code %v message %q reason %q domain %q metadata %v details %v; want them all as sent",
				e.Code(), e.Message(), e.Reason(), e.Domain(), e.Metadata(), e.Details())
		}
		if !errors.Is(err, outOfStock) || errs.ReasonOf(err) != "OUT_OF_STOCK" {
			t.Errorf("errors.Is(err, a sentinel with the same code and reason) = false for %v", err)
		}
		if errors.Is(err, outOfStock.WithReason("OTHER")) || errors.Is(err, errs.New(errs.NotFound, "")) {
			t.Errorf("errors.Is matched another reason or code for %v", err)
		}
	})

	t.Run("unknown error hides internals", func(t *testing.T) {
		err := call(t, "Fail", &ErrorRequest{Code: "bogus"}, &Empty{})
		if errs.CodeOf(err) != errs.Unknown || strings.Contains(err.Error(), "secret") {
			t.Errorf("plain handler error = %v, want unknown without internals", err)
		}
	})

	t.Run("deadline exceeded", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := c.Invoke(ctx, suiteService, "Block", &Empty{}, &Empty{})
		if errs.CodeOf(err) != errs.DeadlineExceeded {
			t.Errorf("Block with 300ms deadline = %v, want deadline_exceeded", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Block returned after %v, want about 300ms", d)
		}
		select {
		case <-st.started:
		default:
			t.Error("handler never started")
		}
		select {
		case herr := <-st.ctxErr:
			if !errors.Is(herr, context.DeadlineExceeded) && !errors.Is(herr, context.Canceled) {
				t.Errorf("handler ctx.Err() = %v, want deadline exceeded or canceled", herr)
			}
		case <-time.After(5 * time.Second):
			t.Error("handler context was not cancelled at the deadline")
		}
	})

	t.Run("deadline bounded by the server", func(t *testing.T) {
		// A caller asking for a century gets the server's maximum.
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().AddDate(100, 0, 0))
		defer cancel()
		var out Echo
		if err := c.Invoke(ctx, suiteService, "Deadline", &Empty{}, &out); err != nil {
			t.Fatalf("Deadline with a 100-year deadline = %v, want success", err)
		}
		if out.Num <= 0 || out.Num > lim.MaxTimeout.Milliseconds() {
			t.Errorf("handler deadline in %dms for a 100-year caller deadline, want at most the server's maximum %v", out.Num, lim.MaxTimeout)
		}
		// A caller without a deadline runs under the server's default (or
		// its client's, when the client sets one).
		out = Echo{}
		if err := c.Invoke(context.Background(), suiteService, "Deadline", &Empty{}, &out); err != nil {
			t.Fatalf("Deadline without a deadline = %v, want success", err)
		}
		if out.Num <= 0 || out.Num > lim.MaxTimeout.Milliseconds() {
			t.Errorf("handler deadline in %dms for a caller without one, want a deadline (the server's default %v)", out.Num, lim.DefaultTimeout)
		}
	})

	t.Run("cancellation", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- c.Invoke(ctx, suiteService, "Block", &Empty{}, &Empty{}) }()
		select {
		case <-st.started:
		case <-time.After(5 * time.Second):
			t.Fatal("handler never started")
		}
		cancel()
		select {
		case err := <-done:
			if errs.CodeOf(err) != errs.Canceled {
				t.Errorf("cancelled call = %v, want canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("cancelled call did not return")
		}
		wait := 5 * time.Second // NATS: the handler learns of it at its 2s deadline
		select {
		case <-st.ctxErr:
		case <-time.After(wait):
			t.Error("handler context never ended after the caller cancelled")
		}
	})

	t.Run("oversized payload", func(t *testing.T) {
		big := &Echo{Text: strings.Repeat("x", 2*lim.MaxRequestBytes)}
		err := call(t, "Echo", big, &Echo{})
		if errs.CodeOf(err) != errs.ResourceExhausted {
			t.Errorf("Echo(%d bytes) = %v, want resource_exhausted", len(big.Text), err)
		}
		// The server is still fine afterwards.
		if err := call(t, "Echo", &Echo{Text: "small"}, &Echo{}); err != nil {
			t.Errorf("Echo after oversized = %v", err)
		}
	})

	t.Run("malformed payload", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, tc := range []struct{ ct, body string }{
			{"application/json", `{"text": "unterminated`},
			{"application/json", `{"num": "not a number"}`},
			{"application/protobuf", "\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"},
		} {
			err := conn.SendRaw(ctx, suiteService, "Echo", tc.ct, []byte(tc.body))
			if errs.CodeOf(err) != errs.InvalidArgument {
				t.Errorf("SendRaw(%s, %q) = %v, want invalid_argument", tc.ct, tc.body, err)
			} else if e := errs.FromError(err); e.Message() == "" {
				t.Errorf("SendRaw(%s, %q) error has no message", tc.ct, tc.body)
			}
		}
	})

	t.Run("bad JSON values", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		huge := `{"num": ` + strings.Repeat("9", 60<<10) + `}`
		for _, tc := range []struct{ name, body string }{
			{"invalid UTF-8", "{\"text\": \"bad \xff byte\"}"},
			{"a 60 KB number", huge},
			{"a 60 KB string for a number", `{"num": "` + strings.Repeat("x", 60<<10) + `"}`},
		} {
			err := conn.SendRaw(ctx, suiteService, "Echo", "application/json", []byte(tc.body))
			if errs.CodeOf(err) != errs.InvalidArgument {
				t.Errorf("%s: %v, want invalid_argument", tc.name, err)
				continue
			}
			// The error names the problem without echoing the value.
			if msg := errs.FromError(err).Message(); len(msg) > 1024 {
				t.Errorf("%s: error message of %d bytes, want the bad value quoted briefly: %.200s…", tc.name, len(msg), msg)
			}
		}
	})

	t.Run("wrong content type", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := conn.SendRaw(ctx, suiteService, "Echo", "text/xml", []byte("<echo/>"))
		if errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("SendRaw(text/xml) = %v, want invalid_argument", err)
		}
	})

	t.Run("unknown endpoint", func(t *testing.T) {
		want := cmp.Or(tr.UnknownEndpoint, errs.NotFound)
		err := call(t, "NoSuchEndpoint", &Empty{}, &Empty{})
		if errs.CodeOf(err) != want || !strings.Contains(err.Error(), "NoSuchEndpoint") {
			t.Errorf("NoSuchEndpoint = %v, want %v naming it", err, want)
		}
	})

	t.Run("handler panic", func(t *testing.T) {
		err := call(t, "Panic", &Empty{}, &Empty{})
		if errs.CodeOf(err) != errs.Internal || strings.Contains(err.Error(), "secret") {
			t.Errorf("Panic = %v, want internal without the panic value", err)
		}
		if err := call(t, "Echo", &Echo{Text: "still alive"}, &Echo{}); err != nil {
			t.Errorf("Echo after panic = %v", err)
		}
	})

	t.Run("concurrent calls", func(t *testing.T) {
		const workers, each = 32, 8
		var wg sync.WaitGroup
		errc := make(chan error, workers*each)
		start := time.Now()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					in := &Echo{Text: fmt.Sprintf("w%d-%d", w, i), Num: int64(w*1000 + i)}
					var out Echo
					if err := call(t, "Slow", in, &out); err != nil {
						errc <- err
						continue
					}
					if out.Text != in.Text || out.Num != in.Num {
						errc <- fmt.Errorf("Slow(%v) = %v: replies crossed", in, out)
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		// 256 calls of 20ms each take 5s one at a time; concurrent handling
		// finishes far sooner. The bound is loose for slow machines.
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("%d concurrent calls took %v: handlers are not running concurrently", workers*each, d)
		}
	})

	t.Run("large payload under the limit", func(t *testing.T) {
		in := &Echo{Text: string(bytes.Repeat([]byte("y"), lim.MaxRequestBytes/2))}
		var out Echo
		if err := call(t, "Echo", in, &out); err != nil || out.Text != in.Text {
			t.Errorf("Echo(%d bytes) = %d bytes, %v", len(in.Text), len(out.Text), err)
		}
	})
}

// confClientMiddleware: client middleware sees the call's kind, service
// and endpoint before anything is sent; a reply it returns without calling
// on is what the caller gets; an error it returns comes back as an
// *errs.Error — a plain one as Unknown with a generic message, kept as the
// cause for errors.Is, as a server does — the same on every transport.
func confClientMiddleware(t *testing.T, kind string, with func(mws ...middleware.Middleware) transport.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var seen transport.Call
	observe := func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			if c, ok := transport.CallFromContext(ctx); ok {
				seen = *c
			}
			return next(ctx, req)
		}
	}
	var out Echo
	if err := with(observe).Invoke(ctx, suiteService, "Echo", &Echo{Text: "hi"}, &out); err != nil || out.Text != "hi" {
		t.Fatalf("Echo through observing middleware = %+v, %v", out, err)
	}
	if seen.Kind.String() != kind || !seen.Client || seen.Service != suiteService || seen.Endpoint != "Echo" {
		t.Errorf("middleware saw kind %q, client %v, %s/%s; want %q, true, %s/Echo", seen.Kind, seen.Client, seen.Service, seen.Endpoint, kind, suiteService)
	}
	if seen.Peer == "" || seen.Deadline.IsZero() || seen.Request == nil {
		t.Errorf("middleware saw peer %q, deadline %v, request metadata %v before the call; want the peer, the caller's deadline and writable metadata", seen.Peer, seen.Deadline, seen.Request)
	}
	checkClientWire(t, kind, seen)

	cached := func(middleware.Handler) middleware.Handler {
		return func(context.Context, any) (any, error) { return &Echo{Text: "from the cache", Num: 7}, nil }
	}
	out = Echo{}
	if err := with(cached).Invoke(ctx, suiteService, "Echo", &Echo{Text: "hi"}, &out); err != nil || out.Text != "from the cache" || out.Num != 7 {
		t.Errorf("Echo through a middleware that answers itself = %+v, %v; want its reply", out, err)
	}
	wrongType := func(middleware.Handler) middleware.Handler {
		return func(context.Context, any) (any, error) { return &EchoNested{}, nil }
	}
	if err := with(wrongType).Invoke(ctx, suiteService, "Echo", &Echo{}, &out); errs.CodeOf(err) != errs.Internal {
		t.Errorf("a middleware reply of the wrong type = %v, want internal", err)
	}

	spent := errors.New("local quota spent")
	failing := func(middleware.Handler) middleware.Handler {
		return func(context.Context, any) (any, error) { return nil, spent }
	}
	err := with(failing).Invoke(ctx, suiteService, "Echo", &Echo{}, &out)
	var e *errs.Error
	if ok := errors.As(err, &e); !ok || error(e) != err || e.Code() != errs.Unknown || !errors.Is(err, spent) {
		t.Errorf("a plain middleware error = %#v, want an *errs.Error, code unknown, with the error as its cause", err)
	}
	limited := errs.New(errs.ResourceExhausted, "quota spent").WithDetails(errs.Detail{Field: "quota", Reason: "spent"})
	failing = func(middleware.Handler) middleware.Handler {
		return func(context.Context, any) (any, error) { return nil, limited }
	}
	err = with(failing).Invoke(ctx, suiteService, "Echo", &Echo{}, &out)
	if e := errs.FromError(err); !errors.Is(err, limited) || e.Message() != "quota spent" || len(e.Details()) != 1 {
		t.Errorf("an *errs.Error from middleware = %v, want it as is (code, message, details)", err)
	}
	// Every error a client returns is marked with the call it came from,
	// for the error boundary of a server that made the call.
	if from := errs.ReceivedFrom(err); from != suiteService+"/Echo" {
		t.Errorf("ReceivedFrom(client error) = %q, want %s/Echo", from, suiteService)
	}
}

// checkClientWire checks the wire fields the built-in transport clients
// give their calls (a plug-in transport may leave them empty).
func checkClientWire(t *testing.T, kind string, c transport.Call) {
	t.Helper()
	var method, route string
	switch transport.Kind(kind) {
	case transport.HTTP:
		method, route = "POST", "/"+suiteService+"/Echo"
		if !strings.HasPrefix(c.Target, "http") || !strings.HasSuffix(c.Target, route) {
			t.Errorf("HTTP client call has Target %q, want the URL ending in %s", c.Target, route)
		}
	case transport.GRPC:
		method = fgrpc.MethodName(suiteService, "Echo")
	case transport.NATS:
		method = suiteService + ".Echo"
	default:
		return
	}
	if c.Method != method || c.Route != route {
		t.Errorf("%s client call has Method %q, Route %q; want %q, %q", kind, c.Method, c.Route, method, route)
	}
}
