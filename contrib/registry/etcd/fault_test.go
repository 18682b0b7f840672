package etcd_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	etcdreg "github.com/ferry-go/ferry/contrib/registry/etcd"
	"github.com/ferry-go/ferry/contrib/registry/etcd/internal/etcdtest"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/registry"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// childEnv makes the test binary a process that registers one instance
// (TestKilledChild); its value is the etcd URL.
const childEnv = "FERRY_ETCD_TEST_CHILD"

// childTTL is the child's lease TTL: etcd grants no less than 2s with its
// default election timeout.
const childTTL = 2 * time.Second

// runChild registers the instance "child-<pid>" in the etcd at url,
// prints "ready <id>", and deregisters when stdin closes — unless it was
// killed first.
func runChild(url string) int {
	ctx := context.Background()
	r, err := etcdreg.Dial(ctx, clientv3.Config{Endpoints: []string{url}, DialTimeout: 10 * time.Second}, etcdreg.WithTTL(childTTL))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	in := registry.Instance{ID: fmt.Sprintf("child-%d", os.Getpid()), Service: "crash",
		Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "127.0.0.1:1"}}}
	if err := r.Register(ctx, in); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	fmt.Println("ready", in.ID)
	_, _ = io.Copy(io.Discard, os.Stdin)
	err = r.Deregister(ctx, in)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// TestKilledChild: an instance whose process was SIGKILLed (no
// Deregister, no revoke) leaves every watcher once its lease expires.
func TestKilledChild(t *testing.T) {
	ctx := ferrytest.Context(t)
	s := etcdtest.Start(t)
	r := newRegistry(t, s.Client(t))
	w, err := r.Watch(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	all, err := r.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer all.Stop()

	child := ferrytest.StartChild(t, childEnv, s.URL)
	id := child.Ready
	nextUntil(t, ctx, w, "the child's instance appears", has(id))
	nextUntil(t, ctx, all, "the child's instance appears in WatchAll", has(id))
	killed := time.Now()
	if err := child.Kill(); err != nil {
		t.Fatal(err)
	}
	nextUntil(t, ctx, w, "the killed child's instance disappears", hasNot(id))
	t.Logf("the killed child's instance left the watcher %v after SIGKILL (lease TTL %v)", time.Since(killed).Round(time.Millisecond), childTTL)
	nextUntil(t, ctx, all, "the killed child's instance disappears from WatchAll", hasNot(id))
	if got, err := r.Lookup(ctx, "crash"); err != nil || len(got) != 0 {
		t.Errorf("Lookup(crash) after the kill = %v, %v, want [], nil", got, err)
	}
}

// TestLeaseLost: a lease revoked behind the registry's back (by another
// client: what an expiry during a partition amounts to) is granted
// again, and the instance put again on it; the loss is logged. Each
// round revokes the lease the previous one brought back, which the
// registry can only notice by keeping that new lease alive.
func TestLeaseLost(t *testing.T) {
	ctx := ferrytest.Context(t)
	s := etcdtest.Start(t)
	other := s.Client(t)
	var log logs
	r := newRegistry(t, s.Client(t), etcdreg.WithTTL(2*time.Second),
		etcdreg.WithLogger(slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	in := registry.Instance{ID: "l1", Service: "lease", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "127.0.0.1:1"}}}
	if err := r.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	key := r.Key(in)
	resp, err := other.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("Get(%s) = %v, %v, want the key", key, resp, err)
	}
	lost := clientv3.LeaseID(resp.Kvs[0].Lease)
	w, err := r.Watch(ctx, "lease")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	nextUntil(t, ctx, w, "the instance is watched", has("l1"))
	events := other.Watch(ctx, key, clientv3.WithRev(resp.Header.Revision+1))

	const rounds = 3
	for round := range rounds {
		revoked := time.Now()
		if _, err := other.Revoke(ctx, lost); err != nil {
			t.Fatalf("round %d: Revoke = %v", round, err)
		}
		// Every event reaches a raw watch: the key goes with the lease,
		// then comes back on a new one.
		var seen []mvccpb.Event_EventType
		var back clientv3.LeaseID
		for back == 0 {
			select {
			case wr, ok := <-events:
				if !ok || wr.Err() != nil {
					t.Fatalf("round %d: raw watch ended: %v", round, wr.Err())
				}
				for _, ev := range wr.Events {
					seen = append(seen, ev.Type)
					if ev.Type == mvccpb.PUT {
						back = clientv3.LeaseID(ev.Kv.Lease)
					}
				}
			case <-ctx.Done():
				t.Fatalf("round %d: the instance did not come back: events %v", round, seen)
			}
		}
		if len(seen) != 2 || seen[0] != mvccpb.DELETE || back == lost {
			t.Errorf("round %d: events %v on lease %x (was %x), want DELETE then PUT on a new lease", round, seen, back, lost)
		}
		t.Logf("round %d: registered again %v after the revoke", round, time.Since(revoked).Round(time.Millisecond))
		if got, err := r.Lookup(ctx, "lease"); err != nil || !has("l1")(got) {
			t.Errorf("round %d: Lookup(lease) = %v, %v, want the instance back", round, got, err)
		}
		lost = back
	}
	ferrytest.Eventually(t, "every loss logged", func() bool {
		return log.count("registry lease lost") == rounds && log.count("registered again") == rounds
	})
	if err := r.Deregister(ctx, in); err != nil {
		t.Fatal(err)
	}
	// The watcher followed: whether or not its Next saw the gaps, it sees
	// the deregistration.
	nextUntil(t, ctx, w, "the deregistered instance goes", hasNot("l1"))
	t.Logf("log:\n%s", log.String())
}

