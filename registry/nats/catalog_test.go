package nats_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/registry"
	natsreg "github.com/ferry-go/ferry/registry/nats"
	"github.com/nats-io/nats.go/jetstream"
)

// keys returns "<service>/<id>" of each instance, in order.
func keys(set []registry.Instance) string {
	s := make([]string, len(set))
	for i, in := range set {
		s[i] = in.Service + "/" + in.ID
	}
	return strings.Join(s, ",")
}

// TestWatchAllHeartbeatsAndExpiry follows a bucket shared by three
// processes — one that lives, one that is killed, and a gateway that
// watches every service — each with a connection of its own:
//
//   - heartbeats re-put both instances many times, yet a WatchAll Next
//     waiting across them returns only the change that follows (a new
//     instance), so a heartbeat alone produces no Next;
//   - once the killed process's heartbeats stop, its instance ages out of
//     the bucket and the very next Next is the set without it: the expiry
//     marker reaches WatchAll, and nothing else (the live instance's
//     heartbeats) produced a set in between.
//
// How long expiry took is logged against the TTL, not asserted.
func TestWatchAllHeartbeatsAndExpiry(t *testing.T) {
	const (
		ttl    = 3 * time.Second
		bucket = "catalog_ttl"
	)
	ctx := ferrytest.Context(t)
	s := ferrytest.NATS(t)
	newProcess := func(opts ...natsreg.Option) (*natsreg.Registry, jetstream.JetStream) {
		_, js := jetStream(t, s.ClientURL())
		return newRegistry(t, js, append([]natsreg.Option{natsreg.WithBucket(bucket), natsreg.WithTTL(ttl)}, opts...)...), js
	}
	live, _ := newProcess(natsreg.WithHeartbeat(100 * time.Millisecond))
	doomed, _ := newProcess(natsreg.WithHeartbeat(100 * time.Millisecond))
	gateway, js := newProcess()

	o1 := registry.Instance{ID: "o1", Service: "orders", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "127.0.0.1:1"}}}
	o2 := registry.Instance{ID: "o2", Service: "orders", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "127.0.0.1:2"}}}
	u1 := registry.Instance{ID: "u1", Service: "users", Endpoints: []registry.Endpoint{{Transport: "http", Address: "http://127.0.0.1:3"}}}
	if err := doomed.Register(ctx, u1); err != nil {
		t.Fatalf("Register(users/u1) = %v, want nil", err)
	}
	if err := live.Register(ctx, o1); err != nil {
		t.Fatalf("Register(orders/o1) = %v, want nil", err)
	}

	w, err := gateway.WatchAll(ctx)
	if err != nil {
		t.Fatalf("WatchAll = %v, want nil", err)
	}
	defer w.Stop()
	if got, err := w.Next(ctx); err != nil || keys(got) != "orders/o1,users/u1" {
		t.Fatalf("first WatchAll Next = %s, %v, want orders/o1,users/u1", keys(got), err)
	}

	// A Next waits across the heartbeats.
	type result struct {
		set []registry.Instance
		err error
	}
	next := func() <-chan result {
		c := make(chan result, 1)
		go func() {
			nctx, cancel := context.WithTimeout(ctx, ferrytest.WaitBound)
			defer cancel()
			set, err := w.Next(nctx)
			c <- result{set, err}
		}()
		return c
	}
	pending := next()

	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatalf("KeyValue(%s) = %v", bucket, err)
	}
	// Each change of a key's revision seen here is at least one heartbeat.
	const beats = 5
	revs, seen := map[string]uint64{}, map[string]int{}
	for _, key := range []string{"orders.o1", "users.u1"} {
		e, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get(%s) = %v", key, err)
		}
		revs[key] = e.Revision()
	}
	ferrytest.Eventually(t, "heartbeats of both instances", func() bool {
		for key, rev := range revs {
			e, err := kv.Get(ctx, key)
			if err != nil {
				t.Fatalf("Get(%s) = %v", key, err)
			}
			if e.Revision() != rev {
				revs[key] = e.Revision()
				seen[key]++
			}
		}
		return seen["orders.o1"] >= beats && seen["users.u1"] >= beats
	})
	select {
	case r := <-pending:
		t.Fatalf("WatchAll Next returned %s, %v after heartbeats alone, want it to wait for a change", keys(r.set), r.err)
	default:
	}
	if err := live.Register(ctx, o2); err != nil {
		t.Fatalf("Register(orders/o2) = %v, want nil", err)
	}
	if r := <-pending; r.err != nil || keys(r.set) != "orders/o1,orders/o2,users/u1" {
		t.Fatalf("WatchAll Next across %d+ heartbeats of each instance, then a registration = %s, %v; want orders/o1,orders/o2,users/u1",
			beats, keys(r.set), r.err)
	}

	// The process behind users/u1 dies: its heartbeats stop, nothing is
	// deleted, and the instance ages out.
	pending = next()
	crashed := time.Now()
	if err := doomed.Close(); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	if r := <-pending; r.err != nil || keys(r.set) != "orders/o1,orders/o2" {
		t.Fatalf("WatchAll Next after the process behind users/u1 died = %s, %v; want orders/o1,orders/o2 (TTL %v)", keys(r.set), r.err, ttl)
	}
	t.Logf("users/u1 left WatchAll %v after its heartbeats stopped (TTL %v)", time.Since(crashed).Round(time.Millisecond), ttl)
	if got, err := gateway.Lookup(ctx, "users"); err != nil || len(got) != 0 {
		t.Errorf("Lookup(users) after expiry = %s, %v, want none", keys(got), err)
	}
}

