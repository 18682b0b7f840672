package ferrytest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry"
)

// Bounds of the registry suites. They are generous so that the suites do
// not flake on a loaded machine; a registry that pushes changes answers in
// milliseconds.
const (
	regTimeout = time.Minute      // one subtest, start to end: a bound only a failure reaches
	regPush    = 10 * time.Second // a change reaching a watcher
	regQuiet   = 200 * time.Millisecond
)

// RegistryConformance runs the shared registry suite: register/lookup round
// trip, isolation of instances and services, replacement, deregistration,
// pushed watch updates, watches on empty services, Stop and context
// cancellation unblocking Next, validation of instances and service names,
// and concurrent registration. A registry that implements registry.Catalog
// also runs the Catalog cases (skipped otherwise): WatchAll's first Next
// holds every service's instances sorted by service then ID, a new
// service, a replacement and a deregistration reach it, a Register that
// changes nothing does not, and Stop and context cancellation unblock its
// Next.
//
// newRegistry returns a registry for one subtest, cleaned up by t; the
// registries of different subtests may share a backend, as every subtest
// uses its own service names. (The Catalog cases look only at their own
// services in what WatchAll returns, so that others' do not disturb them.)
func RegistryConformance(t *testing.T, newRegistry func(t testing.TB) registry.Registry) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, r registry.Registry, svc string)
	}{
		{"RoundTrip", regRoundTrip},
		{"Isolation", regIsolation},
		{"ReRegisterReplaces", regReRegister},
		{"DeregisterRemoves", regDeregister},
		{"WatchPushes", regWatchPushes},
		{"WatchEmptyService", regWatchEmpty},
		{"StopUnblocksNext", regStopUnblocks},
		{"ContextUnblocksNext", regContextUnblocks},
		{"InvalidInstance", regInvalidInstance},
		{"InvalidServiceName", regInvalidService},
		{"ConcurrentRegisters", regConcurrent},
		{"CatalogWatchAll", regCatalogWatchAll},
		{"CatalogStopUnblocksNext", regCatalogStop},
		{"CatalogContextUnblocksNext", regCatalogContext},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), regTimeout)
			defer cancel()
			tt.run(t, ctx, newRegistry(t), fmt.Sprintf("svc-%d", i))
		})
	}
}

