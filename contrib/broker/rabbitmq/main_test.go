package rabbitmq

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/ferrytest"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(crashEnv); url != "" {
		os.Exit(runConsumer(url)) // the consumer process of TestConsumerCrash
	}
	goleak.VerifyTestMain(m)
}

// serverURL returns the RabbitMQ server the tests use, skipping the test
// with a message naming scripts/install-rabbitmq when none answers.
func serverURL(t testing.TB) string {
	t.Helper()
	probe.Do(func() {
		probe.url = os.Getenv("FERRY_RABBITMQ_URL")
		if probe.url == "" {
			probe.url = DefaultURL
		}
		conn, err := amqp.DialConfig(probe.url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
		if err != nil {
			probe.err = err
			return
		}
		_ = conn.Close()
	})
	if probe.err != nil {
		t.Skipf("no RabbitMQ server at %s (%v): run scripts/install-rabbitmq (installs and starts Debian's rabbitmq-server) or set FERRY_RABBITMQ_URL", probe.url, probe.err)
	}
	return probe.url
}

var probe struct {
	sync.Once
	url string
	err error
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testExchange returns an exchange name of the test's own, so that tests
// share no queues.
func testExchange() string { return "ferrytest-" + strings.ToLower(rand.Text()[:10]) }

// newBroker returns a broker on an exchange of its own; at the end of the
// test (after the broker's own Close) its exchange and durable queues are
// deleted.
func newBroker(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	url := serverURL(t)
	b, err := New(ctxT(t), url, append([]Option{WithExchange(testExchange())}, opts...)...)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
		deleteTopology(t, url, b)
	})
	return b
}

// deleteTopology deletes b's exchange and the durable queues it declared.
func deleteTopology(t testing.TB, url string, b *Broker) {
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Logf("cleaning up: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Logf("cleaning up: %v", err)
		return
	}
	b.qmu.Lock()
	defer b.qmu.Unlock()
	for q := range b.queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			t.Logf("cleaning up queue %s: %v", q, err)
			if ch, err = conn.Channel(); err != nil {
				return
			}
		}
	}
	_ = ch.ExchangeDelete(b.o.exchange, false, false)
}

func TestConformance(t *testing.T) {
	serverURL(t)
	ferrytest.BrokerConformance(t, ferrytest.BrokerCaps{Redelivery: true, DeadLetter: true, Ordered: true},
		func(t testing.TB) broker.Broker { return newBroker(t) })
}
