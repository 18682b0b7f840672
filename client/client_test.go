package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/sony/gobreaker/v2"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestRoundRobinIsEven(t *testing.T) {
	for _, kind := range []string{"http", "grpc"} {
		t.Run(kind, func(t *testing.T) {
			reg := newMemory()
			bs := []*backend{
				start(t, reg, "echo", kind, &backend{id: "a"}),
				start(t, reg, "echo", kind, &backend{id: "b"}),
				start(t, reg, "echo", kind, &backend{id: "c"}),
			}
			// Every attempt takes the next instance in turn. A retry (a
			// connection reset on a loaded machine, say) is an attempt too,
			// and shifts the turn by one: each instance's share may be off
			// by at most the number of retries, and is exact without any.
			var attempts atomic.Int64
			c := newClient(t, reg, client.WithSelector(client.RoundRobin), client.WithRetry(middleware.RetryPolicy{
				OnAttempt: func(context.Context, int, error) { attempts.Add(1) },
			}))
			ctx := ctxT(t)
			const calls = 300
			for i := range calls {
				r, err := echo(ctx, c, "echo", i)
				if err != nil || r.N != i {
					t.Fatalf("Call(%d) = %+v, %v, want N %d", i, r, err, i)
				}
			}
			retries := attempts.Load() - calls
			for _, b := range bs {
				if got := b.hits.Load(); got < calls/3-retries || got > calls/3+retries {
					t.Errorf("hits(%s) = %d, want %d (± %d retries)", b.id, got, calls/3, retries)
				}
			}
		})
	}
}

// TestP2CPrefersLessLoaded: P2C sends a call to the instance with fewer
// calls in flight. The slow instance holds every call it takes until the
// end of the test, and each call starts only once the previous one has
// either returned or been taken by the slow instance; so from the slow
// instance's first call on, every selection sees it with one call in
// flight and the fast one with none, and P2C must never pick it again.
// Random or round-robin selection would hand it about half the calls.
func TestP2CPrefersLessLoaded(t *testing.T) {
	reg := newMemory()
	release := make(chan struct{})
	took := make(chan struct{}, 1000)
	slow := start(t, reg, "echo", "http", &backend{id: "slow", fail: func(ctx context.Context, _ int64) error {
		took <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}})
	fast := start(t, reg, "echo", "http", &backend{id: "fast"})
	c := newClient(t, reg) // P2C is the default
	ctx := ctxT(t)
	const calls = 200
	var held []chan error
	for i := range calls {
		done := make(chan error, 1)
		go func() {
			_, err := echo(ctx, c, "echo", i)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Call(%d) = %v", i, err)
			}
		case <-took:
			held = append(held, done)
		}
	}
	close(release)
	for _, done := range held {
		if err := <-done; err != nil {
			t.Errorf("held call = %v", err)
		}
	}
	t.Logf("P2C: the slow instance took %d of %d calls, the fast one %d", slow.hits.Load(), calls, fast.hits.Load())
	if len(held) > 1 {
		t.Errorf("the slow instance took %d calls while holding one, want at most 1", len(held))
	}
}

func TestWatchDrivesSelection(t *testing.T) {
	mem := newMemory()
	d := &counting{Discovery: mem}
	a := start(t, mem, "echo", "http", &backend{id: "a"})
	c := newClient(t, d, client.WithSelector(client.RoundRobin))
	ctx := ctxT(t)
	for i := range 10 {
		if r, err := echo(ctx, c, "echo", i); err != nil || r.Instance != "a" {
			t.Fatalf("Call() = %+v, %v, want instance a", r, err)
		}
	}
	b := start(t, mem, "echo", "http", &backend{id: "b"})
	eventually(t, "calls reach the added instance", func() bool {
		_, err := echo(ctx, c, "echo", 0)
		return err == nil && b.hits.Load() > 0
	})
	if err := mem.Deregister(ctx, a.in); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the removed instance stops getting calls", func() bool {
		before := a.hits.Load()
		for i := range 10 {
			if _, err := echo(ctx, c, "echo", i); err != nil {
				t.Fatalf("Call() = %v", err)
			}
		}
		return a.hits.Load() == before
	})
	if got := d.lookups.Load(); got != 0 {
		t.Errorf("Lookup calls = %d, want 0 (selection follows the watch)", got)
	}
	if got := d.watches.Load(); got != 1 {
		t.Errorf("Watch calls = %d, want 1", got)
	}
}

