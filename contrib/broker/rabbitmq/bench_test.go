package rabbitmq

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Both sides of the benchmark: benchPublishers goroutines publish with
// publisher confirms, one at a time each (a publish returns on its
// confirm), to a topic exchange routing to one quorum queue; one consumer
// with prefetch benchConc runs benchConc handlers and acknowledges each
// message after its handler. Run it with -benchtime=2000x.
const (
	benchPublishers = 4
	benchConc       = 8
)

func BenchmarkPublishConsume(b *testing.B) {
	b.Run("ferry", benchFerry)
	b.Run("raw", benchRaw)
}

func benchFerry(b *testing.B) {
	br := newBroker(b)
	ctx := context.Background()
	var n atomic.Int64
	done := make(chan struct{})
	total := int64(b.N)
	sub, err := broker.Subscribe(ctx, br, "bench.jobs", func(ctx context.Context, e *broker.Event[Job]) error {
		if n.Add(1) == total {
			close(done)
		}
		return nil
	}, broker.Queue("bench"), broker.Concurrency(benchConc))
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Drain(ctx)
	b.ResetTimer()
	start := time.Now()
	publishAll(b, func(i int) error { return broker.Publish(ctx, br, "bench.jobs", &Job{N: i}) })
	<-done
	report(b, start)
}

func benchRaw(b *testing.B) {
	url := serverURL(b)
	exchange, queue := testExchange(), testExchange()+".bench"
	conn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	pub, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	must(b, pub.Confirm(false))
	must(b, pub.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil))
	_, err = pub.QueueDeclare(queue, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum})
	must(b, err)
	defer func() {
		_, _ = pub.QueueDelete(queue, false, false, false)
		_ = pub.ExchangeDelete(exchange, false, false)
	}()
	must(b, pub.QueueBind(queue, "bench.jobs", exchange, false, nil))
	cons, err := conn.Channel()
	must(b, err)
	must(b, cons.Qos(benchConc, 0, false))
	dels, err := cons.Consume(queue, "", false, false, false, false, nil)
	must(b, err)
	var n atomic.Int64
	done := make(chan struct{})
	total := int64(b.N)
	var workers sync.WaitGroup
	for range benchConc {
		workers.Go(func() {
			for d := range dels {
				_ = d.Ack(false)
				if n.Add(1) == total {
					close(done)
				}
			}
		})
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	publishAll(b, func(i int) error {
		dc, err := pub.PublishWithDeferredConfirmWithContext(ctx, exchange, "bench.jobs", false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, Body: []byte(`{"n":1}`),
		})
		if err != nil {
			return err
		}
		_, err = dc.WaitContext(ctx)
		return err
	})
	<-done
	report(b, start)
	_ = cons.Close()
	workers.Wait()
}

func publishAll(b *testing.B, publish func(i int) error) {
	var wg sync.WaitGroup
	for p := range benchPublishers {
		wg.Go(func() {
			for i := p; i < b.N; i += benchPublishers {
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
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