// RegistryReadOnlyConformance runs the part of the registry suite that a
// read-only Discovery (one configured with a fixed set of instances, such as
// registry/static) must pass: lookup round trip and isolation, unknown
// services, watches that return the set once and then block, Stop and
// context cancellation unblocking Next, and rejection of invalid service
// names. newDiscovery returns a Discovery holding exactly instances. A
// discovery that implements registry.Catalog also runs the Catalog cases
// (skipped otherwise): WatchAll's first Next returns every instance sorted
// by service then ID and later calls block, until Stop or the end of their
// context.
//
// A discovery that cannot carry every field of an instance (DNS has no
// versions, metadata or free-form IDs) passes WithCarried to say what it
// reports for each instance it was given.
func RegistryReadOnlyConformance(t *testing.T, newDiscovery func(t testing.TB, instances []registry.Instance) registry.Discovery, opts ...ReadOnlyOption) {
	t.Helper()
	var cfg readOnlyConfig
	for _, o := range opts {
		o(&cfg)
	}
	all := []registry.Instance{testInstance("alpha", "a1", 1), testInstance("alpha", "a2", 2), testInstance("beta", "b1", 3)}
	setup := func(t *testing.T) (context.Context, registry.Discovery) {
		ctx, cancel := context.WithTimeout(context.Background(), regTimeout)
		t.Cleanup(cancel)
		return ctx, newDiscovery(t, slices.Clone(all))
	}
	a1, a2, b1 := all[0], all[1], all[2]
	if cfg.carried != nil {
		a1, a2, b1 = cfg.carried(a1), cfg.carried(a2), cfg.carried(b1)
	}

	t.Run("Lookup", func(t *testing.T) {
		ctx, d := setup(t)
		for _, tt := range []struct {
			service string
			want    []registry.Instance
		}{
			{"alpha", []registry.Instance{a1, a2}},
			{"beta", []registry.Instance{b1}},
			{"gamma", nil},
		} {
			got, err := d.Lookup(ctx, tt.service)
			if err != nil {
				t.Fatalf("Lookup(%q) = %v, want nil error", tt.service, err)
			}
			checkSet(t, fmt.Sprintf("Lookup(%q)", tt.service), got, tt.want)
		}
	})
	t.Run("WatchOnceThenBlocks", func(t *testing.T) {
		ctx, d := setup(t)
		w := watch(t, ctx, d, "alpha")
		got, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("first Next(alpha) = %v, want nil error", err)
		}
		checkSet(t, "first Next(alpha)", got, []registry.Instance{a1, a2})
		qctx, cancel := context.WithTimeout(ctx, regQuiet)
		defer cancel()
		if got, err := w.Next(qctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("second Next(alpha) = %v, %v, want to block until ctx ends", got, err)
		}
	})
	t.Run("WatchUnknownService", func(t *testing.T) {
		ctx, d := setup(t)
		w := watch(t, ctx, d, "gamma")
		got, err := w.Next(ctx)
		if err != nil || len(got) != 0 {
			t.Fatalf("first Next(gamma) = %v, %v, want [], nil", got, err)
		}
	})
	t.Run("StopUnblocksNext", func(t *testing.T) {
		ctx, d := setup(t)
		checkStopUnblocks(t, ctx, watch(t, ctx, d, "alpha"))
	})
	t.Run("ContextUnblocksNext", func(t *testing.T) {
		ctx, d := setup(t)
		w := watch(t, ctx, d, "alpha")
		if _, err := w.Next(ctx); err != nil {
			t.Fatalf("first Next(alpha) = %v, want nil error", err)
		}
		checkCancelUnblocks(t, ctx, w)
	})
	t.Run("InvalidServiceName", func(t *testing.T) {
		ctx, d := setup(t)
		checkInvalidService(t, ctx, d)
	})
	t.Run("CatalogWatchAll", func(t *testing.T) {
		ctx, d := setup(t)
		w := watchAll(t, ctx, d)
		got, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("first WatchAll Next = %v, want nil error", err)
		}
		checkCatalogOrder(t, "first WatchAll Next", got)
		checkSet(t, "first WatchAll Next", got, []registry.Instance{a1, a2, b1})
		qctx, cancel := context.WithTimeout(ctx, regQuiet)
		defer cancel()
		if got, err := w.Next(qctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("second WatchAll Next = %v, %v, want to block until ctx ends", got, err)
		}
	})
	t.Run("CatalogStopUnblocksNext", func(t *testing.T) {
		ctx, d := setup(t)
		checkStopUnblocks(t, ctx, watchAll(t, ctx, d))
	})
	t.Run("CatalogContextUnblocksNext", func(t *testing.T) {
		ctx, d := setup(t)
		w := watchAll(t, ctx, d)
		if _, err := w.Next(ctx); err != nil {
			t.Fatalf("first WatchAll Next = %v, want nil error", err)
		}
		checkCancelUnblocks(t, ctx, w)
	})
}

// ReadOnlyOption adjusts RegistryReadOnlyConformance.
type ReadOnlyOption func(*readOnlyConfig)

type readOnlyConfig struct {
	carried func(registry.Instance) registry.Instance
}

// WithCarried tells RegistryReadOnlyConformance what the discovery reports
// for an instance it was given, for discoveries that carry only part of
// one: carried(in) is compared with what Lookup and Watch return.
func WithCarried(carried func(in registry.Instance) registry.Instance) ReadOnlyOption {
	return func(c *readOnlyConfig) { c.carried = carried }
}