func TestRegistryDown(t *testing.T) {
	mem := newMemory()
	d := &counting{Discovery: mem}
	start(t, mem, "echo", "http", &backend{id: "a"})
	c := newClient(t, d)
	ctx := ctxT(t)
	if _, err := echo(ctx, c, "echo", 1); err != nil {
		t.Fatalf("Call() = %v", err)
	}
	d.setDown(true)
	eventually(t, "the watch notices the registry is down", func() bool { return d.watches.Load() >= 2 })
	for i := range 20 {
		if _, err := echo(ctx, c, "echo", i); err != nil {
			t.Fatalf("Call() with the registry down = %v, want the last known instance used", err)
		}
	}

	// A client that never reached the registry has nothing to call.
	c2 := newClient(t, d)
	_, err := echo(ctx, c2, "echo", 1)
	if got := errs.CodeOf(err); got != errs.Unavailable || !strings.Contains(err.Error(), errDown.Error()) {
		t.Errorf("Call() with no instance ever known = %v, want unavailable naming the registry error", err)
	}
	d.setDown(false)
	eventually(t, "the client recovers when the registry is back", func() bool {
		_, err := echo(ctx, c2, "echo", 1)
		return err == nil
	})
}

func TestUnknownService(t *testing.T) {
	c := newClient(t, newMemory())
	_, err := echo(ctx(t), c, "nosuch", 1)
	if got := errs.CodeOf(err); got != errs.Unavailable || !strings.Contains(err.Error(), `no instances of service "nosuch"`) {
		t.Errorf("Call(nosuch) = %v, want unavailable naming the service", err)
	}
	_, err = echo(ctx(t), c, "bad.name", 1)
	if got := errs.CodeOf(err); got != errs.InvalidArgument {
		t.Errorf("Call(bad.name) = %v, want invalid_argument", err)
	}
}

func ctx(t *testing.T) context.Context { return ctxT(t) }

func TestRetryGoesToAnotherInstance(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, b *backend)
	}{
		{"server unavailable", func(t *testing.T, b *backend) {
			b.fail = func(context.Context, int64) error { return errs.New(errs.Unavailable, "draining") }
		}},
		{"killed", func(t *testing.T, b *backend) { b.stop() }},
	}
	for _, tt := range tests {
		for _, kind := range []string{"http", "grpc"} {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				reg := newMemory()
				bad := &backend{id: "bad"}
				start(t, reg, "echo", kind, bad)
				tt.setup(t, bad)
				start(t, reg, "echo", kind, &backend{id: "good"})
				var attempts, calls atomic.Int64
				var maxAtt atomic.Int64
				c := newClient(t, reg,
					client.WithSelector(client.Random),
					// Half the calls need a retry here: more than the default budget.
					client.WithRetryBudget(middleware.NewRetryBudget(1, 1000)),
					client.WithOutlierDetection(client.OutlierDetection{ConsecutiveFailures: -1}),
					client.WithRetry(middleware.RetryPolicy{OnAttempt: func(_ context.Context, n int, _ error) {
						attempts.Add(1)
						for m := maxAtt.Load(); int64(n) > m && !maxAtt.CompareAndSwap(m, int64(n)); m = maxAtt.Load() {
						}
					}}))
				ctx := ctxT(t)
				for i := range 50 {
					calls.Add(1)
					if r, err := echo(ctx, c, "echo", i); err != nil || r.Instance != "good" {
						t.Fatalf("Call() = %+v, %v, want a reply from good", r, err)
					}
				}
				if got := maxAtt.Load(); got != 2 {
					t.Errorf("max attempts per call = %d, want 2 (a retry never returns to the failed instance)", got)
				}
				t.Logf("%d calls, %d attempts", calls.Load(), attempts.Load())
			})
		}
	}
}

func TestNonIdempotentNotRetried(t *testing.T) {
	reg := newMemory()
	bad := start(t, reg, "echo", "http", &backend{id: "a", fail: func(context.Context, int64) error {
		return errs.New(errs.DeadlineExceeded, "took too long")
	}})
	start(t, reg, "echo", "http", &backend{id: "b"})
	c := newClient(t, reg,
		client.WithSelector(client.RoundRobin),
		client.WithOutlierDetection(client.OutlierDetection{ConsecutiveFailures: -1}),
		client.WithEndpoint("Idem", client.EndpointConfig{Idempotent: true}))
	ctx := ctxT(t)
	var failed int
	for i := range 10 {
		if _, err := echo(ctx, c, "echo", i); err != nil {
			if got := errs.CodeOf(err); got != errs.DeadlineExceeded {
				t.Fatalf("Call(Echo) = %v, want deadline_exceeded", err)
			}
			failed++
		}
	}
	if failed != 5 || bad.hits.Load() != 5 {
		t.Errorf("non-idempotent: %d failed calls, %d hits on the bad instance, want 5 and 5 (no retries)", failed, bad.hits.Load())
	}
	for i := range 10 {
		if _, err := epIdem.Call(ctx, c, &EchoRequest{N: i}); err != nil {
			t.Fatalf("Call(Idem) = %v, want retried elsewhere", err)
		}
	}
}

