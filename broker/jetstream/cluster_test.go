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
	"github.com/ferry-go/ferry/natsembed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterNodeLoss: on a three-node cluster with an R3 stream, the
// stream leader is shut down while publishers are mid-way through 3,000
// messages. Every publish that was acknowledged is consumed afterwards.
func TestClusterNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	const total = 3000
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
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
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.Cluster.Leader
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
	// until acknowledged or out of attempts.
	var (
		acked    sync.Map // n → true
		nAcked   atomic.Int64
		nFailed  atomic.Int64
		retries  atomic.Int64
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
				for attempt := 0; attempt < 5 && !ok; attempt++ {
					if attempt > 0 {
						retries.Add(1)
						time.Sleep(100 * time.Millisecond)
					}
					pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					err := broker.Publish(pctx, b, "events.tick", &Job{N: n}, broker.WithID(fmt.Sprintf("tick-%d", n)))
					cancel()
					ok = err == nil
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
	deadline := time.Now().Add(30 * time.Second)
	for lost() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	consumed, dups := len(seen), 0
	for _, c := range seen {
		dups += c - 1
	}
	mu.Unlock()
	n := lost()
	t.Logf("cluster node loss (leader %s shut down after %d publishes): %d acknowledged, %d not (after 5 tries), %d retried publishes; consumed %d distinct (%d redelivered); %d acknowledged messages lost",
		leader, total/3, nAcked.Load(), nFailed.Load(), retries.Load(), consumed, dups, n)
	if n != 0 {
		t.Errorf("%d acknowledged messages were never consumed, want 0", n)
	}
	if nAcked.Load() < total/2 {
		t.Errorf("only %d of %d publishes acknowledged: the cluster did not keep serving", nAcked.Load(), total)
	}
}