// RegistryTTLConformance runs the liveness part of the suite for registries
// that forget instances whose process died: an instance stays registered
// while its registrant heartbeats (for several TTLs), and after crash the
// instance disappears, watchers being told. The TTL is 3s, so that a
// registrant heart-beating every third of it has two seconds to spare on a
// loaded machine; how long the crashed instance took to go is logged, not
// asserted.
//
// newRegistry returns a registry whose entries live for ttl unless
// refreshed, and crash, which must stop its heartbeats without
// deregistering anything, as a killed process would, leaving the registry
// usable for Lookup and Watch.
func RegistryTTLConformance(t *testing.T, newRegistry func(t testing.TB, ttl time.Duration) (registry.Registry, func())) {
	t.Helper()
	const ttl = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), regTimeout)
	defer cancel()
	r, crash := newRegistry(t, ttl)
	in, other := testInstance("ttl", "i1", 1), testInstance("ttl", "i2", 2)
	register(t, ctx, r, in)
	register(t, ctx, r, other)

	w := watch(t, ctx, r, "ttl")
	nextUntil(t, ctx, w, "ttl", []registry.Instance{in, other})

	// Heartbeats keep the instances alive well past the TTL.
	select {
	case <-time.After(2 * ttl):
	case <-ctx.Done():
		t.Fatalf("context ended while waiting: %v", ctx.Err())
	}
	got, err := r.Lookup(ctx, "ttl")
	if err != nil {
		t.Fatalf("Lookup(ttl) after 2 TTLs = %v, want nil error", err)
	}
	checkSet(t, "Lookup(ttl) after 2 TTLs with heartbeats", got, []registry.Instance{in, other})

	// Deregistering one still removes it at once, not at expiry.
	if err := r.Deregister(ctx, other); err != nil {
		t.Fatalf("Deregister(%s) = %v, want nil", other.ID, err)
	}
	nextUntil(t, ctx, w, "ttl", []registry.Instance{in})

	crashed := time.Now()
	crash()
	nextUntil(t, ctx, w, "ttl", nil)
	t.Logf("the crashed instance disappeared after %v (TTL %v)", time.Since(crashed).Round(time.Millisecond), ttl)
	got, err = r.Lookup(ctx, "ttl")
	if err != nil || len(got) != 0 {
		t.Errorf("Lookup(ttl) after crash = %v, %v, want [], nil", got, err)
	}
}

func regRoundTrip(t *testing.T, ctx context.Context, r registry.Registry, svc string) {
	in := testInstance(svc, "id-1", 1)
	register(t, ctx, r, in)
	got, err := r.Lookup(ctx, svc)
	if err != nil {
		t.Fatalf("Lookup(%q) = %v, want nil error", svc, err)
	}
	checkSet(t, fmt.Sprintf("Lookup(%q)", svc), got, []registry.Instance{in})

	// The registry keeps its own copy: changing what was registered or what
	// was returned changes nothing.
	in.Metadata["zone"] = "changed"
	in.Endpoints[0].Address = "changed"
	if len(got) == 1 {
		got[0].Metadata["zone"] = "changed"
	}
	got, err = r.Lookup(ctx, svc)
	if err != nil {
		t.Fatalf("Lookup(%q) = %v, want nil error", svc, err)
	}
	checkSet(t, fmt.Sprintf("Lookup(%q) after mutating copies", svc), got, []registry.Instance{testInstance(svc, "id-1", 1)})
}

func regIsolation(t *testing.T, ctx context.Context, r registry.Registry, svc string) {
	a, b := svc+"-a", svc+"-b"
	a1, a2, b1 := testInstance(a, "x1", 1), testInstance(a, "x2", 2), testInstance(b, "x1", 3)
	for _, in := range []registry.Instance{a1, a2, b1} {
		register(t, ctx, r, in)
	}
	for _, tt := range []struct {
		service string
		want    []registry.Instance
	}{
		{a, []registry.Instance{a1, a2}},
		{b, []registry.Instance{b1}},
		{svc + "-unknown", nil},
		{svc, nil}, // a prefix of the others' names
	} {
		got, err := r.Lookup(ctx, tt.service)
		if err != nil {
			t.Fatalf("Lookup(%q) = %v, want nil error", tt.service, err)
		}
		checkSet(t, fmt.Sprintf("Lookup(%q)", tt.service), got, tt.want)
	}
}

