package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	amqp "github.com/rabbitmq/amqp091-go"
)

type Job = ferrytest.CrashJob

// crashEnv makes the test binary a consumer process for TestConsumerCrash:
// its value is "<url> <exchange>".
const crashEnv = "FERRY_RABBITMQ_TEST_CONSUMER"

const (
	crashTopic = "crash.jobs"
	crashQueue = "workers"
	crashConc  = 8
)

func crashOpts() []broker.SubscribeOption {
	return []broker.SubscribeOption{broker.Queue(crashQueue), broker.Concurrency(crashConc), broker.Backoff(10 * time.Millisecond)}
}

// runConsumer is the consumer process of TestConsumerCrash.
func runConsumer(spec string) int {
	url, exchange, _ := strings.Cut(spec, " ")
	b, err := New(context.Background(), url, WithExchange(exchange))
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
	b := newBroker(t, WithQueueGroup(crashQueue, crashTopic))
	r := ferrytest.ConsumerCrash{
		Broker: b, Topic: crashTopic, Options: crashOpts(), Env: crashEnv, Value: b.url + " " + b.o.exchange,
		// The dead process's unacknowledged messages were requeued when its
		// connection dropped: once the queue is empty and nothing is
		// unacknowledged (the new consumer the only one), nothing more can
		// come.
		Settled: func() bool {
			n, c := queueDepth(t, b.url, GroupQueue(b.o.exchange, crashQueue, crashTopic))
			return n == 0 && c == 1
		},
		// In flight when the process died: up to Concurrency (= prefetch)
		// handlers whose acknowledgement had not left.
		MaxDuplicates: crashConc,
	}.Run(t)
	t.Logf("consumer crash: %v", r)
}

// queueDepth returns the ready messages and consumers of a queue (ready
// excludes the unacknowledged).
func queueDepth(t testing.TB, url, queue string) (msgs, consumers int) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("queue %s: %v", queue, err)
	}
	return q.Messages, q.Consumers
}

