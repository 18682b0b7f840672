package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	jsbroker "github.com/ferry-go/ferry/broker/jetstream"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type Job = ferrytest.CrashJob

// crashEnv makes the test binary a consumer process for TestConsumerCrash:
// its value is the NATS URL.
const crashEnv = "FERRY_JETSTREAM_TEST_CONSUMER"

const (
	crashStream = "CRASH"
	crashTopic  = "crash.jobs"
	crashQueue  = "workers"
	crashWait   = time.Second // AckWait: how soon a dead consumer's messages come back
	crashConc   = 8
)

func crashOpts() []broker.SubscribeOption {
	return []broker.SubscribeOption{broker.Queue(crashQueue), broker.Concurrency(crashConc), broker.AckWait(crashWait), broker.Backoff(10 * time.Millisecond)}
}

// runConsumer is the consumer process of TestConsumerCrash.
func runConsumer(url string) int {
	nc, err := nats.Connect(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, err := jsbroker.New(context.Background(), js)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return ferrytest.ServeCrashConsumer(b, crashTopic, crashOpts()...)
}

// TestConsumerCrash publishes 2,000 jobs, SIGKILLs the consumer process
// mid-batch, and lets a new consumer finish: every job is processed at
// least once, and only jobs that were in flight when the process died are
// processed twice.
func TestConsumerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	js, url := newJS(t)
	ctx := ctxT(t)
	b := newBroker(t, js, jsbroker.WithStream(jetstream.StreamConfig{Name: crashStream, Subjects: []string{"crash.>"}}))
	r := ferrytest.ConsumerCrash{
		Broker: b, Topic: crashTopic, Options: crashOpts(), Env: crashEnv, Value: url,
		// Nothing pending, nothing awaiting its ack: the dead consumer's
		// unacknowledged messages came back (after AckWait) and were
		// handled.
		Settled: func() bool {
			c, err := js.Consumer(ctx, crashStream, "workers__crash_jobs")
			if err != nil {
				return false
			}
			ci, err := c.Info(ctx)
			return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
		},
		// In flight when the process died: up to Concurrency handlers whose
		// acknowledgement had not left, plus what the last flush reported.
		MaxDuplicates: 2 * crashConc,
	}.Run(t)
	t.Logf("consumer crash: %v", r)
}

// TestPoisonMessage: a message whose handler always fails is delivered
// exactly MaxDeliver times with the back-off between deliveries, then
// stored exactly once in the dead-letter stream; the messages around it
// flow on.
func TestPoisonMessage(t *testing.T) {
	js, _ := newJS(t)
	ctx := ctxT(t)
	b := newBroker(t, js, jsbroker.WithStream(jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}))
	backoff := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	var (
		mu       sync.Mutex
		attempts []time.Time
		good     atomic.Int64
	)
	_, err := broker.Subscribe(ctx, b, "orders.placed", func(ctx context.Context, e *broker.Event[Job]) error {
		if e.Data.N == 13 {
			mu.Lock()
			attempts = append(attempts, time.Now())
			mu.Unlock()
			return errors.New("poison")
		}
		good.Add(1)
		return nil
	}, broker.Queue("billing"), broker.MaxDeliver(4), broker.Backoff(backoff...))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := broker.Publish(ctx, b, "orders.placed", &Job{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	dlq, err := js.Stream(ctx, jsbroker.DefaultDeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := dlq.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // anything more would show by now
	info, err := dlq.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 4 {
		t.Errorf("poison message delivered %d times, want exactly MaxDeliver = 4", len(attempts))
	}
	for i := 1; i < len(attempts); i++ {
		if gap, want := attempts[i].Sub(attempts[i-1]), backoff[i-1]; gap < want-10*time.Millisecond {
			t.Errorf("delivery %d came %v after the previous, want at least the back-off %v", i+1, gap, want)
		}
	}
	if info.State.Msgs != 1 {
		t.Errorf("dead-letter stream holds %d messages, want exactly 1", info.State.Msgs)
	}
	if got := good.Load(); got != 199 {
		t.Errorf("other messages processed = %d, want 199", got)
	}
	m, err := dlq.GetLastMsgForSubject(ctx, "dlq.orders.placed")
	if err != nil {
		t.Fatalf("reading the dead letter: %v", err)
	}
	for k, want := range map[string]string{broker.DeadLetterDeliveriesKey: "4", broker.DeadLetterErrorKey: "poison", broker.DeadLetterTopicKey: "orders.placed"} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("dead letter header %s = %q, want %q", k, got, want)
		}
	}
	if m.Header.Get(broker.DeadLetterSequenceKey) == "" {
		t.Error("dead letter has no stream sequence header")
	}
}

