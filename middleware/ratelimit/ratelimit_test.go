package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/middleware/auth"
	"github.com/ferry-go/ferry/middleware/ratelimit"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type Ping struct {
	N int `json:"n"`
}

type Pong struct {
	N int `json:"n"`
}

// TestPerTransport is the per-transport test: past its burst a
// caller gets ResourceExhausted with a retry hint on HTTP, gRPC and NATS,
// the handler never runs for it, and a raw HTTP request sees 429 with a
// Retry-After header.
func TestPerTransport(t *testing.T) {
	l, err := ratelimit.New(rate.Every(time.Hour), 2, ratelimit.WithKey(ratelimit.ByMetadata("x-client")))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	srv := server.New("shop", server.WithMiddleware(l.Middleware()))
	server.Handle(srv, "Ping", func(ctx context.Context, req *Ping) (*Pong, error) {
		calls.Add(1)
		return &Pong{N: req.N}, nil
	})
	inst := ferrytest.Start(t, srv)

	for _, tc := range []struct {
		name string
		c    transport.Client
	}{{"http", inst.HTTP}, {"grpc", inst.GRPC}, {"nats", inst.NATS}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ctx = transport.WithMetadata(ctx, transport.Pairs("x-client", "client-"+tc.name))
			before := calls.Load()
			for i := range 2 {
				if _, err := transport.Invoke[Ping, Pong](ctx, tc.c, "shop", "Ping", &Ping{N: i}); err != nil {
					t.Fatalf("call %d within the burst: %v", i, err)
				}
			}
			for i := range 3 {
				var reply transport.Metadata
				_, err := transport.Invoke[Ping, Pong](transport.CaptureReply(ctx, &reply), tc.c, "shop", "Ping", &Ping{})
				var e *errs.Error
				if !errors.As(err, &e) || e.Code() != errs.ResourceExhausted || e.Message() != "rate limit exceeded" {
					t.Fatalf("call %d over the limit: %v", i, err)
				}
				if s, err := strconv.Atoi(reply.Get("retry-after")); err != nil || s < 1 || s > 3600 {
					t.Errorf("retry-after = %q (reply %v)", reply.Get("retry-after"), reply)
				}
			}
			if n := calls.Load() - before; n != 2 {
				t.Errorf("handler ran %d times, want 2", n)
			}
		})
	}

	// A raw HTTP request: status 429 and the Retry-After header.
	t.Run("raw http", func(t *testing.T) {
		before := calls.Load()
		for i := range 3 {
			req, _ := http.NewRequest(http.MethodPost, "http://"+inst.HTTPAddr+"/shop/Ping", strings.NewReader(`{"n":1}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Client", "raw")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if i < 2 {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
				}
				continue
			}
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("over the limit: %d %s", resp.StatusCode, body)
			}
			ra := resp.Header.Get("Retry-After")
			if s, err := strconv.Atoi(ra); err != nil || s < 1 {
				t.Errorf("Retry-After = %q", ra)
			}
			if !strings.Contains(string(body), `"code":"resource_exhausted"`) {
				t.Errorf("body = %s", body)
			}
		}
		if n := calls.Load() - before; n != 2 {
			t.Errorf("handler ran %d times, want 2", n)
		}
	})
	http.DefaultClient.CloseIdleConnections()
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestRefillAndRetryAfter(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	l, err := ratelimit.New(0.5, 1, ratelimit.WithClock(clk.Now), ratelimit.WithKey(ratelimit.ByPeerIP()))
	if err != nil {
		t.Fatal(err)
	}
	h := l.Middleware()(func(ctx context.Context, req any) (any, error) { return "ok", nil })
	reply := transport.Metadata{}
	ctx := transport.NewCallContext(context.Background(), &transport.Call{Kind: transport.GRPC, Peer: "10.0.0.1:5555", Reply: reply})
	if _, err := h(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h(ctx, nil); errs.CodeOf(err) != errs.ResourceExhausted {
		t.Fatalf("second call: %v", err)
	}
	if reply.Get("retry-after") != "2" || reply.Get("grpc-retry-pushback-ms") != "2000" {
		t.Errorf("reply = %v", reply)
	}
	// Another port of the same IP shares the bucket; another IP does not.
	other := transport.NewCallContext(context.Background(), &transport.Call{Peer: "10.0.0.1:6666", Reply: transport.Metadata{}})
	if _, err := h(other, nil); errs.CodeOf(err) != errs.ResourceExhausted {
		t.Errorf("same IP, other port: %v", err)
	}
	ip2 := transport.NewCallContext(context.Background(), &transport.Call{Peer: "[::1]:80"})
	if _, err := h(ip2, nil); err != nil {
		t.Errorf("other IP: %v", err)
	}
	clk.Add(2 * time.Second)
	if _, err := h(ctx, nil); err != nil {
		t.Errorf("after refill: %v", err)
	}
	// Rejected calls do not spend tokens.
	clk.Add(time.Second)
	if _, err := h(ctx, nil); err == nil {
		t.Error("half a token later: allowed")
	}
	clk.Add(time.Second)
	if _, err := h(ctx, nil); err != nil {
		t.Errorf("a full token later: %v", err)
	}
}

func TestKeyFuncs(t *testing.T) {
	ctx := auth.NewContext(context.Background(), auth.Principal{Subject: "ada", Method: auth.MethodJWT})
	call := &transport.Call{Service: "s", Endpoint: "E", Peer: "192.0.2.1:1234", Request: transport.Pairs("X-Tenant", "t1")}
	for _, tc := range []struct {
		name string
		f    ratelimit.KeyFunc
		ctx  context.Context
		call *transport.Call
		want string
	}{
		{"principal", ratelimit.ByPrincipal(), ctx, call, "jwt:ada"},
		{"no principal", ratelimit.ByPrincipal(), context.Background(), call, ""},
		{"peer", ratelimit.ByPeerIP(), ctx, call, "192.0.2.1"},
		{"peer without port", ratelimit.ByPeerIP(), ctx, &transport.Call{Peer: "pipe"}, "pipe"},
		{"no peer (NATS)", ratelimit.ByPeerIP(), ctx, &transport.Call{}, ""},
		{"no call", ratelimit.ByPeerIP(), ctx, nil, ""},
		{"metadata", ratelimit.ByMetadata("x-tenant"), ctx, call, "t1"},
		{"no metadata", ratelimit.ByMetadata("x-tenant"), ctx, &transport.Call{}, ""},
		{"endpoint", ratelimit.ByEndpoint(), ctx, call, "s/E"},
	} {
		if got := tc.f(tc.ctx, tc.call, nil); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestBoundedKeys: churning keys never hold more than WithMaxKeys
// limiters, and the most recently used keys are the ones kept. The clock
// stands still: a used-up key can only get a token back by being evicted
// and re-created, however slowly the loop runs.
func TestBoundedKeys(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	l, err := ratelimit.New(1, 1, ratelimit.WithMaxKeys(100), ratelimit.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	hot := "hot"
	l.Allow(hot)
	for i := range 10_000 {
		l.Allow(fmt.Sprintf("key-%d", i))
		if i%50 == 0 {
			if ok, _ := l.Allow(hot); ok {
				t.Fatalf("hot key evicted and refilled at %d", i)
			}
		}
		if n := l.Len(); n > 100 {
			t.Fatalf("%d keys tracked", n)
		}
	}
}

func TestConcurrent(t *testing.T) {
	l, err := ratelimit.New(rate.Every(time.Hour), 50, ratelimit.WithMaxKeys(8))
	if err != nil {
		t.Fatal(err)
	}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 100 {
				if ok, _ := l.Allow(strconv.Itoa(g)); ok {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 8*50 {
		t.Errorf("allowed %d, want %d", n, 8*50)
	}
}

func TestInvalidOptions(t *testing.T) {
	for name, f := range map[string]func() (*ratelimit.Limiter, error){
		"negative rate": func() (*ratelimit.Limiter, error) { return ratelimit.New(-1, 1) },
		"zero burst":    func() (*ratelimit.Limiter, error) { return ratelimit.New(1, 0) },
		"nil key":       func() (*ratelimit.Limiter, error) { return ratelimit.New(1, 1, ratelimit.WithKey(nil)) },
		"zero max keys": func() (*ratelimit.Limiter, error) { return ratelimit.New(1, 1, ratelimit.WithMaxKeys(0)) },
		"nil clock":     func() (*ratelimit.Limiter, error) { return ratelimit.New(1, 1, ratelimit.WithClock(nil)) },
	} {
		if l, err := f(); err == nil || l != nil {
			t.Errorf("%s: %v, %v", name, l, err)
		}
	}
	// A zero rate allows the burst, then nothing, with a capped hint.
	l, err := ratelimit.New(0, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	reply := transport.Metadata{}
	h := l.Middleware()(func(ctx context.Context, req any) (any, error) { return nil, nil })
	ctx := transport.NewCallContext(context.Background(), &transport.Call{Kind: transport.HTTP, Reply: reply})
	_, err1 := h(ctx, nil)
	_, err2 := h(ctx, nil)
	if err1 != nil || errs.CodeOf(err2) != errs.ResourceExhausted || reply.Get("retry-after") != "3600" {
		t.Errorf("zero rate: %v %v %v", err1, err2, reply)
	}
}
