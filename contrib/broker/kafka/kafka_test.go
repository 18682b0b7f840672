package kafka_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/contrib/broker/kafka"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(crashEnv); addr != "" {
		os.Exit(runConsumer(addr))
	}
	goleak.VerifyTestMain(m)
}

// partitions is how many partitions the test clusters give a new topic.
const partitions = 4

// newCluster starts an in-process Kafka cluster for the test and returns
// its address.
func newCluster(t testing.TB, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(partitions)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// newBroker returns a broker on the cluster at addr, closed at the end of
// the test.
func newBroker(t testing.TB, addr string, opts ...kafka.Option) *kafka.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ferrytest.WaitBound)
	defer cancel()
	b, err := kafka.New(ctx, append([]kafka.Option{kafka.WithSeeds(addr), kafka.WithTopicRefresh(500 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

// caps are the guarantees the Kafka broker states; see doc.go.
var caps = ferrytest.BrokerCaps{Redelivery: true, DeadLetter: true, Durable: true}

func TestConformance(t *testing.T) {
	addr := newCluster(t)
	ferrytest.BrokerConformance(t, caps, func(t testing.TB) broker.Broker { return newBroker(t, addr) })
}
