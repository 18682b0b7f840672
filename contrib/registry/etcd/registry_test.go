package etcd_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	etcdreg "github.com/ferry-go/ferry/contrib/registry/etcd"
	"github.com/ferry-go/ferry/contrib/registry/etcd/internal/etcdtest"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	goleak.VerifyTestMain(m)
}

func newRegistry(t testing.TB, cli *clientv3.Client, opts ...etcdreg.Option) *etcdreg.Registry {
	t.Helper()
	r, err := etcdreg.New(cli, opts...)
	if err != nil {
		t.Fatalf("New(%v) = %v, want nil", opts, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestConformance(t *testing.T) {
	s := etcdtest.Start(t)
	cli := s.Client(t)
	ferrytest.RegistryConformance(t, func(t testing.TB) registry.Registry {
		return newRegistry(t, cli)
	})
}

// The registry made by Dial owns its client, and passes the suite too.
func TestConformanceDialed(t *testing.T) {
	s := etcdtest.Start(t)
	ferrytest.RegistryConformance(t, func(t testing.TB) registry.Registry {
		r, err := etcdreg.Dial(ferrytest.Context(t), clientv3.Config{Endpoints: []string{s.URL}, DialTimeout: 10 * time.Second},
			etcdreg.WithPrefix("/dialed"))
		if err != nil {
			t.Fatalf("Dial = %v, want nil", err)
		}
		t.Cleanup(func() {
			if err := r.Close(); err != nil {
				t.Errorf("Close = %v, want nil", err)
			}
		})
		return r
	})
}

func TestTTLConformance(t *testing.T) {
	s := etcdtest.Start(t)
	cli := s.Client(t)
	ferrytest.RegistryTTLConformance(t, func(t testing.TB, ttl time.Duration) (registry.Registry, func()) {
		r := newRegistry(t, cli, etcdreg.WithTTL(ttl))
		return r, func() { _ = r.Close() }
	})
}

func TestInvalidOptions(t *testing.T) {
	s := etcdtest.Start(t)
	cli := s.Client(t)
	for name, opts := range map[string][]etcdreg.Option{
		"TTL under a second":   {etcdreg.WithTTL(500 * time.Millisecond)},
		"empty prefix":         {etcdreg.WithPrefix("")},
		"relative prefix":      {etcdreg.WithPrefix("ferry/")},
		"prefix with a space":  {etcdreg.WithPrefix("/a b/")},
		"two bad, both listed": {etcdreg.WithPrefix(""), etcdreg.WithTTL(0)},
	} {
		r, err := etcdreg.New(cli, opts...)
		if errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("New(%s) = %v, %v, want an %v error", name, r, err, errs.InvalidArgument)
		}
		if name == "two bad, both listed" && (!strings.Contains(err.Error(), "prefix") || !strings.Contains(err.Error(), "TTL")) {
			t.Errorf("New(%s) = %v, want both problems named", name, err)
		}
	}
	if r, err := etcdreg.New(nil); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("New(nil) = %v, %v, want an %v error", r, err, errs.InvalidArgument)
	}
	ctx := ferrytest.Context(t)
	if r, err := etcdreg.Dial(ctx, clientv3.Config{}); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Dial(no endpoints) = %v, %v, want an %v error", r, err, errs.InvalidArgument)
	}
	if r, err := etcdreg.Dial(ctx, clientv3.Config{Endpoints: []string{s.URL}}, etcdreg.WithTTL(0)); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Dial(TTL 0) = %v, %v, want an %v error", r, err, errs.InvalidArgument)
	}
	r := newRegistry(t, cli, etcdreg.WithPrefix("/p"), etcdreg.WithTTL(1500*time.Millisecond))
	if got, want := r.Prefix(), "/p/"; got != want {
		t.Errorf("Prefix() = %q, want %q", got, want)
	}
	if got, want := r.TTL(), 2*time.Second; got != want {
		t.Errorf("TTL() = %v, want %v (rounded up to whole seconds)", got, want)
	}
}