func regReRegister(t *testing.T, ctx context.Context, r registry.Registry, svc string) {
	v1 := testInstance(svc, "same", 1)
	v2 := testInstance(svc, "same", 2)
	register(t, ctx, r, v1)
	register(t, ctx, r, v2)
	got, err := r.Lookup(ctx, svc)
	if err != nil {
		t.Fatalf("Lookup(%q) = %v, want nil error", svc, err)
	}
	checkSet(t, fmt.Sprintf("Lookup(%q) after re-registering", svc), got, []registry.Instance{v2})
}

func regDeregister(t *testing.T, ctx context.Context, r registry.Registry, svc string) {
	i1, i2 := testInstance(svc, "d1", 1), testInstance(svc, "d2", 2)
	register(t, ctx, r, i1)
	register(t, ctx, r, i2)
	if err := r.Deregister(ctx, i1); err != nil {
		t.Fatalf("Deregister(%s) = %v, want nil", i1.ID, err)
	}
	got, err := r.Lookup(ctx, svc)
	if err != nil {
		t.Fatalf("Lookup(%q) = %v, want nil error", svc, err)
	}
	checkSet(t, fmt.Sprintf("Lookup(%q) after Deregister(d1)", svc), got, []registry.Instance{i2})

	// Deregistering is idempotent, and only the ID (with the service)
	// matters.
	if err := r.Deregister(ctx, i1); err != nil {
		t.Errorf("second Deregister(%s) = %v, want nil", i1.ID, err)
	}
	if err := r.Deregister(ctx, registry.Instance{Service: svc, ID: "d2"}); err != nil {
		t.Fatalf("Deregister(%s/d2 without endpoints) = %v, want nil", svc, err)
	}
	got, err = r.Lookup(ctx, svc)
	if err != nil || len(got) != 0 {
		t.Errorf("Lookup(%q) after deregistering all = %v, %v, want [], nil", svc, got, err)
	}
}

func regWatchPushes(t *testing.T, ctx context.Context, r registry.Registry, svc string) {
	i1, i2, i1v7 := testInstance(svc, "w1", 1), testInstance(svc, "w2", 2), testInstance(svc, "w1", 7)
	register(t, ctx, r, i1)
	w := watch(t, ctx, r, svc)
	first := nextWithin(t, ctx, w, regPush)
	checkSet(t, "first Next", first, []registry.Instance{i1})

	steps := []struct {
		name   string
		change func() error
		want   []registry.Instance
	}{
		{"register w2", func() error { return r.Register(ctx, i2) }, []registry.Instance{i1, i2}},
		{"re-register w1", func() error { return r.Register(ctx, i1v7) }, []registry.Instance{i1v7, i2}},
		{"deregister w2", func() error { return r.Deregister(ctx, i2) }, []registry.Instance{i1v7}},
		{"deregister w1", func() error { return r.Deregister(ctx, i1) }, nil},
	}
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatalf("%s = %v, want nil", st.name, err)
		}
		nextUntil(t, ctx, w, "Next after "+st.name, st.want)
	}
}

func regWatchEmpty(t *testing.T, ctx context.Context, r registry.Registry, svc string) {
	w := watch(t, ctx, r, svc)
	got := nextWithin(t, ctx, w, regPush)
	checkSet(t, "first Next on an empty service", got, nil)
	in := testInstance(svc, "late", 1)
	register(t, ctx, r, in)
	nextUntil(t, ctx, w, "Next after register", []registry.Instance{in})
}

