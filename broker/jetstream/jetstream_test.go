package jetstream_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	jsbroker "github.com/ferry-go/ferry/broker/jetstream"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(crashEnv); url != "" {
		os.Exit(runConsumer(url)) // the consumer process of TestConsumerCrash
	}
	goleak.VerifyTestMain(m)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newJS starts an embedded JetStream server and returns a JetStream
// context on a connection to it.
func newJS(t testing.TB) (jetstream.JetStream, string) {
	t.Helper()
	ns := ferrytest.NATS(t)
	nc := ferrytest.Connect(t, ns.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New = %v", err)
	}
	return js, ns.ClientURL()
}

func newBroker(t testing.TB, js jetstream.JetStream, opts ...jsbroker.Option) *jsbroker.Broker {
	t.Helper()
	b, err := jsbroker.New(ctxT(t), js, opts...)
	if err != nil {
		t.Fatalf("jsbroker.New = %v", err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

func TestConformance(t *testing.T) {
	ferrytest.BrokerConformance(t, ferrytest.BrokerCaps{Redelivery: true, DeadLetter: true, Dedupe: true, Ordered: true, Durable: true},
		func(t testing.TB) broker.Broker {
			js, _ := newJS(t)
			return newBroker(t, js, jsbroker.WithStream(jetstream.StreamConfig{Name: "CONF", Subjects: []string{"conf.>"}, Storage: jetstream.MemoryStorage}))
		})
}
