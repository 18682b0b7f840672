package kafka_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/contrib/broker/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The publish→consume benchmarks run the same workload on one kfake
// cluster: b.N messages of 64 bytes, published synchronously (acks=all,
// idempotent producer) by benchPublishers goroutines, consumed by one
// consumer group member that joined before the clock started; the clock
// stops when the last message was handled. Besides msgs/s they report
// the process's CPU time per message (cpu-µs/msg, kfake's included).
// Run briefly:
//
//	go test -run '^$' -bench PublishConsume -benchtime 20000x -count 3
const benchPublishers = 8

var (
	benchPayload = make([]byte, 64)
	benchRun     atomic.Int64
)

// publishAll publishes n messages from benchPublishers goroutines.
func publishAll(b *testing.B, n int, publish func(i int) error) {
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
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// clock is where a measurement started: wall time and the process's CPU
// time (kfake's included, which serves every variant alike).
type clock struct {
	wall time.Time
	cpu  time.Duration
}

func startClock(b *testing.B) clock {
	b.ResetTimer()
	return clock{time.Now(), cpuTime()}
}

// report gives the throughput and the CPU time per message: on a shared
// machine the latter varies less between runs than the former.
func report(b *testing.B, c clock) {
	b.ReportMetric(float64(b.N)/time.Since(c.wall).Seconds(), "msgs/s")
	b.ReportMetric(float64((cpuTime()-c.cpu).Microseconds())/float64(b.N), "cpu-µs/msg")
}

func BenchmarkPublishConsume(b *testing.B) {
	addr := newCluster(b)
	ctx := context.Background()

	b.Run("ferry", func(b *testing.B) {
		br := newBroker(b, addr)
		topic := fmt.Sprintf("bench.ferry.r%d", benchRun.Add(1))
		var got atomic.Int64
		done := make(chan struct{})
		cfg, err := broker.NewSubscribeConfig(topic, broker.Queue("bench"))
		if err != nil {
			b.Fatal(err)
		}
		sub, err := br.Subscribe(ctx, topic, func(context.Context, *broker.Delivery) error {
			if int(got.Add(1)) == b.N {
				close(done)
			}
			return nil
		}, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Drain(ctx)
		start := startClock(b)
		publishAll(b, b.N, func(int) error {
			return br.Publish(ctx, &broker.Message{Topic: topic, Data: benchPayload})
		})
		<-done
		report(b, start)
	})

	// Raw franz-go doing what Ferry does, as a franz-go user would write
	// it: the same producer (idempotent, acks=all, linger 0), the same
	// records (keyed by a random 26-character message ID, which also goes
	// in the ferry-msg-id header), a consumer group member that commits
	// only handled records (marks, committed every 100 ms like Ferry's
	// default commit interval, and on revocation), joined before the clock
	// starts. This is the baseline Ferry is held to.
	b.Run("franz-go", func(b *testing.B) { benchRaw(b, addr, true) })
	// Raw franz-go with weaker guarantees, for reference only: records as
	// small as they get (no key: sticky partitioning batches the
	// publishers' records together; no header) and franz-go's default
	// auto-commit of everything polled, handled or not.
	b.Run("franz-go-unkeyed-autocommit", func(b *testing.B) { benchRaw(b, addr, false) })
}

func benchRaw(b *testing.B, addr string, same bool) {
	ctx := context.Background()
	topic := fmt.Sprintf("bench.raw.r%d", benchRun.Add(1))
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	var (
		got      atomic.Int64
		done     = make(chan struct{})
		joined   = make(chan struct{})
		joinOnce sync.Once
		cons     *kgo.Client
	)
	handle := func(*kgo.Record) {
		if int(got.Add(1)) == b.N {
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
	cons, err = kgo.NewClient(copts...)
	if err != nil {
		b.Fatal(err)
	}
	defer cons.Close()
	go func() {
		for {
			fs := cons.PollFetches(ctx)
			if fs.IsClientClosed() {
				return
			}
			if same {
				fs.EachRecord(handle)
				cons.MarkCommitRecords(fs.Records()...) // handled: may be committed
				cons.AllowRebalance()
			} else {
				fs.EachRecord(handle)
			}
		}
	}()
	<-joined
	start := startClock(b)
	publishAll(b, b.N, func(int) error {
		r := &kgo.Record{Topic: topic, Value: benchPayload}
		if same {
			id := []byte(rand.Text())
			r.Key = id
			r.Headers = []kgo.RecordHeader{{Key: kafka.IDHeader, Value: id}}
		}
		return prod.ProduceSync(ctx, r).FirstErr()
	})
	<-done
	report(b, start)
}