func regStopUnblocks(t *testing.T, ctx context.Context, r registry.Registry, svc string) {
	register(t, ctx, r, testInstance(svc, "s1", 1))
	checkStopUnblocks(t, ctx, watch(t, ctx, r, svc))
}

func regContextUnblocks(t *testing.T, ctx context.Context, r registry.Registry, svc string) {
	in := testInstance(svc, "c1", 1)
	register(t, ctx, r, in)
	w := watch(t, ctx, r, svc)
	nextWithin(t, ctx, w, regPush)
	checkCancelUnblocks(t, ctx, w)

	// The watcher still works after a cancelled Next.
	in2 := testInstance(svc, "c2", 2)
	register(t, ctx, r, in2)
	nextUntil(t, ctx, w, "Next after a cancelled Next", []registry.Instance{in, in2})
}

func regInvalidInstance(t *testing.T, ctx context.Context, r registry.Registry, svc string) {
	valid := testInstance(svc, "ok", 1)
	tests := []struct {
		name   string
		mutate func(*registry.Instance)
	}{
		{"empty id", func(in *registry.Instance) { in.ID = "" }},
		{"id with dot", func(in *registry.Instance) { in.ID = "a.b" }},
		{"id with wildcard", func(in *registry.Instance) { in.ID = "*" }},
		{"empty service", func(in *registry.Instance) { in.Service = "" }},
		{"service with dot", func(in *registry.Instance) { in.Service = svc + ".x" }},
		{"service with space", func(in *registry.Instance) { in.Service = "a b" }},
		{"endpoint without address", func(in *registry.Instance) { in.Endpoints[0].Address = "" }},
		{"endpoint without transport", func(in *registry.Instance) { in.Endpoints[1].Transport = "" }},
	}
	for _, tt := range tests {
		in := testInstance(svc, "ok", 1)
		tt.mutate(&in)
		err := r.Register(ctx, in)
		if got := errs.CodeOf(err); got != errs.InvalidArgument {
			t.Errorf("Register(%s) = %v (code %v), want an %v error", tt.name, err, got, errs.InvalidArgument)
		}
	}
	for _, id := range []string{"", "a.b", ">"} {
		err := r.Deregister(ctx, registry.Instance{Service: svc, ID: id})
		if got := errs.CodeOf(err); got != errs.InvalidArgument {
			t.Errorf("Deregister(id %q) = %v (code %v), want an %v error", id, err, got, errs.InvalidArgument)
		}
	}
	// Nothing was stored by the failed calls.
	got, err := r.Lookup(ctx, svc)
	if err != nil || len(got) != 0 {
		t.Errorf("Lookup(%q) after invalid registers = %v, %v, want [], nil", svc, got, err)
	}
	register(t, ctx, r, valid)
	checkInvalidService(t, ctx, r)
}

func regInvalidService(t *testing.T, ctx context.Context, r registry.Registry, _ string) {
	checkInvalidService(t, ctx, r)
}

