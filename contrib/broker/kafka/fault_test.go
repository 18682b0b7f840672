package kafka_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/contrib/broker/kafka"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type Job struct {
	N int `json:"n"`
}

// crashEnv makes the test binary a consumer process for TestConsumerCrash:
// its value is the Kafka address.
const crashEnv = "FERRY_KAFKA_TEST_CONSUMER"

const (
	crashTopic = "crash.jobs"
	crashQueue = "workers"
	crashGroup = crashQueue + "__" + crashTopic // the queue's consumer group
	crashConc  = 8
)

// groupTimeouts make a dead member leave its group soon: the session
// timeout is the cluster's minimum.
func groupTimeouts() kafka.Option {
	return kafka.WithClientOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond))
}

func crashOpts() []broker.SubscribeOption {
	return []broker.SubscribeOption{broker.Queue(crashQueue), broker.Concurrency(crashConc), broker.Backoff(10 * time.Millisecond)}
}

// runConsumer processes jobs, writing "done N P O" (job, partition,
// offset) to stderr when a handler has finished with job N — before its
// offset can be committed — until it is killed.
func runConsumer(addr string) int {
	ctx := context.Background()
	b, err := kafka.New(ctx, kafka.WithSeeds(addr), groupTimeouts())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var mu sync.Mutex
	_, err = broker.Subscribe(ctx, b, crashTopic, func(ctx context.Context, e *broker.Event[Job]) error {
		time.Sleep(time.Millisecond) // work
		r, _ := kafka.RecordFromContext(ctx)
		mu.Lock()
		defer mu.Unlock()
		_, err := fmt.Fprintf(os.Stderr, "done %d %d %d\n", e.Data.N, r.Partition, r.Offset)
		return err
	}, crashOpts()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	select {} // until killed
}

var doneLine = regexp.MustCompile(`(?m)^done (\d+) (\d+) (\d+)$`)

// processed is one job as a consumer reported it.
type processed struct {
	n         int
	partition int32
	offset    int64
}

func parseDone(s string) []processed {
	var out []processed
	for _, m := range doneLine.FindAllStringSubmatch(s, -1) {
		n, _ := strconv.Atoi(m[1])
		p, _ := strconv.Atoi(m[2])
		o, _ := strconv.ParseInt(m[3], 10, 64)
		out = append(out, processed{n, int32(p), o})
	}
	return out
}

// TestConsumerCrash publishes 2,000 jobs, SIGKILLs the consumer process
// mid-batch, and lets a new consumer finish: every job is processed at
// least once, and the only jobs processed twice are those whose offsets
// the dead consumer had not committed.
func TestConsumerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	const total = 2000
	addr := newCluster(t)
	ctx := ferrytest.Context(t)
	b := newBroker(t, addr, groupTimeouts())
	for i := range total {
		if err := broker.Publish(ctx, b, crashTopic, &Job{N: i}); err != nil {
			t.Fatalf("Publish(%d) = %v", i, err)
		}
	}

	child := ferrytest.StartChild(t, crashEnv, addr)
	ferrytest.Eventually(t, "the child processing a third of the jobs", func() bool {
		return len(parseDone(child.Stderr())) >= total/3
	})
	if err := child.Kill(); err != nil { // SIGKILL, mid-batch
		t.Fatal(err)
	}
	first := parseDone(child.Stderr())
	committed := groupOffsets(t, ctx, addr, crashGroup)

	var (
		mu     sync.Mutex
		second []processed
	)
	sub, err := broker.Subscribe(ctx, b, crashTopic, func(ctx context.Context, e *broker.Event[Job]) error {
		r, _ := kafka.RecordFromContext(ctx)
		mu.Lock()
		second = append(second, processed{e.Data.N, r.Partition, r.Offset})
		mu.Unlock()
		return nil
	}, crashOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Drain(ctx)
	seen := func() map[int]int {
		counts := map[int]int{}
		for _, p := range first {
			counts[p.n]++
		}
		mu.Lock()
		defer mu.Unlock()
		for _, p := range second {
			counts[p.n]++
		}
		return counts
	}
	ferrytest.Eventually(t, "every job processed", func() bool { return len(seen()) == total })
	// The new consumer's group commit reaching the end means nothing more
	// is coming.
	ferrytest.Eventually(t, "the group committing every offset", func() bool {
		sum := int64(0)
		for _, o := range groupOffsets(t, ctx, addr, crashGroup) {
			sum += o
		}
		return sum == total
	})

	counts := seen()
	mu.Lock()
	defer mu.Unlock()
	dups, uncommitted := 0, 0
	for _, c := range counts {
		dups += c - 1
	}
	for _, p := range first {
		if p.offset >= committed[p.partition] {
			uncommitted++
		}
	}
	for _, p := range second {
		if p.offset < committed[p.partition] {
			t.Errorf("job %d (partition %d offset %d) processed again although its offset was committed (%d)", p.n, p.partition, p.offset, committed[p.partition])
		}
	}
	t.Logf("consumer crash: %d jobs published; %d processed before the kill (%d of them not yet committed), %d after; %d processed twice", total, len(first), uncommitted, len(second), dups)
	if dups > uncommitted {
		t.Errorf("%d jobs processed twice, want at most the %d the dead consumer had not committed", dups, uncommitted)
	}
}

// groupOffsets returns the offsets group committed, by partition of
// crashTopic.
func groupOffsets(t testing.TB, ctx context.Context, addr, group string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
	return out
}