// brownout drives load at a service with three instances of which fail
// fail half their calls, and returns calls, attempts and failures.
func brownout(t *testing.T, failing int, budget *middleware.RetryBudget) (calls, attempts, failures int64, elapsed time.Duration) {
	reg := newMemory()
	for i, id := range []string{"a", "b", "c"} {
		b := &backend{id: id}
		if i < failing {
			b.fail = func(_ context.Context, n int64) error {
				if n%2 == 0 {
					return errs.New(errs.Unavailable, "brown-out")
				}
				return nil
			}
		}
		start(t, reg, "echo", "http", b)
	}
	var att atomic.Int64
	c := newClient(t, reg,
		client.WithRetryBudget(budget),
		client.WithOutlierDetection(client.OutlierDetection{ConsecutiveFailures: -1}),
		client.WithRetry(middleware.RetryPolicy{OnAttempt: func(context.Context, int, error) { att.Add(1) }}))
	ctx := ctxT(t)
	var nCalls, nFail atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 250 {
				nCalls.Add(1)
				if _, err := echo(ctx, c, "echo", w*1000+i); err != nil {
					nFail.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return nCalls.Load(), att.Load(), nFail.Load(), time.Since(begin)
}

func TestBrownoutRetryBudget(t *testing.T) {
	t.Run("one of three fails half", func(t *testing.T) {
		calls, attempts, failures, el := brownout(t, 1, middleware.NewRetryBudget(0.2, 10))
		ratio := float64(attempts) / float64(calls)
		t.Logf("brown-out (1 of 3 instances fails 50%%): %d calls, %d attempts (%.3f/call), %d failed, %v", calls, attempts, ratio, failures, el)
		if ratio > 1.2 {
			t.Errorf("attempts/call = %.3f, want ≤ 1.2", ratio)
		}
	})
	t.Run("all fail half", func(t *testing.T) {
		// Unbudgeted, half the attempts fail and ~2 attempts/call follow;
		// the budget holds retries to 20% plus the floor.
		calls, attempts, failures, el := brownout(t, 3, middleware.NewRetryBudget(0.2, 10))
		ratio := float64(attempts) / float64(calls)
		limit := 1.2 + (10*el.Seconds()+10)/float64(calls)
		t.Logf("brown-out (3 of 3 instances fail 50%%): %d calls, %d attempts (%.3f/call), %d failed, %v", calls, attempts, ratio, failures, el)
		if ratio > limit {
			t.Errorf("attempts/call = %.3f, want ≤ %.3f (20%% + floor)", ratio, limit)
		}
	})
}

func TestCircuitBreaker(t *testing.T) {
	reg := newMemory()
	var healthy atomic.Bool
	bad := start(t, reg, "echo", "http", &backend{id: "a", fail: func(context.Context, int64) error {
		if healthy.Load() {
			return nil
		}
		return errs.New(errs.Unavailable, "down")
	}})
	type change struct{ from, to gobreaker.State }
	changes := make(chan change, 16)
	c := newClient(t, reg,
		client.WithRetry(middleware.RetryPolicy{MaxAttempts: 1}),
		client.WithOutlierDetection(client.OutlierDetection{ConsecutiveFailures: -1}),
		client.WithCircuitBreaker(client.BreakerSettings{
			ReadyToTrip:   func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 3 },
			Timeout:       300 * time.Millisecond,
			OnStateChange: func(_ string, from, to gobreaker.State) { changes <- change{from, to} },
		}))
	ctx := ctxT(t)
	for i := range 3 {
		if _, err := echo(ctx, c, "echo", i); errs.CodeOf(err) != errs.Unavailable {
			t.Fatalf("Call() = %v, want unavailable", err)
		}
	}
	if ch := <-changes; ch != (change{gobreaker.StateClosed, gobreaker.StateOpen}) {
		t.Fatalf("state change = %v, want closed→open", ch)
	}
	before := bad.hits.Load()
	_, err := echo(ctx, c, "echo", 9)
	if errs.CodeOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "circuit breakers") || bad.hits.Load() != before {
		t.Errorf("Call() with the breaker open = %v (hits %d→%d), want unavailable without reaching the instance", err, before, bad.hits.Load())
	}
	healthy.Store(true)
	eventually(t, "a half-open probe succeeds", func() bool {
		_, err := echo(ctx, c, "echo", 1)
		return err == nil
	})
	want := []change{{gobreaker.StateOpen, gobreaker.StateHalfOpen}, {gobreaker.StateHalfOpen, gobreaker.StateClosed}}
	for _, w := range want {
		if ch := <-changes; ch != w {
			t.Errorf("state change = %v, want %v", ch, w)
		}
	}
}