func regConcurrent(t *testing.T, ctx context.Context, r registry.Registry, svc string) {
	const n = 16
	w := watch(t, ctx, r, svc)
	nextWithin(t, ctx, w, regPush)

	want := make([]registry.Instance, n)
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range n {
		want[i] = testInstance(svc, fmt.Sprintf("c%02d", i), i)
		wg.Go(func() {
			if err := r.Register(ctx, want[i]); err != nil {
				errc <- fmt.Errorf("Register(%s) = %w, want nil", want[i].ID, err)
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	got, err := r.Lookup(ctx, svc)
	if err != nil {
		t.Fatalf("Lookup(%q) = %v, want nil error", svc, err)
	}
	checkSet(t, fmt.Sprintf("Lookup(%q) after %d concurrent registers", svc, n), got, want)
	nextUntil(t, ctx, w, "Next after concurrent registers", want)
}

func regCatalogWatchAll(t *testing.T, ctx context.Context, r registry.Registry, svc string) {
	a, b, c := svc+"-a", svc+"-b", svc+"-c"
	a1, a2, b1, c1 := testInstance(a, "x1", 1), testInstance(a, "x2", 2), testInstance(b, "x1", 3), testInstance(c, "x1", 4)
	a1v5 := testInstance(a, "x1", 5)
	// Registered out of order: WatchAll sorts.
	for _, in := range []registry.Instance{b1, a2, a1} {
		register(t, ctx, r, in)
	}
	w := ownServices(t, watchAll(t, ctx, r), svc)
	first := nextWithin(t, ctx, w, regPush)
	checkSet(t, "first WatchAll Next", first, []registry.Instance{a1, a2, b1})
	// What Next returned is the caller's: changing it changes nothing the
	// watcher returns later.
	for _, in := range first {
		in.Metadata["zone"] = "changed"
		in.Endpoints[0].Address = "changed"
	}

	steps := []struct {
		name   string
		change func() error
		want   []registry.Instance
	}{
		{"register a third service", func() error { return r.Register(ctx, c1) }, []registry.Instance{a1, a2, b1, c1}},
		{"deregister " + b + "/x1", func() error { return r.Deregister(ctx, b1) }, []registry.Instance{a1, a2, c1}},
		{"deregister " + a + "/x2", func() error { return r.Deregister(ctx, a2) }, []registry.Instance{a1, c1}},
	}
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatalf("%s = %v, want nil", st.name, err)
		}
		nextUntil(t, ctx, w, "WatchAll Next after "+st.name, st.want)
	}

	// A Register that changes nothing (what a heartbeat does) ends no Next:
	// one waiting across it returns the change that follows. (ownServices
	// also fails the test on any Next that repeats the last set.)
	got := make(chan []registry.Instance, 1)
	go func() {
		set, err := w.Next(ctx)
		if err != nil {
			t.Errorf("WatchAll Next across an unchanged Register = %v, want nil error", err)
		}
		got <- set
	}()
	time.Sleep(regQuiet) // let Next start waiting; the check holds either way
	register(t, ctx, r, a1)
	register(t, ctx, r, a1v5)
	checkSet(t, "WatchAll Next across an unchanged Register, then a change", <-got, []registry.Instance{a1v5, c1})
}

func regCatalogStop(t *testing.T, ctx context.Context, r registry.Registry, svc string) {
	register(t, ctx, r, testInstance(svc, "s1", 1))
	checkStopUnblocks(t, ctx, ownServices(t, watchAll(t, ctx, r), svc))
}

func regCatalogContext(t *testing.T, ctx context.Context, r registry.Registry, svc string) {
	// WatchAll before the subtest registers anything: the first Next
	// returns at once all the same.
	w := ownServices(t, watchAll(t, ctx, r), svc)
	got := nextWithin(t, ctx, w, regPush)
	checkSet(t, "first WatchAll Next with none of the subtest's services", got, nil)
	checkCancelUnblocks(t, ctx, w)

	// The watcher still works after a cancelled Next.
	in := testInstance(svc, "c1", 1)
	register(t, ctx, r, in)
	nextUntil(t, ctx, w, "WatchAll Next after a cancelled Next", []registry.Instance{in})
}

// watchAll calls WatchAll on d, skipping the test when d is not a
// registry.Catalog.
func watchAll(t *testing.T, ctx context.Context, d registry.Discovery) registry.Watcher {
	t.Helper()
	c, ok := d.(registry.Catalog)
	if !ok {
		t.Skipf("%T does not implement registry.Catalog", d)
	}
	w, err := c.WatchAll(ctx)
	if err != nil {
		t.Fatalf("WatchAll = %v, want nil error", err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	return w
}

// ownServices shows a WatchAll watcher through the services of one subtest
// (svc and the names that start with svc+"-"), whatever other subtests
// sharing the backend do: its Next returns when their part of the set
// differs. It checks what every inner Next returns: the whole set sorted by
// service then ID, and never the set the previous call returned.
func ownServices(t *testing.T, w registry.Watcher, svc string) registry.Watcher {
	return &ownWatcher{t: t, w: w, svc: svc}
}

type ownWatcher struct {
	t   *testing.T
	w   registry.Watcher
	svc string

	mu       sync.Mutex // serialises Next
	prev     []registry.Instance
	returned bool
	repeated bool // a repeated set was reported
	last     []registry.Instance
	started  bool
}

func (o *ownWatcher) Next(ctx context.Context) ([]registry.Instance, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err // a watcher that repeats itself would keep this loop going
		}
		all, err := o.w.Next(ctx)
		if err != nil {
			return nil, err
		}
		checkCatalogOrder(o.t, "WatchAll Next", all)
		if o.returned && sameSet(all, o.prev) && !o.repeated {
			o.repeated = true // once: such a Next may return at once, over and over
			o.t.Errorf("WatchAll Next returned the set it returned last, %s; want a set that differs", format(all))
		}
		o.prev, o.returned = all, true
		var own []registry.Instance
		for _, in := range all {
			if in.Service == o.svc || strings.HasPrefix(in.Service, o.svc+"-") {
				own = append(own, in)
			}
		}
		if !o.started || !sameSet(own, o.last) {
			o.last, o.started = own, true
			return registry.Clone(own), nil
		}
	}
}

func (o *ownWatcher) Stop() error { return o.w.Stop() }

// checkCatalogOrder checks that set is sorted by service then ID without
// duplicates, as registry.Catalog promises.
func checkCatalogOrder(t *testing.T, what string, set []registry.Instance) {
	t.Helper()
	for i := 1; i < len(set); i++ {
		p, c := set[i-1], set[i]
		if cmp.Or(cmp.Compare(p.Service, c.Service), cmp.Compare(p.ID, c.ID)) >= 0 {
			t.Errorf("%s: %s/%s before %s/%s, want the set sorted by service then ID, each once", what, p.Service, p.ID, c.Service, c.ID)
		}
	}
}

func checkStopUnblocks(t *testing.T, ctx context.Context, w registry.Watcher) {
	t.Helper()
	if _, err := w.Next(ctx); err != nil {
		t.Fatalf("first Next = %v, want nil error", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.Next(ctx)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("second Next returned %v before Stop, want it to block", err)
	case <-time.After(regQuiet):
	}
	if err := w.Stop(); err != nil {
		t.Errorf("Stop() = %v, want nil", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, registry.ErrWatcherStopped) {
			t.Errorf("Next after Stop = %v, want %v", err, registry.ErrWatcherStopped)
		}
	case <-time.After(regPush):
		t.Fatalf("Next still blocked %v after Stop", regPush)
	}
	if _, err := w.Next(ctx); !errors.Is(err, registry.ErrWatcherStopped) {
		t.Errorf("Next on a stopped watcher = %v, want %v", err, registry.ErrWatcherStopped)
	}
	if err := w.Stop(); err != nil {
		t.Errorf("second Stop() = %v, want nil", err)
	}
}

// checkCancelUnblocks checks that cancelling its context unblocks a Next
// that waits for a change.
func checkCancelUnblocks(t *testing.T, ctx context.Context, w registry.Watcher) {
	t.Helper()
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := w.Next(cctx)
		done <- err
	}()
	select {
	case err := <-done:
		cancel()
		t.Fatalf("Next returned %v with nothing changed, want it to block", err)
	case <-time.After(regQuiet):
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Next after cancel = %v, want %v", err, context.Canceled)
		}
	case <-time.After(regPush):
		t.Fatalf("Next still blocked %v after its context was cancelled", regPush)
	}
}

func checkInvalidService(t *testing.T, ctx context.Context, d registry.Discovery) {
	t.Helper()
	for _, name := range []string{"", "a.b", "a.*", ">", "a b", "1abc"} {
		if got, err := d.Lookup(ctx, name); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Lookup(%q) = %v, %v, want an %v error", name, got, err, errs.InvalidArgument)
		}
		w, err := d.Watch(ctx, name)
		if errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Watch(%q) = %v, want an %v error", name, err, errs.InvalidArgument)
		}
		if w != nil {
			_ = w.Stop()
		}
	}
}