// TestDedupe: the same message ID published twice within the window is
// stored once.
func TestDedupe(t *testing.T) {
	js, _ := newJS(t)
	ctx := ctxT(t)
	b := newBroker(t, js, jsbroker.WithStream(jetstream.StreamConfig{Name: "DEDUPE", Subjects: []string{"dedupe.>"}, Duplicates: time.Minute}))
	for _, id := range []string{"order-1", "order-1", "order-2", "order-1"} {
		if err := broker.Publish(ctx, b, "dedupe.orders", &Job{N: 1}, broker.WithID(id)); err != nil {
			t.Fatalf("Publish(%s) = %v", id, err)
		}
	}
	s, err := js.Stream(ctx, "DEDUPE")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("stream holds %d messages after publishing IDs order-1 ×3 and order-2, want 2", info.State.Msgs)
	}
}

// TestSlowHandlerNotRedelivered: a handler running four times the ack
// wait heart-beats, so its message is not redelivered while it runs. The
// ack wait is a second so that a beat (every third of it) has two thirds
// of a second to spare on a loaded machine; a redelivery would start the
// handler again at once on the subscription's second worker.
func TestSlowHandlerNotRedelivered(t *testing.T) {
	const ackWait = time.Second
	js, _ := newJS(t)
	ctx := ctxT(t)
	b := newBroker(t, js, jsbroker.WithStream(jetstream.StreamConfig{Name: "SLOW", Subjects: []string{"slow.>"}}))
	var runs atomic.Int64
	done := make(chan struct{})
	_, err := broker.Subscribe(ctx, b, "slow.work", func(ctx context.Context, e *broker.Event[Job]) error {
		if runs.Add(1) == 1 {
			time.Sleep(4 * ackWait)
			close(done)
		}
		return nil
	}, broker.Queue("slow"), broker.AckWait(ackWait), broker.Concurrency(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := broker.Publish(ctx, b, "slow.work", &Job{N: 1}); err != nil {
		t.Fatal(err)
	}
	<-done
	// The server's own count, once the message is acknowledged: a
	// redelivery while the handler ran would show there.
	stream, err := js.Stream(ctx, "SLOW")
	if err != nil {
		t.Fatal(err)
	}
	var info *jetstream.ConsumerInfo
	ferrytest.Eventually(t, "the slow message is acknowledged", func() bool {
		lister := stream.ListConsumers(ctx)
		for ci := range lister.Info() {
			info = ci
		}
		return lister.Err() == nil && info != nil && info.NumAckPending == 0 && info.AckFloor.Stream == 1
	})
	// Delivered.Consumer counts every delivery, redeliveries included.
	if info.Delivered.Consumer != 1 || runs.Load() != 1 {
		t.Errorf("slow message delivered %d times, handler ran %d times; want once (heart-beats keep it from redelivery)", info.Delivered.Consumer, runs.Load())
	}
}

// TestPublishServerDown: with the server gone, Publish fails within its
// deadline with an error naming the topic, never silently.
func TestPublishServerDown(t *testing.T) {
	ctx := ctxT(t)
	ns, err := natsembed.Start(ctx, natsembed.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b := newBroker(t, js, jsbroker.WithStream(jetstream.StreamConfig{Name: "DOWN", Subjects: []string{"down.>"}}))
	if err := broker.Publish(ctx, b, "down.x", &Job{N: 1}); err != nil {
		t.Fatalf("Publish while up = %v", err)
	}
	ns.Shutdown()
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	began := time.Now()
	err = broker.Publish(pctx, b, "down.x", &Job{N: 2})
	el := time.Since(began)
	if err == nil {
		t.Fatal("Publish with the server down = nil, want an error")
	}
	if c := errs.CodeOf(err); c != errs.DeadlineExceeded && c != errs.Unavailable {
		t.Errorf("Publish with the server down = %v (%v), want deadline_exceeded or unavailable", err, c)
	}
	if !strings.Contains(err.Error(), "down.x") {
		t.Errorf("error %q does not name the topic", err)
	}
	if el > 1500*time.Millisecond {
		t.Errorf("Publish took %v with a 1s deadline", el)
	}
	t.Logf("publish with the server down: %v after %v", err, el.Round(time.Millisecond))
}

// TestNoStream: a topic no stream captures is a clear error on both
// sides.
func TestNoStream(t *testing.T) {
	js, _ := newJS(t)
	ctx := ctxT(t)
	b := newBroker(t, js)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := broker.Publish(pctx, b, "nowhere.x", &Job{})
	if err == nil || !strings.Contains(err.Error(), "nowhere.x") {
		t.Errorf("Publish(nowhere.x) = %v, want an error naming the topic", err)
	}
	_, err = broker.Subscribe(ctx, b, "nowhere.x", func(context.Context, *broker.Event[Job]) error { return nil })
	if errs.CodeOf(err) != errs.FailedPrecondition || !strings.Contains(err.Error(), "no stream captures") {
		t.Errorf("Subscribe(nowhere.x) = %v, want failed_precondition saying no stream captures it", err)
	}
	if _, err := jsbroker.New(ctx, js, jsbroker.WithStream(jetstream.StreamConfig{})); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("New(WithStream(empty)) = %v, want invalid_argument", err)
	}
	if _, err := jsbroker.New(ctx, nil); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("New(nil) = %v, want invalid_argument", err)
	}
}
