package nats_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/registry"
	natsreg "github.com/ferry-go/ferry/registry/nats"
	"github.com/nats-io/nats.go"
)

// TestCluster runs the registry on a three-node cluster with an R3 bucket:
// a registration made through one node is seen through another, losing
// the node a registrant is connected to loses no registration (the
// registrant fails over and keeps heartbeating), and expiry still works on
// the two nodes left.
//
// The TTL is a product figure, so the test observes it — nothing expires
// for a TTL after the node loss — but it asserts no figure of its own: it
// waits for expiry as long as the test may run, and reports how long it
// took.
func TestCluster(t *testing.T) {
	const ttl = 3 * time.Second
	ctx := ferrytest.Context(t)
	servers, err := natsembed.StartCluster(ctx, 3, natsembed.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartCluster(3) = %v, want nil", err)
	}
	for _, s := range servers {
		t.Cleanup(s.Shutdown)
	}
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	// Each client starts on its own node and may fail over to the others.
	connectTo := func(first int) *natsreg.Registry {
		order := append([]string{urls[first]}, urls...)
		_, js := jetStream(t, strings.Join(order, ","), nats.DontRandomize(),
			nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		return newRegistry(t, js, natsreg.WithTTL(ttl), natsreg.WithHeartbeat(300*time.Millisecond), natsreg.WithReplicas(3))
	}
	regA, regB, regC := connectTo(0), connectTo(1), connectTo(2)

	a := registry.Instance{ID: "a", Service: "svc", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "127.0.0.1:1"}}}
	b := registry.Instance{ID: "b", Service: "svc", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "127.0.0.1:2"}}}
	if err := regA.Register(ctx, a); err != nil {
		t.Fatalf("Register(a) on node 1 = %v, want nil", err)
	}
	if err := regB.Register(ctx, b); err != nil {
		t.Fatalf("Register(b) on node 2 = %v, want nil", err)
	}
	w, err := regC.Watch(ctx, "svc")
	if err != nil {
		t.Fatalf("Watch(svc) on node 3 = %v, want nil", err)
	}
	defer w.Stop()
	waitSet(t, ctx, w, "a", "b")

	// Node 1, where a's registrant is connected, goes down.
	down := time.Now()
	servers[0].Shutdown()

	// Past one TTL, a must still be there: its registrant failed over and
	// kept heartbeating. Nothing may have expired meanwhile.
	deadline := time.After(ttl + time.Second)
	for waiting := true; waiting; {
		nctx, ncancel := context.WithCancel(ctx)
		got := make(chan []registry.Instance, 1)
		go func() {
			set, _ := w.Next(nctx)
			got <- set
		}()
		select {
		case set := <-got:
			if set != nil && ids(set) != "a,b" {
				t.Errorf("Next after node 1 went down = %s, want a,b throughout", ids(set))
			}
		case <-deadline:
			waiting = false
		}
		ncancel()
		<-got
	}
	// The cluster may still be moving leaders: a look-up may fail for a
	// while, but the first answer must hold both.
	var (
		set       []registry.Instance
		lookupErr error
	)
	if err := ferrytest.Poll(ctx, func() bool {
		set, lookupErr = regC.Lookup(ctx, "svc")
		return lookupErr == nil
	}); err != nil {
		t.Fatalf("Lookup(svc) after node 1 went down: %v (last error %v)", err, lookupErr)
	}
	if ids(set) != "a,b" {
		t.Fatalf("Lookup(svc) %v after node 1 went down = %s, want a,b", time.Since(down).Round(time.Millisecond), ids(set))
	}

	// b's registrant crashes; b expires on the two remaining nodes. A
	// fresh watcher is used: the old one's server-side consumer may have
	// lived on node 1, and nats.go re-creates a lost ordered consumer only
	// after missing its heartbeats for 10s or more.
	w2, err := regC.Watch(ctx, "svc")
	if err != nil {
		t.Fatalf("Watch(svc) on node 3 after node 1 went down = %v, want nil", err)
	}
	defer w2.Stop()
	waitSet(t, ctx, w2, "a", "b")
	crashed := time.Now()
	_ = regB.Close()
	waitSet(t, ctx, w2, "a")
	t.Logf("expired %v after the crash (TTL %v)", time.Since(crashed).Round(time.Millisecond), ttl)
}

// waitSet calls Next until it returns the instances with the given IDs.
func waitSet(t *testing.T, ctx context.Context, w registry.Watcher, want ...string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, ferrytest.WaitBound)
	defer cancel()
	for {
		set, err := w.Next(wctx)
		if err != nil {
			if wctx.Err() != nil {
				t.Fatalf("Next = %v, want %s", err, strings.Join(want, ","))
			}
			continue
		}
		if ids(set) == strings.Join(want, ",") {
			return
		}
	}
}

func ids(set []registry.Instance) string {
	s := make([]string, len(set))
	for i, in := range set {
		s[i] = in.ID
	}
	return strings.Join(s, ",")
}
