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
// cluster: b.N messages of 64 bytes, published synchronously (acks=all)
// by benchPublishers goroutines, consumed by one consumer group member;
// the clock stops when the last message was handled. Run briefly:
//
//	go test -run '^$' -bench PublishConsume -benchtime 20000x
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

func report(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
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
		b.ResetTimer()
		start := time.Now()
		publishAll(b, b.N, func(int) error {
			return br.Publish(ctx, &broker.Message{Topic: topic, Data: benchPayload})
		})
		<-done
		report(b, start)
	})

	// Raw franz-go, records as small as they get: no key (sticky
	// partitioning batches the publishers' records together), no header.
	b.Run("franz-go", func(b *testing.B) { benchRaw(b, addr, false) })
	// Raw franz-go, the records Ferry writes: a random 26-character key
	// (the message ID, spreading records over the partitions) and the
	// ferry-msg-id header.
	b.Run("franz-go-keyed", func(b *testing.B) { benchRaw(b, addr, true) })
}

func benchRaw(b *testing.B, addr string, keyed bool) {
	ctx := context.Background()
	topic := fmt.Sprintf("bench.raw.r%d", benchRun.Add(1))
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("bench-raw-"+topic), kgo.ConsumeTopics(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		b.Fatal(err)
	}
	defer cons.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		got := 0
		for got < b.N {
			fs := cons.PollFetches(ctx)
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(*kgo.Record) { got++ })
		}
	}()
	b.ResetTimer()
	start := time.Now()
	publishAll(b, b.N, func(int) error {
		r := &kgo.Record{Topic: topic, Value: benchPayload}
		if keyed {
			id := rand.Text()
			r.Key = []byte(id)
			r.Headers = []kgo.RecordHeader{{Key: kafka.IDHeader, Value: []byte(id)}}
		}
		return prod.ProduceSync(ctx, r).FirstErr()
	})
	<-done
	report(b, start)
}