// TestPoisonMessage: a message whose handler always fails is delivered
// exactly MaxDeliver times with the back-off between deliveries (through
// the retry queues), then stored exactly once in the dead-letter queue;
// the messages around it flow on.
func TestPoisonMessage(t *testing.T) {
	ctx := ferrytest.Context(t)
	b := newBroker(t)
	backoff := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	var (
		mu       sync.Mutex
		attempts []time.Time
		seen     []int
		good     atomic.Int64
	)
	_, err := broker.Subscribe(ctx, b, "orders.placed", func(ctx context.Context, e *broker.Event[Job]) error {
		if e.Data.N == 13 {
			mu.Lock()
			attempts = append(attempts, time.Now())
			seen = append(seen, e.Attempt)
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
		if err := broker.Publish(ctx, b, "orders.placed", &Job{N: i}, broker.WithHeader("x-order", strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	dlq := b.deadLetterQueue()
	ferrytest.Eventually(t, "a dead letter", func() bool { n, _ := queueDepth(t, b.url, dlq); return n >= 1 })
	ferrytest.Eventually(t, "the other 199 messages", func() bool { return good.Load() == 199 })
	// Nothing is left anywhere that could bring the poison message back.
	group := GroupQueue(b.o.exchange, "billing", "orders.placed")
	for _, q := range []string{group, RetryQueue(group, backoff[0]), RetryQueue(group, backoff[1]), RetryQueue(group, backoff[2])} {
		if n, _ := queueDepth(t, b.url, q); n != 0 {
			t.Errorf("queue %s holds %d messages, want 0", q, n)
		}
	}
	n, _ := queueDepth(t, b.url, dlq)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("poison message: %d deliveries (attempts %v), %d dead letters, %d other messages processed", len(attempts), seen, n, good.Load())
	if len(attempts) != 4 {
		t.Errorf("poison message delivered %d times, want exactly MaxDeliver = 4", len(attempts))
	}
	for i, a := range seen {
		if a != i+1 {
			t.Errorf("delivery %d had Attempt %d, want %d", i+1, a, i+1)
		}
	}
	for i := 1; i < len(attempts); i++ {
		if gap, want := attempts[i].Sub(attempts[i-1]), backoff[i-1]; gap < want-10*time.Millisecond {
			t.Errorf("delivery %d came %v after the previous, want at least the back-off %v", i+1, gap, want)
		}
	}
	if n != 1 {
		t.Errorf("dead-letter queue holds %d messages, want exactly 1", n)
	}
	// Read the letter.
	conn, err := amqp.Dial(b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	m, ok, err := ch.Get(dlq, true)
	if err != nil || !ok {
		t.Fatalf("reading the dead letter: %v, %v", ok, err)
	}
	for k, want := range map[string]string{
		broker.DeadLetterDeliveriesKey:   "4",
		broker.DeadLetterErrorKey:        "poison",
		broker.DeadLetterTopicKey:        "orders.placed",
		broker.DeadLetterSubscriptionKey: "billing",
		"x-order":                        "13",
	} {
		if got, _ := m.Headers[k].(string); got != want {
			t.Errorf("dead letter header %s = %q, want %q", k, got, want)
		}
	}
	if m.RoutingKey != "dlq.orders.placed" || m.MessageId == "" {
		t.Errorf("dead letter routing key %q, message-id %q; want dlq.orders.placed and an ID", m.RoutingKey, m.MessageId)
	}
}

// TestQueueGroupKeepsMessages: with WithQueueGroup the group's queue
// exists before its first subscription, so what was published before is
// delivered; and what a drained subscription did not finish goes to the
// next member.
func TestQueueGroupKeepsMessages(t *testing.T) {
	ctx := ferrytest.Context(t)
	b := newBroker(t, WithQueueGroup("late", "early.jobs"))
	for i := range 5 {
		if err := broker.Publish(ctx, b, "early.jobs", &Job{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	started := make(chan int, 16)
	sub, err := broker.Subscribe(ctx, b, "early.jobs", func(ctx context.Context, e *broker.Event[Job]) error {
		started <- e.Data.N
		<-ctx.Done() // a handler that only stops when told
		return ctx.Err()
	}, broker.Queue("late"), broker.Concurrency(2))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	<-started
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_ = sub.Drain(dctx) // cut short: reports it
	cancel()
	var (
		mu  sync.Mutex
		got = map[int]int{}
	)
	next, err := broker.Subscribe(ctx, b, "early.jobs", func(ctx context.Context, e *broker.Event[Job]) error {
		mu.Lock()
		got[e.Data.N]++
		mu.Unlock()
		return nil
	}, broker.Queue("late"))
	if err != nil {
		t.Fatal(err)
	}
	defer next.Drain(ctx)
	ferrytest.Eventually(t, "all 5 messages published before the first subscription", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 5
	})
}

// rabbitmqctl runs rabbitmqctl with args.
func rabbitmqctl(t testing.TB, args ...string) error {
	t.Helper()
	out, err := exec.Command("rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rabbitmqctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// startScript is the script that installs and starts the local server;
// it starts a stopped one.
const startScript = "../../../scripts/install-rabbitmq"

// serverPID returns the process ID of the local node, 0 if there is none.
func serverPID() int {
	out, err := exec.Command("pgrep", "-f", "beam.*rabbit").Output()
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.Fields(string(out) + " 0")[0])
	return pid
}

// startServer starts the local node again, as scripts/install-rabbitmq
// does, and waits until it accepts connections.
func startServer(t testing.TB) error {
	t.Helper()
	out, err := exec.Command(startScript).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", startScript, err, out)
	}
	return rabbitmqctl(t, "-q", "await_startup", "--timeout", "120")
}

// TestBrokerRestart stops the RabbitMQ server process (rabbitmqctl
// shutdown: the node exits, every connection drops) and starts a new one
// (scripts/install-rabbitmq) while a publisher publishes with confirms and
// a queue group consumes: every confirmed message is received after the
// restart (quorum queues confirm only what is on disk), publishing during
// the outage fails within its context, and the broker reconnects by
// itself.
func TestBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts the server")
	}
	u := serverURL(t)
	if pu, err := url.Parse(u); err != nil || (pu.Hostname() != "127.0.0.1" && pu.Hostname() != "localhost") {
		t.Skipf("FERRY_RABBITMQ_URL %s is not the local server that rabbitmqctl restarts", u)
	}
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		t.Skip("rabbitmqctl not found: restarting the server needs it (scripts/install-rabbitmq installs it)")
	}
	if err := rabbitmqctl(t, "-q", "await_startup", "--timeout", "60"); err != nil {
		t.Skipf("rabbitmqctl cannot reach the node, so the test cannot restart it: %v", err)
	}
	if _, err := os.Stat(startScript); err != nil {
		t.Skipf("%s not found: the test starts the server again with it", startScript)
	}
	t.Cleanup(func() {
		if serverPID() == 0 {
			if err := startServer(t); err != nil {
				t.Errorf("starting the server again: %v", err)
			}
		}
	})
	ctx := ferrytest.Context(t)
	b := newBroker(t, WithQueueGroup("restart", "restart.jobs"))
	var (
		mu        sync.Mutex
		received  = map[int]int{}
		confirmed = map[int]bool{}
		failed    atomic.Int64
	)
	sub, err := broker.Subscribe(ctx, b, "restart.jobs", func(ctx context.Context, e *broker.Event[Job]) error {
		mu.Lock()
		received[e.Data.N]++
		mu.Unlock()
		return nil
	}, broker.Queue("restart"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Drain(ctx)
	nConfirmed := func() int { mu.Lock(); defer mu.Unlock(); return len(confirmed) }
	stop := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := broker.Publish(pctx, b, "restart.jobs", &Job{N: i}, broker.WithID("job-"+strconv.Itoa(i)))
			cancel()
			if err != nil {
				failed.Add(1)
				continue
			}
			mu.Lock()
			confirmed[i] = true
			mu.Unlock()
		}
	}()
	var stopOnce sync.Once
	stopPub := func() { stopOnce.Do(func() { close(stop) }); <-pubDone }
	defer stopPub()
	ferrytest.Eventually(t, "200 confirmed before the restart", func() bool { return nConfirmed() >= 200 })
	oldPID := serverPID()
	if err := rabbitmqctl(t, "-q", "shutdown"); err != nil {
		t.Skipf("cannot stop the server: %v", err)
	}
	before := nConfirmed()
	// Publishing while it is down fails within its context, naming the
	// topic; it never hangs or claims success.
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	err = broker.Publish(pctx, b, "restart.jobs", &Job{N: -1})
	cancel()
	if err == nil || !strings.Contains(err.Error(), "restart.jobs") {
		t.Errorf("Publish with the server down = %v, want an error naming the topic", err)
	} else if c := errs.CodeOf(err); c != errs.DeadlineExceeded && c != errs.Unavailable {
		t.Errorf("Publish with the server down = %v (%v), want deadline_exceeded or unavailable", err, c)
	}
	if pid := serverPID(); pid != 0 {
		t.Fatalf("rabbitmqctl shutdown returned with the node's process %d still running", pid)
	}
	if err := startServer(t); err != nil {
		t.Fatal(err)
	}
	newPID := serverPID()
	ferrytest.Eventually(t, "200 more confirmed after the restart", func() bool { return nConfirmed() >= before+200 })
	stopPub()
	lost := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for i := range confirmed {
			if received[i] == 0 {
				n++
			}
		}
		return n
	}
	if err := ferrytest.Poll(ctx, func() bool { return lost() == 0 }); err != nil {
		t.Errorf("%d confirmed messages never received: %v", lost(), err)
	}
	nLost := lost()
	mu.Lock()
	defer mu.Unlock()
	extra, dups := 0, 0
	for i, c := range received {
		if !confirmed[i] {
			extra++
		}
		dups += c - 1
	}
	t.Logf("broker restart (server process %d stopped, %d started): %d confirmed (%d before the stop), %d publishes failed during the outage, %d received: %d confirmed lost, %d unconfirmed but stored, %d duplicates",
		oldPID, newPID, len(confirmed), before, failed.Load(), len(received), nLost, extra, dups)
}