func TestOutlierEjectsAtMostOneOfThree(t *testing.T) {
	reg := newMemory()
	failing := func(context.Context, int64) error { return errs.New(errs.Internal, "broken") }
	a := start(t, reg, "echo", "http", &backend{id: "a", fail: failing})
	b := start(t, reg, "echo", "http", &backend{id: "b", fail: failing})
	start(t, reg, "echo", "http", &backend{id: "c"})
	c := newClient(t, reg,
		client.WithSelector(client.RoundRobin),
		client.WithRetry(middleware.RetryPolicy{MaxAttempts: 1}),
		client.WithOutlierDetection(client.OutlierDetection{ConsecutiveFailures: 3, BaseEjectionTime: time.Minute}))
	ctx := ctxT(t)
	for i := range 60 {
		_, _ = echo(ctx, c, "echo", i)
	}
	a0, b0 := a.hits.Load(), b.hits.Load()
	for i := range 30 {
		_, _ = echo(ctx, c, "echo", i)
	}
	da, db := a.hits.Load()-a0, b.hits.Load()-b0
	t.Logf("hits in the last 30 calls: a %d, b %d", da, db)
	if (da == 0) == (db == 0) {
		t.Errorf("hits in the last 30 calls: a %d, b %d, want exactly one of them ejected (0 hits)", da, db)
	}
}

// TestOutlierEjectsOneOfTwo is issue #11's defect 5: with fewer than three
// instances the cap (⌊n/3⌋ = 0) let no instance be ejected, so a dead one
// of two kept failing a share of calls for ever. At least one instance may
// now be ejected whenever there are two or more.
func TestOutlierEjectsOneOfTwo(t *testing.T) {
	reg := newMemory()
	dead := start(t, reg, "echo", "http", &backend{id: "dead"})
	live := start(t, reg, "echo", "http", &backend{id: "live"})
	dead.stop() // connection refused from now on; its registry entry stays
	c := newClient(t, reg,
		client.WithSelector(client.RoundRobin),
		client.WithRetry(middleware.RetryPolicy{MaxAttempts: 1}),
		client.WithOutlierDetection(client.OutlierDetection{ConsecutiveFailures: 3, BaseEjectionTime: time.Minute}))
	ctx := ctxT(t)
	for i := range 20 { // round robin: the dead one fails every other call until ejected
		_, _ = echo(ctx, c, "echo", i)
	}
	before := live.hits.Load()
	for i := range 30 {
		if _, err := echo(ctx, c, "echo", i); err != nil {
			t.Fatalf("call %d after the dead instance's failures = %v, want it ejected", i, err)
		}
	}
	if got := live.hits.Load() - before; got != 30 {
		t.Errorf("the live instance got %d of the last 30 calls, want all", got)
	}
	// The last instance standing is never ejected.
	reg2 := newMemory()
	lone := start(t, reg2, "echo", "http", &backend{id: "lone", fail: func(context.Context, int64) error { return errs.New(errs.Internal, "broken") }})
	c2 := newClient(t, reg2, client.WithRetry(middleware.RetryPolicy{MaxAttempts: 1}),
		client.WithOutlierDetection(client.OutlierDetection{ConsecutiveFailures: 3, BaseEjectionTime: time.Minute}))
	for i := range 10 {
		_, _ = echo(ctx, c2, "echo", i)
	}
	if got := lone.hits.Load(); got != 10 {
		t.Errorf("a lone failing instance got %d of 10 calls, want all (never ejected)", got)
	}
}

func TestBulkheadRejectsExcess(t *testing.T) {
	reg := newMemory()
	release := make(chan struct{})
	var arrived atomic.Int64
	start(t, reg, "echo", "http", &backend{id: "a", fail: func(ctx context.Context, _ int64) error {
		arrived.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}})
	c := newClient(t, reg, client.WithEndpoint("echo/Echo", client.EndpointConfig{Bulkhead: 2}))
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := echo(ctx, c, "echo", i); err != nil {
				t.Errorf("Call() = %v", err)
			}
		}()
	}
	eventually(t, "two calls in flight", func() bool { return arrived.Load() == 2 })
	_, err := echo(ctx, c, "echo", 3)
	if errs.CodeOf(err) != errs.ResourceExhausted || !strings.Contains(err.Error(), "bulkhead full: 2 calls in flight") {
		t.Errorf("third Call() = %v, want resource_exhausted: bulkhead full", err)
	}
	// Other endpoints have their own (here: no) limit.
	close(release)
	wg.Wait()
}