// Dial reports a cluster it cannot reach, within its dial timeout, as
// Unavailable.
func TestDialUnreachable(t *testing.T) {
	start := time.Now()
	r, err := etcdreg.Dial(ferrytest.Context(t), clientv3.Config{Endpoints: []string{"127.0.0.1:1"}, DialTimeout: 500 * time.Millisecond})
	if errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("Dial(127.0.0.1:1) = %v, %v, want an %v error", r, err, errs.Unavailable)
	}
	t.Logf("Dial of an unreachable cluster failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

// Instances live as "<prefix><service>/<id>" = the instance's JSON, on a
// lease of the registry's TTL; Deregister revokes the lease.
func TestLayout(t *testing.T) {
	ctx := ferrytest.Context(t)
	s := etcdtest.Start(t)
	cli := s.Client(t)
	r := newRegistry(t, cli, etcdreg.WithTTL(5*time.Second))
	in := registry.Instance{ID: "i1", Service: "svc", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "127.0.0.1:1"}}}
	if err := r.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "/ferry/services/svc/i1")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("Get(/ferry/services/svc/i1) = %v, %v, want one key", resp, err)
	}
	kv := resp.Kvs[0]
	if got, want := string(kv.Value), `{"id":"i1","service":"svc","endpoints":[{"transport":"grpc","address":"127.0.0.1:1"}]}`; got != want {
		t.Errorf("value = %s, want %s", got, want)
	}
	ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
	if err != nil || ttl.GrantedTTL != 5 {
		t.Errorf("TimeToLive(lease of the key) = %+v, %v, want granted TTL 5", ttl, err)
	}
	if err := r.Deregister(ctx, in); err != nil {
		t.Fatal(err)
	}
	if ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease)); err != nil || ttl.TTL != -1 {
		t.Errorf("TimeToLive(lease) after Deregister = %+v, %v, want the lease revoked (TTL -1)", ttl, err)
	}
	// Keys under the prefix that are not instances are ignored.
	for key, value := range map[string]string{
		"/ferry/services/svc/i2":     "not json",
		"/ferry/services/svc/i3":     `{"id":"other","service":"svc","endpoints":[]}`,
		"/ferry/services/svc/x/i4":   `{"id":"i4","service":"svc","endpoints":[]}`,
		"/ferry/services/other/i5":   `{"id":"i5","service":"svc","endpoints":[]}`,
		"/ferry/services/svc-b/i6.x": `{"id":"i6.x","service":"svc-b","endpoints":[]}`,
	} {
		if _, err := cli.Put(ctx, key, value); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.Lookup(ctx, "svc")
	if err != nil || len(got) != 0 {
		t.Errorf("Lookup(svc) with foreign keys only = %v, %v, want [], nil", got, err)
	}
	w, err := r.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if got, err := w.Next(ctx); err != nil || len(got) != 0 {
		t.Errorf("WatchAll Next with foreign keys only = %v, %v, want [], nil", got, err)
	}
}

// A registry made by New leaves the client to its owner: after Close,
// Register fails, Lookup, Watch and Deregister work, and the instances
// stay until their TTL. One made by Dial closes its client: watchers end
// with a FailedPrecondition error.
func TestClose(t *testing.T) {
	ctx := ferrytest.Context(t)
	s := etcdtest.Start(t)
	cli := s.Client(t)
	in := registry.Instance{ID: "i1", Service: "svc", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "127.0.0.1:1"}}}

	r := newRegistry(t, cli)
	if err := r.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	if err := r.Register(ctx, in); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Errorf("Register after Close = %v, want a %v error", err, errs.FailedPrecondition)
	}
	if got, err := r.Lookup(ctx, "svc"); err != nil || len(got) != 1 {
		t.Errorf("Lookup after Close = %v, %v, want the instance, still within its TTL", got, err)
	}
	if err := r.Deregister(ctx, in); err != nil {
		t.Errorf("Deregister after Close = %v, want nil", err)
	}

	d, err := etcdreg.Dial(ctx, clientv3.Config{Endpoints: []string{s.URL}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := d.Watch(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := w.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close of a dialled registry = %v, want nil", err)
	}
	if _, err := w.Next(ctx); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Errorf("Next after the client closed = %v, want a %v error", err, errs.FailedPrecondition)
	}
	if _, err := d.Lookup(ctx, "svc"); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Errorf("Lookup after Close of a dialled registry = %v, want a %v error", err, errs.FailedPrecondition)
	}
}

// logs records what a registry logs.
type logs struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, string(p))
	return len(p), nil
}

func (l *logs) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.msgs, "")
}

// nextUntil calls Next until cond holds for the set it returns.
func nextUntil(t *testing.T, ctx context.Context, w registry.Watcher, what string, cond func([]registry.Instance) bool) []registry.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, ferrytest.WaitBound)
	defer cancel()
	for {
		set, err := w.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("%s: still not after %v: %v", what, ferrytest.WaitBound, err)
			}
			t.Logf("%s: Next = %v, retrying", what, err)
			continue
		}
		if cond(set) {
			return set
		}
	}
}

func has(id string) func([]registry.Instance) bool {
	return func(set []registry.Instance) bool {
		for _, in := range set {
			if in.ID == id {
				return true
			}
		}
		return false
	}
}

func hasNot(id string) func([]registry.Instance) bool {
	return func(set []registry.Instance) bool { return !has(id)(set) }
}
