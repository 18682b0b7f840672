package ratelimit

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/middleware/auth"
	"github.com/ferry-go/ferry/transport"
	"golang.org/x/time/rate"
)

// KeyFunc returns the key a call is limited under; "" for none.
type KeyFunc func(ctx context.Context, call *transport.Call, req any) string

// ByPrincipal keys calls by the caller authenticated by package auth
// ("jwt:<sub>", "api_key:<name>"); auth's middleware must run first.
func ByPrincipal() KeyFunc {
	return func(ctx context.Context, _ *transport.Call, _ any) string {
		p, ok := auth.PrincipalFromContext(ctx)
		if !ok {
			return ""
		}
		return p.Method + ":" + p.Subject
	}
}

// ByPeerIP keys calls by the IP address of Call.Peer, the transport's
// remote address (a proxy's, behind one; use ByMetadata with a header the
// proxy sets then). NATS calls have no peer.
func ByPeerIP() KeyFunc {
	return func(_ context.Context, call *transport.Call, _ any) string {
		if call == nil || call.Peer == "" {
			return ""
		}
		if host, _, err := net.SplitHostPort(call.Peer); err == nil {
			return host
		}
		return call.Peer
	}
}

// ByMetadata keys calls by the first value of request metadata key.
func ByMetadata(key string) KeyFunc {
	return func(_ context.Context, call *transport.Call, _ any) string {
		if call == nil || call.Request == nil {
			return ""
		}
		return call.Request.Get(key)
	}
}

// ByEndpoint keys calls by "service/endpoint": one limit per endpoint.
func ByEndpoint() KeyFunc {
	return func(_ context.Context, call *transport.Call, _ any) string {
		if call == nil {
			return ""
		}
		return call.Service + "/" + call.Endpoint
	}
}

// Option configures New.
type Option func(*config)

type config struct {
	errs []error // invalid options, reported by the constructor

	key     KeyFunc
	maxKeys int
	now     func() time.Time
}

// fail records an invalid option for the constructor to report.
func (c *config) fail(err error) { c.errs = append(c.errs, err) }

// WithKey sets the key function (default ByPeerIP).
func WithKey(f KeyFunc) Option {
	return func(c *config) {
		if f == nil {
			c.fail(errors.New("nil key function"))
			return
		}
		c.key = f
	}
}

// WithMaxKeys bounds the number of keys tracked at once (default 10 000).
func WithMaxKeys(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail(fmt.Errorf("max keys %d: want at least 1", n))
			return
		}
		c.maxKeys = n
	}
}

// WithClock sets the clock (default time.Now), for tests.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.fail(errors.New("nil clock"))
			return
		}
		c.now = now
	}
}

// RetryAfterKey is the reply metadata key of the retry hint.
const RetryAfterKey = middleware.RetryAfterKey

// Limiter holds one token bucket per key. It is safe for concurrent use
// and starts no goroutines.
type Limiter struct {
	limit rate.Limit
	burst int
	cfg   config

	mu    sync.Mutex
	lru   *list.List // of *entry, most recently used first
	items map[string]*list.Element
}

type entry struct {
	key string
	lim *rate.Limiter
}

// New returns a Limiter allowing each key limit calls per second with
// bursts of burst calls (limit rate.Inf: no limit).
func New(limit rate.Limit, burst int, opts ...Option) (*Limiter, error) {
	if limit < 0 || math.IsNaN(float64(limit)) {
		return nil, fmt.Errorf("ratelimit: rate %v: want >= 0", limit)
	}
	if burst < 1 {
		return nil, fmt.Errorf("ratelimit: burst %d: want at least 1", burst)
	}
	cfg := config{key: ByPeerIP(), maxKeys: 10_000, now: time.Now}
	for _, o := range opts {
		if o == nil {
			continue
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	return &Limiter{limit: limit, burst: burst, cfg: cfg, lru: list.New(), items: map[string]*list.Element{}}, nil
}

// Len returns the number of keys tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items)
}

// Allow takes one token for key and reports whether the call may go on;
// when not, wait is how long until a token is free (math.MaxInt64 when
// the rate is 0 and the burst is spent).
func (l *Limiter) Allow(key string) (ok bool, wait time.Duration) {
	now := l.cfg.now()
	lim := l.get(key)
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Duration(math.MaxInt64)
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *Limiter) get(key string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.items[key]; ok {
		l.lru.MoveToFront(el)
		return el.Value.(*entry).lim
	}
	for len(l.items) >= l.cfg.maxKeys {
		last := l.lru.Back()
		l.lru.Remove(last)
		delete(l.items, last.Value.(*entry).key)
	}
	e := &entry{key: key, lim: rate.NewLimiter(l.limit, l.burst)}
	l.items[key] = l.lru.PushFront(e)
	return e.lim
}

// maxRetryAfter caps the hint (a rate of 0 never refills).
const maxRetryAfter = time.Hour

// Middleware returns middleware that rejects calls over their key's limit
// with errs.ResourceExhausted and a retry-after hint, before the handler.
func (l *Limiter) Middleware() middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			call, _ := transport.CallFromContext(ctx)
			ok, wait := l.Allow(l.cfg.key(ctx, call, req))
			if ok {
				return next(ctx, req)
			}
			wait = min(max(wait, time.Second), maxRetryAfter)
			secs := int64(math.Ceil(wait.Seconds()))
			if call != nil && !call.Client && call.Reply != nil {
				call.Reply.Set(RetryAfterKey, strconv.FormatInt(secs, 10))
				if call.Kind == transport.GRPC {
					call.Reply.Set(middleware.GRPCPushbackKey, strconv.FormatInt(wait.Milliseconds(), 10))
				}
			}
			return nil, errs.New(errs.ResourceExhausted, "rate limit exceeded")
		}
	}
}
