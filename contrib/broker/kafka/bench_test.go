package kafka_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/contrib/broker/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The publish→consume benchmarks run the same workload: b.N messages of 64
// bytes, published synchronously (acks=all, idempotent producer) by
// benchPublishers goroutines, consumed by one consumer group member that
// joined before the clock started; the clock stops when the last message
// was handled. Besides msgs/s they report the process's CPU time per
// message (cpu-µs/msg, the in-process cluster's included).
//
// Every run gets a cluster of its own and starts after a collection, so
// that no variant pays for the data or garbage of the runs before it, and
// the process warms up (heap, connections) before the first run, which
// would otherwise be the slowest whatever it measures. Run briefly:
//
//	go test -run '^$' -bench PublishConsume -benchtime 20000x -count 3
const benchPublishers = 8

var (
	benchPayload = make([]byte, 64)
	benchRun     atomic.Int64
)

func BenchmarkPublishConsume(b *testing.B) {
	warmUp(b)

	// Ferry's Broker.Publish and Subscribe, queue subscription with the
	// defaults (8 handlers, commit interval 100 ms).
	b.Run("ferry", func(b *testing.B) {
		var c clock
		ferryRun(b, newCluster(b), b.N, func() { c = startClock(b) })
		report(b, c)
	})
	// Raw franz-go doing what Ferry does, as a franz-go user would write
	// it: the same producer (idempotent, acks=all, linger 0), the same
	// records (keyed by a random 26-character message ID, which also goes
	// in the ferry-msg-id header), a consumer group member that commits
	// only handled records (marks, committed every 100 ms like Ferry's
	// default commit interval, and on revocation). This is the baseline
	// Ferry is held to.
	b.Run("franz-go", func(b *testing.B) {
		var c clock
		rawRun(b, newCluster(b), b.N, true, func() { c = startClock(b) })
		report(b, c)
	})
	// Raw franz-go with weaker guarantees, for reference only: records as
	// small as they get (no key: sticky partitioning batches the
	// publishers' records together; no header) and franz-go's default
	// auto-commit of everything polled, handled or not.
	b.Run("franz-go-unkeyed-autocommit", func(b *testing.B) {
		var c clock
		rawRun(b, newCluster(b), b.N, false, func() { c = startClock(b) })
		report(b, c)
	})
}

// warmUp runs the workload once, unmeasured, on a cluster of its own.
func warmUp(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(partitions))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ferryRun(b, c.ListenAddrs()[0], 10000, func() {})
}

// clock is where a measurement started: wall time and the process's CPU
// time.
type clock struct {
	wall time.Time
	cpu  time.Duration
}

func startClock(b *testing.B) clock {
	runtime.GC() // the garbage of the set-up, and of the runs before, is not this run's
	b.ResetTimer()
	return clock{time.Now(), cpuTime()}
}

// report gives the throughput and the CPU time per message: on a shared
// machine the latter varies less between runs than the former.
func report(b *testing.B, c clock) {
	b.ReportMetric(float64(b.N)/time.Since(c.wall).Seconds(), "msgs/s")
	b.ReportMetric(float64((cpuTime()-c.cpu).Microseconds())/float64(b.N), "cpu-µs/msg")
}

// publishAll publishes n messages from benchPublishers goroutines.
func publishAll(tb testing.TB, n int, publish func(i int) error) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range benchPublishers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := publish(i); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// ferryRun subscribes through a Ferry broker, calls start, publishes n
// messages and returns once all were handled.
func ferryRun(tb testing.TB, addr string, n int, start func()) {
	ctx := context.Background()
	br := newBroker(tb, addr)
	topic := fmt.Sprintf("bench.ferry.r%d", benchRun.Add(1))
	var got atomic.Int64
	done := make(chan struct{})
	cfg, err := broker.NewSubscribeConfig(topic, broker.Queue("bench"))
	if err != nil {
		tb.Fatal(err)
	}
	sub, err := br.Subscribe(ctx, topic, func(context.Context, *broker.Delivery) error {
		if int(got.Add(1)) == n {
			close(done)
		}
		return nil
	}, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer sub.Drain(ctx)
	start()
	publishAll(tb, n, func(int) error {
		return br.Publish(ctx, &broker.Message{Topic: topic, Data: benchPayload})
	})
	<-done
}

// rawRun is ferryRun on franz-go: with same, Ferry's guarantees and
// record shape; without, unkeyed records and auto-commit.
func rawRun(tb testing.TB, addr string, n int, same bool, start func()) {
	ctx := context.Background()
	topic := fmt.Sprintf("bench.raw.r%d", benchRun.Add(1))
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		tb.Fatal(err)
	}
	defer prod.Close()
	var (
		got      atomic.Int64
		done     = make(chan struct{})
		joined   = make(chan struct{})
		joinOnce sync.Once
	)
	handle := func(*kgo.Record) {
		if int(got.Add(1)) == n {
			close(done)
		}
	}
	copts := []kgo.Opt{
		kgo.SeedBrokers(addr), kgo.ConsumerGroup("bench-raw-" + topic), kgo.ConsumeTopics(topic), kgo.AllowAutoTopicCreation(),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { joinOnce.Do(func() { close(joined) }) }),
	}
	if same {
		copts = append(copts,
			kgo.AutoCommitMarks(), kgo.AutoCommitInterval(kafka.DefaultCommitInterval),
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
				_ = cl.CommitMarkedOffsets(ctx)
			}))
	}
	cons, err := kgo.NewClient(copts...)
	if err != nil {
		tb.Fatal(err)
	}
	defer cons.Close()
	go func() {
		for {
			fs := cons.PollFetches(ctx)
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(handle)
			if same {
				cons.MarkCommitRecords(fs.Records()...) // handled: may be committed
				cons.AllowRebalance()
			}
		}
	}()
	<-joined
	start()
	publishAll(tb, n, func(int) error {
		r := &kgo.Record{Topic: topic, Value: benchPayload}
		if same {
			id := []byte(rand.Text())
			r.Key = id
			r.Headers = []kgo.RecordHeader{{Key: kafka.IDHeader, Value: id}}
		}
		return prod.ProduceSync(ctx, r).FirstErr()
	})
	<-done
}
