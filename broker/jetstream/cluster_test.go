package jetstream_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	jsbroker "github.com/ferry-go/ferry/broker/jetstream"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterNodeLoss: on a three-node cluster with an R3 stream, the
// stream leader is shut down while publishers are mid-way through 3,000
// messages. Every publish that was acknowledged is consumed afterwards.
// A publisher retries a message (same ID, so it is stored once) until it
// is acknowledged, as a real one would: how many tries the leader change
// cost is reported, not asserted, for it depends on the machine's load.
func TestClusterNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	const total = 3000
	ctx := ferrytest.Context(t)
	servers, err := natsembed.StartCluster(ctx, 3, natsembed.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartCluster(3) = %v", err)
	}
	for _, s := range servers {
		t.Cleanup(s.Shutdown)
	}
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	connect := func(first int) jetstream.JetStream {
		order := append([]string{urls[first]}, urls...)
		nc, err := nats.Connect(strings.Join(order, ","), nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	js := connect(0)
	b := newBroker(t, js, jsbroker.WithStream(jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Replicas: 3}),
		jsbroker.WithDeadLetterStream(jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}, Replicas: 3}))
	stream, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	var leader string
	ferrytest.Eventually(t, "the R3 stream has a leader", func() bool {
		info, err := stream.Info(ctx)
		if err == nil && info.Cluster != nil {
			leader = info.Cluster.Leader
		}
		return leader != ""
	})
	var victim *natsembed.Server
	for _, s := range servers {
		if s.NATS().Name() == leader {
			victim = s
		}
	}
	if victim == nil {
		t.Fatalf("stream leader %q is not one of the cluster's servers", leader)
	}

	// Four publishers; each message retried (same ID, so stored once)
	// until acknowledged or the test's time is up.
	var (
		acked    sync.Map // n → true
		nAcked   atomic.Int64
		nFailed  atomic.Int64
		retries  atomic.Int64
		maxTries atomic.Int64
		next     atomic.Int64
		wg       sync.WaitGroup
		killOnce sync.Once
		killed   = make(chan struct{})
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1)) - 1
				if n >= total {
					return
				}
				if n == total/3 {
					killOnce.Do(func() {
						go func() { victim.Shutdown(); close(killed) }()
					})
				}
				ok := false
				for attempt := 0; !ok && ctx.Err() == nil; attempt++ {
					if attempt > 0 {
						retries.Add(1)
						time.Sleep(100 * time.Millisecond)
					}
					pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					err := broker.Publish(pctx, b, "events.tick", &Job{N: n}, broker.WithID(fmt.Sprintf("tick-%d", n)))
					cancel()
					ok = err == nil
					if ok && int64(attempt+1) > maxTries.Load() {
						maxTries.Store(int64(attempt + 1)) // racy max, for the report only
					}
				}
				if ok {
					acked.Store(n, true)
					nAcked.Add(1)
				} else {
					nFailed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	<-killed

	// Consume everything through a surviving node.
	survivor := 0
	for i, s := range servers {
		if s == victim {
			survivor = (i + 1) % len(servers)
		}
	}
	cb := newBroker(t, connect(survivor), jsbroker.WithoutDeadLetterStream())
	var (
		mu   sync.Mutex
		seen = map[int]int{}
	)
	sub, err := broker.Subscribe(ctx, cb, "events.tick", func(ctx context.Context, e *broker.Event[Job]) error {
		mu.Lock()
		seen[e.Data.N]++
		mu.Unlock()
		return nil
	}, broker.Queue("audit"), broker.Concurrency(16))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Drain(ctx)
	lost := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		acked.Range(func(k, _ any) bool {
			if seen[k.(int)] == 0 {
				n++
			}
			return true
		})
		return n
	}
	if err := ferrytest.Poll(ctx, func() bool { return lost() == 0 }); err != nil {
		t.Logf("waiting for every acknowledged message: %v", err)
	}
	mu.Lock()
	consumed, dups := len(seen), 0
	for _, c := range seen {
		dups += c - 1
	}
	mu.Unlock()
	n := lost()
	t.Logf("cluster node loss (leader %s shut down after %d publishes): %d acknowledged, %d not, %d retried publishes (at most %d tries for one); consumed %d distinct (%d redelivered); %d acknowledged messages lost",
		leader, total/3, nAcked.Load(), nFailed.Load(), retries.Load(), maxTries.Load(), consumed, dups, n)
	if n != 0 {
		t.Errorf("%d acknowledged messages were never consumed, want 0", n)
	}
	if nFailed.Load() != 0 {
		t.Errorf("%d of %d publishes never acknowledged: the cluster did not keep serving", nFailed.Load(), total)
	}
}