func TestPushBack(t *testing.T) {
	tests := []struct {
		name, kind, key, value string
		wantAttempts           int
		minWait                time.Duration
	}{
		{"http Retry-After", "http", "Retry-After", "1", 2, 900 * time.Millisecond},
		{"http Retry-After invalid", "http", "Retry-After", "soon", 1, 0},
		{"grpc pushback", "grpc", "grpc-retry-pushback-ms", "400", 2, 350 * time.Millisecond},
		{"grpc pushback negative", "grpc", "grpc-retry-pushback-ms", "-1", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newMemory()
			start(t, reg, "echo", tt.kind, &backend{id: "a", fail: func(ctx context.Context, n int64) error {
				if n > 1 {
					return nil
				}
				c, _ := transport.CallFromContext(ctx)
				c.Reply.Set(tt.key, tt.value)
				return errs.New(errs.Unavailable, "busy")
			}})
			var attempts atomic.Int64
			c := newClient(t, reg, client.WithRetry(middleware.RetryPolicy{
				OnAttempt: func(context.Context, int, error) { attempts.Add(1) }}))
			began := time.Now()
			_, err := echo(ctxT(t), c, "echo", 1)
			el := time.Since(began)
			if got := int(attempts.Load()); got != tt.wantAttempts {
				t.Errorf("attempts = %d (err %v), want %d", got, err, tt.wantAttempts)
			}
			if tt.wantAttempts > 1 && (err != nil || el < tt.minWait) {
				t.Errorf("Call() = %v after %v, want success after ≥ %v", err, el, tt.minWait)
			}
		})
	}
}

func TestDefaultTimeout(t *testing.T) {
	reg := newMemory()
	start(t, reg, "echo", "http", &backend{id: "a", fail: func(ctx context.Context, _ int64) error {
		<-ctx.Done()
		return ctx.Err()
	}})
	c := newClient(t, reg, client.WithDefaultTimeout(200*time.Millisecond))
	began := time.Now()
	_, err := echo(context.Background(), c, "echo", 1)
	el := time.Since(began)
	if errs.CodeOf(err) != errs.DeadlineExceeded || el < 150*time.Millisecond || el > 5*time.Second {
		t.Errorf("Call() without a deadline = %v after %v, want deadline_exceeded after about 200ms", err, el)
	}
}

func TestMetadataAndMiddleware(t *testing.T) {
	reg := newMemory()
	start(t, reg, "echo", "grpc", &backend{id: "a"})
	var kinds []transport.Kind
	mw := func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			c, _ := transport.CallFromContext(ctx)
			c.Request.Set("x-mw", "+mw")
			resp, err := next(ctx, req)
			kinds = append(kinds, c.Kind)
			return resp, err
		}
	}
	c := newClient(t, reg, client.WithMiddleware(mw))
	ctx := transport.WithMetadata(ctxT(t), transport.Pairs("x-test", "md"))
	r, err := echo(ctx, c, "echo", 1)
	if err != nil || r.Meta != "md+mw" {
		t.Fatalf("Call() = %+v, %v, want metadata md+mw", r, err)
	}
	if len(kinds) != 1 || kinds[0] != transport.GRPC {
		t.Errorf("middleware saw kinds %v, want [grpc]", kinds)
	}
}

func TestNATS(t *testing.T) {
	ns := ferrytest.NATS(t)
	nc := ferrytest.Connect(t, ns.ClientURL())
	srv := server.New("echo")
	b := &backend{id: "n"}
	server.Handle(srv, "Echo", b.Echo)
	tr := fnats.NewServer(nc)
	ctx := ctxT(t)
	if err := tr.Start(ctx, srv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Stop(context.Background()) })
	reg := newMemory()
	_, addr, _ := tr.Advertise()
	if err := reg.Register(ctx, registry.Instance{ID: "n", Service: "echo", Endpoints: []registry.Endpoint{{Transport: "nats", Address: addr}}}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, reg, client.WithNATS(nc))
	if r, err := echo(ctx, c, "echo", 7); err != nil || r.N != 7 {
		t.Fatalf("Call() over NATS = %+v, %v", r, err)
	}
	// No registry entry needed: the subject routes.
	_, err := echo(ctx, c, "ghost", 1)
	if errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("Call(ghost) over NATS = %v, want unavailable (no responders), not the deadline", err)
	}
	// Without WithNATS, NATS-only instances are not callable.
	c2 := newClient(t, reg)
	if _, err := echo(ctx, c2, "echo", 1); errs.CodeOf(err) != errs.Unavailable {
		t.Errorf("Call() of a NATS-only service without NATS = %v, want unavailable", err)
	}
}