// TestWatchAllForeignKeysIgnored: the bucket may hold keys of any shape,
// written by other clients. WatchAll shows only "<service>.<id>" keys that
// hold that instance; writing or deleting the others produces no Next.
func TestWatchAllForeignKeysIgnored(t *testing.T) {
	ctx := testCtx(t)
	s := ferrytest.NATS(t)
	_, js := jetStream(t, s.ClientURL())
	r := newRegistry(t, js)
	good := registry.Instance{ID: "good", Service: "svc"}
	if err := r.Register(ctx, good); err != nil {
		t.Fatalf("Register = %v, want nil", err)
	}
	kv, err := js.KeyValue(ctx, natsreg.DefaultBucket)
	if err != nil {
		t.Fatalf("KeyValue = %v", err)
	}
	w, err := r.WatchAll(ctx)
	if err != nil {
		t.Fatalf("WatchAll = %v", err)
	}
	defer w.Stop()
	if got, err := w.Next(ctx); err != nil || keys(got) != "svc/good" {
		t.Fatalf("first WatchAll Next = %s, %v, want svc/good", keys(got), err)
	}
	foreign := map[string]string{
		"svc.garbage":  "{not json",
		"svc.mismatch": `{"id":"other","service":"svc"}`,
		"nodot":        `{"id":"x","service":"nodot"}`,
		"a.b.c":        `{"id":"b.c","service":"a"}`,
		"other.x":      `{"id":"x","service":"other","endpoints":[{"transport":"http"}]}`,
	}
	for key, val := range foreign {
		if _, err := kv.PutString(ctx, key, val); err != nil {
			t.Fatalf("Put(%s) = %v", key, err)
		}
	}
	for key := range foreign {
		if err := kv.Delete(ctx, key); err != nil {
			t.Fatalf("Delete(%s) = %v", key, err)
		}
	}
	// The first Next after the foreign writes is the valid change after them.
	good2 := registry.Instance{ID: "good2", Service: "other"}
	if err := r.Register(ctx, good2); err != nil {
		t.Fatalf("Register = %v, want nil", err)
	}
	if got, err := w.Next(ctx); err != nil || keys(got) != "other/good2,svc/good" {
		t.Errorf("WatchAll Next after foreign puts and deletes = %s, %v, want other/good2,svc/good", keys(got), err)
	}
}

// TestWatchAllAndWatchAgree: one bucket, both kinds of watcher; WatchAll
// holds exactly the union of every service's Watch, and a service's
// instances do not leak into another's (keys sharing a prefix).
func TestWatchAllAndWatchAgree(t *testing.T) {
	ctx := testCtx(t)
	s := ferrytest.NATS(t)
	_, js := jetStream(t, s.ClientURL())
	r := newRegistry(t, js)
	ins := []registry.Instance{
		{ID: "b", Service: "api"}, {ID: "a", Service: "api"},
		{ID: "a", Service: "api-v2"}, {ID: "z", Service: "Zeta"},
	}
	for _, in := range ins {
		if err := r.Register(ctx, in); err != nil {
			t.Fatalf("Register(%s/%s) = %v, want nil", in.Service, in.ID, err)
		}
	}
	w, err := r.WatchAll(ctx)
	if err != nil {
		t.Fatalf("WatchAll = %v", err)
	}
	defer w.Stop()
	got, err := w.Next(ctx)
	if want := "Zeta/z,api/a,api/b,api-v2/a"; err != nil || keys(got) != want { // byte order: upper case first
		t.Fatalf("first WatchAll Next = %s, %v, want %s", keys(got), err, want)
	}
	var union []registry.Instance
	for _, svc := range []string{"Zeta", "api", "api-v2"} {
		sw, err := r.Watch(ctx, svc)
		if err != nil {
			t.Fatalf("Watch(%s) = %v", svc, err)
		}
		set, err := sw.Next(ctx)
		_ = sw.Stop()
		if err != nil {
			t.Fatalf("Watch(%s) Next = %v", svc, err)
		}
		union = append(union, set...)
	}
	if keys(union) != keys(got) {
		t.Errorf("the services' Watch sets together = %s, want WatchAll's %s", keys(union), keys(got))
	}
	if err := r.Deregister(ctx, ins[1]); err != nil {
		t.Fatalf("Deregister(api/a) = %v", err)
	}
	nctx, cancel := context.WithTimeout(ctx, ferrytest.WaitBound)
	defer cancel()
	if got, err := w.Next(nctx); err != nil || keys(got) != "Zeta/z,api/b,api-v2/a" {
		t.Errorf("WatchAll Next after Deregister(api/a) = %s, %v, want Zeta/z,api/b,api-v2/a", keys(got), err)
	}
}