// TestCompaction: compacting the store while watches run changes nothing
// they report; a watch that needs a compacted revision lists again and
// reports the current set.
func TestCompaction(t *testing.T) {
	ctx := ferrytest.Context(t)
	s := etcdtest.Start(t)
	cli := s.Client(t)
	var log logs
	r := newRegistry(t, cli, etcdreg.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	inst := func(id string) registry.Instance {
		return registry.Instance{ID: id, Service: "cmp", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "127.0.0.1:1"}}}
	}
	register := func(id string) {
		t.Helper()
		if err := r.Register(ctx, inst(id)); err != nil {
			t.Fatal(err)
		}
	}
	compact := func() {
		t.Helper()
		resp, err := cli.Get(ctx, "any")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
			t.Fatal(err)
		}
	}

	w, err := r.Watch(ctx, "cmp")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	all, err := r.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer all.Stop()
	start, err := cli.Get(ctx, "any")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		register(fmt.Sprintf("c%d", i))
	}
	if err := r.Deregister(ctx, inst("c0")); err != nil {
		t.Fatal(err)
	}
	compact()
	register("c9")
	want := func(set []registry.Instance) bool {
		return len(set) == 5 && !has("c0")(set) && has("c9")(set)
	}
	nextUntil(t, ctx, w, "Watch after a compaction", want)
	nextUntil(t, ctx, all, "WatchAll after a compaction", want)

	// A watch from a revision compacted away fails ErrCompacted, lists
	// again and reports the set as it is.
	behind := etcdreg.WatchFrom(ctx, r, "cmp", start.Header.Revision)
	defer behind.Stop()
	got := nextUntil(t, ctx, behind, "a watch behind the compaction catches up", want)
	t.Logf("watch from compacted revision %d reports %d instances", start.Header.Revision, len(got))
	ferrytest.Eventually(t, "the compaction logged", func() bool { return log.count("registry watch compacted") >= 1 })
	// And it keeps following.
	if err := r.Deregister(ctx, inst("c9")); err != nil {
		t.Fatal(err)
	}
	nextUntil(t, ctx, behind, "the caught-up watch follows", hasNot("c9"))
}

// TestOutage: while etcd is down, watchers keep their last set (Next may
// report the outage); once it is back they report the set as it is, and
// the registry's instances are still there (their leases kept alive
// again, or granted again).
func TestOutage(t *testing.T) {
	ctx := ferrytest.Context(t)
	s := etcdtest.Start(t)
	var log logs
	r := newRegistry(t, s.Client(t), etcdreg.WithTTL(5*time.Second),
		etcdreg.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	inst := func(id string) registry.Instance {
		return registry.Instance{ID: id, Service: "outage", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "127.0.0.1:1"}}}
	}
	if err := r.Register(ctx, inst("o1")); err != nil {
		t.Fatal(err)
	}
	w, err := r.Watch(ctx, "outage")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	all, err := r.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer all.Stop()
	nextUntil(t, ctx, w, "the instance is watched", has("o1"))
	nextUntil(t, ctx, all, "the instance is watched by WatchAll", has("o1"))

	s.Stop()
	down := time.Now()
	s.Restart(t)
	t.Logf("etcd was down %v", time.Since(down).Round(time.Millisecond))

	// A put may fail while the client reconnects; it is retried.
	ferrytest.Eventually(t, "Register after the restart", func() bool {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return r.Register(rctx, inst("o2")) == nil
	})
	t.Logf("Register succeeded %v after the restart began", time.Since(down).Round(time.Millisecond))
	both := func(set []registry.Instance) bool { return has("o1")(set) && has("o2")(set) }
	nextUntil(t, ctx, w, "Watch after the restart", both)
	nextUntil(t, ctx, all, "WatchAll after the restart", both)
	t.Logf("watchers had both instances %v after the restart began", time.Since(down).Round(time.Millisecond))
	if err := r.Deregister(ctx, inst("o1")); err != nil {
		t.Fatal(err)
	}
	nextUntil(t, ctx, w, "Watch follows after the restart", hasNot("o1"))
	t.Logf("log:\n%s", log.String())
}