func TestCloseStopsWatchesAndFailsLaterCalls(t *testing.T) {
	reg := newMemory()
	start(t, reg, "echo", "grpc", &backend{id: "a"})
	c, err := client.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := echo(ctxT(t), c, "echo", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if _, err := echo(ctxT(t), c, "echo", 1); !errors.Is(err, errs.New(errs.FailedPrecondition, "")) {
		t.Errorf("Call() after Close = %v, want failed_precondition", err)
	}
	if _, err := client.New(nil); err == nil {
		t.Error("New(nil) = nil error, want an error")
	}
	if _, err := client.New(reg, client.WithTransports("smoke")); err == nil {
		t.Error(`New(WithTransports("smoke")) = nil error, want an error`)
	}
}

// Issue #11 defect 4: client middleware runs once an attempt has picked its
// instance, so it sees the transport and the peer before it calls next
// (telemetry records the conventions of the transport, the peer and the
// wire fields from them).
func TestMiddlewareSeesKindAndPeer(t *testing.T) {
	for _, kind := range []string{"grpc", "http"} {
		t.Run(kind, func(t *testing.T) {
			reg := newMemory()
			b := start(t, reg, "echo", kind, &backend{id: "a"})
			var mu sync.Mutex
			var seen []transport.Call
			mw := func(next middleware.Handler) middleware.Handler {
				return func(ctx context.Context, req any) (any, error) {
					c, _ := transport.CallFromContext(ctx)
					mu.Lock()
					seen = append(seen, *c)
					mu.Unlock()
					return next(ctx, req)
				}
			}
			c := newClient(t, reg, client.WithMiddleware(mw))
			if _, err := echo(ctxT(t), c, "echo", 1); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 1 {
				t.Fatalf("middleware ran %d times for one call, want once", len(seen))
			}
			got := seen[0]
			peer := strings.TrimPrefix(b.in.Endpoints[0].Address, "http://")
			if got.Kind.String() != kind || got.Peer != peer || got.Service != "echo" || got.Endpoint != "Echo" || !got.Client || got.Deadline.IsZero() {
				t.Errorf("middleware saw %s %q %s/%s client=%v deadline=%v before the call, want %s %q echo/Echo, a client call with a deadline",
					got.Kind, got.Peer, got.Service, got.Endpoint, got.Client, got.Deadline, kind, b.in.Endpoints[0].Address)
			}
			wantMethod, wantRoute := "/echo.Echo/Echo", ""
			if kind == "http" {
				wantMethod, wantRoute = "POST", "/echo/Echo"
			}
			if got.Method != wantMethod || got.Route != wantRoute || got.TLS {
				t.Errorf("middleware saw Method %q, Route %q, TLS %v; want %q, %q, false", got.Method, got.Route, got.TLS, wantMethod, wantRoute)
			}
		})
	}
}

// fakeCandidates are Candidates with set loads.
type fakeCandidates struct {
	inFlight []int64
	failures []int
}

func (f fakeCandidates) Len() int             { return len(f.inFlight) }
func (f fakeCandidates) ID(i int) string      { return string(rune('a' + i)) }
func (f fakeCandidates) InFlight(i int) int64 { return f.inFlight[i] }
func (f fakeCandidates) Failures(i int) int   { return f.failures[i] }

// Issue #11 defect 5: P2C must not prefer an instance that just failed
// (a dead one answers at once, so it never has calls in flight).
func TestP2CAvoidsRecentFailures(t *testing.T) {
	sel := client.P2C()
	c := fakeCandidates{inFlight: []int64{0, 2}, failures: []int{1, 0}}
	for range 200 {
		if i := sel.Select(c); i != 1 {
			t.Fatalf("P2C picked the idle instance that just failed (%d) over the busy healthy one", i)
		}
	}
	c = fakeCandidates{inFlight: []int64{0, 9}, failures: []int{1, 0}}
	picked := 0
	for range 200 {
		if sel.Select(c) == 0 {
			picked++
		}
	}
	if picked != 200 {
		t.Errorf("P2C picked the instance with one failure %d of 200 times against one with 9 calls in flight, want always", picked)
	}
}

// Issue #11 defect 9: server.WithIdempotent drives the client's retries.
// The service lists its idempotent endpoints in its registration and the
// client retries their failures that may have been processed (Internal
// here) without being configured; other endpoints' are not retried.
func TestIdempotentFromRegistry(t *testing.T) {
	reg := newMemory()
	srv := server.New("echo", server.WithLogger(slog.New(slog.DiscardHandler)))
	var idemCalls, plainCalls atomic.Int64
	flaky := func(n *atomic.Int64) func(context.Context, *EchoRequest) (*EchoReply, error) {
		return func(_ context.Context, r *EchoRequest) (*EchoReply, error) {
			if n.Add(1) == 1 {
				return nil, errs.New(errs.Internal, "first call fails")
			}
			return &EchoReply{N: r.N}, nil
		}
	}
	server.Handle(srv, "Get", flaky(&idemCalls), server.WithIdempotent())
	server.Handle(srv, "Put", flaky(&plainCalls))
	svc := ferry.New(srv, ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")), ferry.WithRegistry(reg), ferry.WithAdvertiseHost("127.0.0.1"),
		ferry.WithSignals(), ferry.WithLogger(slog.New(slog.DiscardHandler)))
	ctx := ctxT(t)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	if got := svc.Instance().Metadata[registry.MetadataIdempotent]; got != "Get" {
		t.Errorf("registered %s = %q, want Get", registry.MetadataIdempotent, got)
	}
	c := newClient(t, reg)
	if r, err := epGet.Call(ctx, c, &EchoRequest{N: 3}); err != nil || r.N != 3 {
		t.Errorf("Get (idempotent, fails once) = %+v, %v; want it retried and answered", r, err)
	}
	if _, err := epPut.Call(ctx, c, &EchoRequest{N: 3}); errs.CodeOf(err) != errs.Internal {
		t.Errorf("Put (not idempotent, fails once) = %v, want internal: not retried", err)
	}
	if idemCalls.Load() != 2 || plainCalls.Load() != 1 {
		t.Errorf("handler calls: Get %d, Put %d; want 2 and 1", idemCalls.Load(), plainCalls.Load())
	}
}

// Issue #11 defect 12: client.Client calls TLS instances — the registry
// entry of a TLS transport says TLS, and WithTLS gives roots and a client
// certificate (mutual TLS here).
func TestTLSInstances(t *testing.T) {
	f := ferrytest.TLS(t)
	for _, kind := range []string{"grpc", "http"} {
		t.Run(kind, func(t *testing.T) {
			reg := newMemory()
			srv := server.New("echo", server.WithLogger(slog.New(slog.DiscardHandler)))
			server.Handle(srv, "Echo", (&backend{id: "tls"}).Echo)
			opt := ferry.WithTransport(fgrpc.NewServer("127.0.0.1:0", fgrpc.WithTLS(f.Server(true))))
			if kind == "http" {
				opt = ferry.WithTransport(fhttp.NewServer("127.0.0.1:0", fhttp.WithTLS(f.Server(true))))
			}
			svc := ferry.New(srv, opt, ferry.WithRegistry(reg), ferry.WithAdvertiseHost("127.0.0.1"),
				ferry.WithSignals(), ferry.WithLogger(slog.New(slog.DiscardHandler)))
			ctx := ctxT(t)
			if err := svc.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = svc.Stop(context.Background()) })
			if eps := svc.Instance().Endpoints; len(eps) != 1 || !eps[0].TLS {
				t.Fatalf("registered endpoints %+v, want one saying TLS", eps)
			}
			c := newClient(t, reg, client.WithTLS(f.Client(true)))
			if r, err := echo(ctx, c, "echo", 5); err != nil || r.N != 5 {
				t.Fatalf("Call() over %s with TLS = %+v, %v", kind, r, err)
			}
			// Without a client certificate the server refuses the handshake.
			c2 := newClient(t, reg, client.WithTLS(f.Client(false)), client.WithRetry(middleware.RetryPolicy{MaxAttempts: 1}))
			if _, err := echo(ctx, c2, "echo", 5); err == nil {
				t.Error("Call() without a client certificate succeeded, want the mutual TLS handshake refused")
			}
		})
	}
}

