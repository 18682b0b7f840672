package shop_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/examples/events/shop"
	"github.com/ferry-go/ferry/examples/events/shop/shoptest"
	"github.com/ferry-go/ferry/internal/dbtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

// TestJetStream runs the example's scenario on its default broker. The
// plug-in brokers run it in examples/events/anybroker.
func TestJetStream(t *testing.T) {
	shoptest.Scenario(t, shoptest.Config(t, nil), time.Minute)
}

// TestJetStreamOnPostgres runs it with orders' outbox and billing's inbox
// on PostgreSQL (the relay woken by LISTEN/NOTIFY).
func TestJetStreamOnPostgres(t *testing.T) {
	shoptest.Scenario(t, shoptest.Config(t, nil), time.Minute, shop.WithDatabase(dbtest.PostgresURL(t)))
}

// TestPluginNotLinked: a plug-in's kind in a program that does not import
// it names the package to import.
func TestPluginNotLinked(t *testing.T) {
	cfg := shoptest.Config(t, map[string]string{"FERRY_BROKER_KIND": "kafka"})
	_, err := shop.New(cfg, 0, nil)
	if err == nil || !strings.Contains(err.Error(), "github.com/ferry-go/ferry/contrib/broker/kafka") {
		t.Fatalf("New(broker.kind kafka, not linked) = %v, want an error naming the package to import", err)
	}
}

func TestMainRefuses(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--failure-rate", "2"}, nil, "failure rate 2: want 0 to 1"},
		{nil, map[string]string{"BILLING_FAILURE_RATE": "lots"}, `BILLING_FAILURE_RATE = "lots"`},
		{[]string{"--broker", "none"}, nil, "the events example needs a broker"},
		{[]string{"--broker", "memory"}, nil, "billing would never see an order"},
		{[]string{"--broker", "carrier-pigeon"}, nil, "carrier-pigeon"},
	} {
		err := shop.Main(context.Background(), c.args, env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Main(%q, %v) = %v, want an error containing %q", c.args, c.env, err, c.want)
		}
	}
}