// testInstance returns an instance with every field set; n varies the
// contents.
func testInstance(service, id string, n int) registry.Instance {
	return registry.Instance{
		ID:      id,
		Service: service,
		Version: fmt.Sprintf("v1.%d.0", n),
		Endpoints: []registry.Endpoint{
			{Transport: "http", Address: fmt.Sprintf("http://127.0.0.%d:8080", n+1)},
			{Transport: "grpc", Address: fmt.Sprintf("127.0.0.%d:9090", n+1)},
			{Transport: "nats", Address: "nats://127.0.0.1:4222"},
		},
		Metadata: map[string]string{"zone": fmt.Sprintf("z%d", n), "build": "test"},
	}
}

func register(t *testing.T, ctx context.Context, r registry.Registrar, in registry.Instance) {
	t.Helper()
	if err := r.Register(ctx, in); err != nil {
		t.Fatalf("Register(%s/%s) = %v, want nil", in.Service, in.ID, err)
	}
}

func watch(t *testing.T, ctx context.Context, d registry.Discovery, service string) registry.Watcher {
	t.Helper()
	w, err := d.Watch(ctx, service)
	if err != nil {
		t.Fatalf("Watch(%q) = %v, want nil error", service, err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	return w
}

// nextWithin calls Next once, failing the test unless it returns a set
// within d.
func nextWithin(t *testing.T, ctx context.Context, w registry.Watcher, d time.Duration) []registry.Instance {
	t.Helper()
	nctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	got, err := w.Next(nctx)
	if err != nil {
		t.Fatalf("Next = %v, want a set within %v", err, d)
	}
	return got
}

// nextUntil calls Next until it returns want (sets may pass through
// intermediate states when changes are close together), failing the test
// if that takes longer than regPush.
func nextUntil(t *testing.T, ctx context.Context, w registry.Watcher, what string, want []registry.Instance) {
	t.Helper()
	nctx, cancel := context.WithTimeout(ctx, regPush)
	defer cancel()
	var last []registry.Instance
	for {
		got, err := w.Next(nctx)
		if err != nil {
			if nctx.Err() != nil {
				t.Fatalf("%s: Next = %v after %v; last set %s, want %s", what, err, regPush, format(last), format(want))
			}
			// A registry that cannot be reached for a moment reports it;
			// the watcher stays usable.
			t.Logf("%s: Next = %v, retrying", what, err)
			continue
		}
		last = got
		if sameSet(got, want) {
			return
		}
	}
}

func checkSet(t *testing.T, what string, got, want []registry.Instance) {
	t.Helper()
	if !sameSet(got, want) {
		t.Errorf("%s = %s, want %s", what, format(got), format(want))
	}
}

func sameSet(got, want []registry.Instance) bool {
	return reflect.DeepEqual(normalize(got), normalize(want))
}

// normalize sorts by service and ID and treats nil and empty
// collections alike.
func normalize(ins []registry.Instance) []registry.Instance {
	out := make([]registry.Instance, 0, len(ins))
	for _, in := range ins {
		if len(in.Endpoints) == 0 {
			in.Endpoints = nil
		}
		if len(in.Metadata) == 0 {
			in.Metadata = nil
		} else {
			in.Metadata = maps.Clone(in.Metadata)
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b registry.Instance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func format(ins []registry.Instance) string {
	ins = normalize(ins)
	if len(ins) == 0 {
		return "[]"
	}
	return fmt.Sprintf("%+v", ins)
}