// pluginTransport is a transport of a kind Ferry does not know ("web"),
// here HTTP underneath: it advertises itself under its own name.
type pluginTransport struct{ *fhttp.Server }

func (p pluginTransport) Advertise() (string, string, bool) {
	_, addr, ok := p.Server.Advertise()
	return "web", addr, ok
}

// A plug-in transport works end to end: the service registers it under its
// kind, and a client given a dialer for that kind calls it.
func TestPluginTransport(t *testing.T) {
	reg := newMemory()
	srv := server.New("echo", server.WithLogger(slog.New(slog.DiscardHandler)))
	server.Handle(srv, "Echo", (&backend{id: "p"}).Echo)
	svc := ferry.New(srv, ferry.WithTransport(pluginTransport{fhttp.NewServer("127.0.0.1:0")}), ferry.WithRegistry(reg),
		ferry.WithAdvertiseHost("127.0.0.1"), ferry.WithSignals(), ferry.WithLogger(slog.New(slog.DiscardHandler)))
	ctx := ctxT(t)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	if eps := svc.Instance().Endpoints; len(eps) != 1 || eps[0].Transport != "web" {
		t.Fatalf("registered %+v, want one endpoint of kind web", eps)
	}
	if _, err := client.New(reg, client.WithTransports("web")); err == nil {
		t.Error("a client listing a kind without a dialer was made")
	}
	dialed := 0
	c := newClient(t, reg, client.WithTransports("web"), client.WithDialer("web", func(addr string, o client.DialOptions) (transport.Client, error) {
		dialed++
		return fhttp.NewClient(addr, fhttp.WithClientMiddleware(o.Middleware...))
	}))
	if r, err := echo(ctx, c, "echo", 9); err != nil || r.N != 9 {
		t.Fatalf("Call() over the plug-in transport = %+v, %v", r, err)
	}
	if dialed != 1 {
		t.Errorf("dialer called %d times, want once", dialed)
	}
}

