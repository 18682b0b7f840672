package ferrytest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
)

// CrashJob is the message of a consumer-crash test (ConsumerCrash).
type CrashJob struct {
	N int `json:"n"`
}

// ServeCrashConsumer is the consumer process of a ConsumerCrash test, run
// from the test binary's TestMain when the test's environment variable is
// set: it subscribes to topic on b with opts, writes "done N" to stderr
// when a handler has finished with job N — before its acknowledgement can
// leave — prints "ready" on stdout, and serves until it is killed or its
// stdin closes. It returns the process's exit code.
//
//	func TestMain(m *testing.M) {
//		if url := os.Getenv(crashEnv); url != "" {
//			b := … // the broker on url
//			os.Exit(ferrytest.ServeCrashConsumer(b, "crash.jobs", crashOpts()...))
//		}
//		goleak.VerifyTestMain(m)
//	}
func ServeCrashConsumer(b broker.Broker, topic string, opts ...broker.SubscribeOption) int {
	ctx := context.Background()
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stderr)
	_, err := broker.Subscribe(ctx, b, topic, func(ctx context.Context, e *broker.Event[CrashJob]) error {
		time.Sleep(time.Millisecond) // work, so that the kill finds handlers busy
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "done %d\n", e.Data.N)
		return out.Flush() // reported before the acknowledgement leaves
	}, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until killed, or the parent closes stdin
	return 0
}

// ConsumerCrash is a broker's consumer-crash test: Jobs messages are
// published, a consumer process (ServeCrashConsumer, started with
// StartChild(t, Env, Value)) is SIGKILLed after it reported a third of
// them, mid-batch, and a new consumer in the same queue group takes over.
// Every job must then be processed at least once, and at most
// MaxDuplicates processed twice: those in flight, unacknowledged, when the
// process died.
type ConsumerCrash struct {
	// Broker publishes the jobs and runs the second consumer.
	Broker broker.Broker
	// Topic and Options are those of both consumers' subscriptions
	// (Options with a broker.Queue).
	Topic   string
	Options []broker.SubscribeOption
	// Jobs is how many messages are published; 0 means 2,000.
	Jobs int
	// Env and Value start the consumer process.
	Env, Value string
	// Settled reports whether the broker has nothing left to deliver to
	// the group — no message waiting, none unacknowledged — so that no
	// redelivery can still come and the duplicates can be counted.
	Settled func() bool
	// MaxDuplicates is how many jobs may be processed twice.
	MaxDuplicates int
}

// CrashResult is what a ConsumerCrash test measured.
type CrashResult struct {
	Jobs, Before, After, Duplicates int
}

func (r CrashResult) String() string {
	return fmt.Sprintf("%d jobs; %d processed before the kill, %d after; %d processed twice", r.Jobs, r.Before, r.After, r.Duplicates)
}

// Run runs the test, failing t if a job is never processed or more than
// MaxDuplicates are processed twice, and returns the counts.
func (c ConsumerCrash) Run(t *testing.T) CrashResult {
	t.Helper()
	total := c.Jobs
	if total == 0 {
		total = 2000
	}
	ctx := Context(t)
	for i := range total {
		if err := broker.Publish(ctx, c.Broker, c.Topic, &CrashJob{N: i}); err != nil {
			t.Fatalf("Publish(%d) = %v", i, err)
		}
	}
	child := StartChild(t, c.Env, c.Value)
	Eventually(t, "the consumer process handling a third of the jobs", func() bool {
		return len(doneJobs(child.Stderr())) >= total/3
	})
	if err := child.Kill(); err != nil { // SIGKILL, mid-batch
		t.Fatal(err)
	}
	first := doneJobs(child.Stderr()) // all it reported before dying

	var (
		mu     sync.Mutex
		second = map[int]int{}
	)
	sub, err := broker.Subscribe(ctx, c.Broker, c.Topic, func(ctx context.Context, e *broker.Event[CrashJob]) error {
		mu.Lock()
		second[e.Data.N]++
		mu.Unlock()
		return nil
	}, c.Options...)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Drain(ctx)
	missing := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for i := range total {
			if first[i] == 0 && second[i] == 0 {
				n++
			}
		}
		return n
	}
	Eventually(t, "every job processed once the new consumer runs", func() bool { return missing() == 0 })
	Eventually(t, "nothing left to deliver to the group", c.Settled)
	if err := sub.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	r := CrashResult{Jobs: total, Before: len(first), After: len(second)}
	for i := range total {
		if n := first[i] + second[i]; n > 1 {
			r.Duplicates += n - 1
		}
	}
	if r.Duplicates > c.MaxDuplicates {
		t.Errorf("consumer crash: %v; want at most %d processed twice (those in flight at the kill)", r, c.MaxDuplicates)
	}
	return r
}

// doneJobs counts the "done N" lines of a consumer process's output; a
// last line cut short by the kill does not count.
func doneJobs(out string) map[int]int {
	jobs := map[int]int{}
	for line := range strings.Lines(out) {
		line, whole := strings.CutSuffix(line, "\n")
		if n, ok := strings.CutPrefix(line, "done "); ok && whole {
			if v, err := strconv.Atoi(n); err == nil {
				jobs[v]++
			}
		}
	}
	return jobs
}