// Issue #12's error boundary: a handler that returns the error of a call
// it made sends its own caller a sanitized error — the code where it means
// the same, no internal address — and logs the original. A dependency
// with no instances is Unavailable, not NotFound.
func TestErrorBoundary(t *testing.T) {
	reg := newMemory()
	// payments is registered at an address where nothing listens.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	ctx := ctxT(t)
	if err := reg.Register(ctx, registry.Instance{ID: "p1", Service: "payments", Endpoints: []registry.Endpoint{{Transport: "http", Address: "http://" + deadAddr}}}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, reg, client.WithRetry(middleware.RetryPolicy{MaxAttempts: 1}))
	charge := transport.Endpoint[EchoRequest, EchoReply]{Service: "payments", Name: "Charge"}
	refund := transport.Endpoint[EchoRequest, EchoReply]{Service: "refunds", Name: "Refund"}
	for _, passThrough := range []bool{false, true} {
		var logs ferrytest.Buffer
		opts := []server.Option{server.WithLogger(logs.Logger())}
		if passThrough {
			opts = append(opts, server.WithErrorPassThrough())
		}
		srv := server.New("orders", opts...)
		server.Handle(srv, "Place", func(ctx context.Context, r *EchoRequest) (*EchoReply, error) {
			return charge.Call(ctx, c, r)
		})
		server.Handle(srv, "Return", func(ctx context.Context, r *EchoRequest) (*EchoReply, error) {
			return refund.Call(ctx, c, r)
		})
		h := fhttp.NewServer("127.0.0.1:0")
		svc := ferry.New(srv, ferry.WithTransport(h), ferry.WithSignals(), ferry.WithLogger(slog.New(slog.DiscardHandler)))
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		public, err := fhttp.NewClient("http://" + h.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		place := transport.Endpoint[EchoRequest, EchoReply]{Service: "orders", Name: "Place"}
		_, err = place.Call(ctx, public, &EchoRequest{N: 1})
		leaks := strings.Contains(err.Error(), deadAddr)
		switch {
		case errs.CodeOf(err) != errs.Unavailable:
			t.Errorf("passThrough=%v: Place = %v, want unavailable", passThrough, err)
		case !passThrough && leaks:
			t.Errorf("Place = %v, want the dependency's address kept from the public caller", err)
		case passThrough && !leaks:
			t.Errorf("Place with pass-through = %v, want the dependency's error as it is", err)
		}
		if !passThrough && (!strings.Contains(logs.String(), deadAddr) || !strings.Contains(logs.String(), "dependency=payments/Charge")) {
			t.Errorf("log = %s, want the original error with the dependency", logs.String())
		}
		ret := transport.Endpoint[EchoRequest, EchoReply]{Service: "orders", Name: "Return"}
		if _, err := ret.Call(ctx, public, &EchoRequest{N: 1}); errs.CodeOf(err) != errs.Unavailable {
			t.Errorf("passThrough=%v: Return (a dependency without instances) = %v, want unavailable", passThrough, err)
		}
		_ = public.Close()
		if err := svc.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
