package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/contrib/broker/rabbitmq"
	"github.com/ferry-go/ferry/examples/events/shop"
	"github.com/ferry-go/ferry/examples/events/shop/shoptest"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestKafka runs the example's scenario on Kafka (an in-process kfake
// cluster), chosen by FERRY_BROKER_KIND and FERRY_BROKER_SETTINGS only.
func TestKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	shoptest.Scenario(t, shoptest.Config(t, map[string]string{
		"FERRY_BROKER_KIND":     "kafka",
		"FERRY_BROKER_SETTINGS": settings(t, map[string]any{"brokers": c.ListenAddrs()}),
	}), 2*time.Minute)
}

// TestRabbitMQ runs it on the RabbitMQ server of FERRY_RABBITMQ_URL
// (default the local one scripts/install-rabbitmq starts), on an exchange
// of its own whose queues it deletes at the end.
func TestRabbitMQ(t *testing.T) {
	url := os.Getenv("FERRY_RABBITMQ_URL")
	if url == "" {
		url = rabbitmq.DefaultURL
	}
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Skipf("no RabbitMQ server at %s (%v): run scripts/install-rabbitmq (installs and starts Debian's rabbitmq-server) or set FERRY_RABBITMQ_URL", url, err)
	}
	defer conn.Close()
	exchange := "ferry-events-test-" + strings.ToLower(rand.Text()[:8])
	defer deleteTopology(t, conn, exchange)
	shoptest.Scenario(t, shoptest.Config(t, map[string]string{
		"FERRY_BROKER_KIND":     "rabbitmq",
		"FERRY_BROKER_SETTINGS": settings(t, map[string]any{"url": url, "exchange": exchange}),
	}), 2*time.Minute)
}

// TestInProcessKafka: EVENTS_KAFKA=in-process makes Kafka the default,
// which the configuration still overrides; anything else is refused.
func TestInProcessKafka(t *testing.T) {
	cfg := shoptest.Config(t, nil)
	InProcessKafka([]string{"127.0.0.1:9092"})(cfg)
	if cfg.Broker.Kind != "kafka" || cfg.Broker.Settings["brokers"] == nil {
		t.Errorf("InProcessKafka gives broker %+v", cfg.Broker)
	}
	err := run(context.Background(), nil, func(k string) string { return map[string]string{"EVENTS_KAFKA": "yes"}[k] })
	if err == nil || !strings.Contains(err.Error(), `EVENTS_KAFKA = "yes"`) {
		t.Errorf("run(EVENTS_KAFKA=yes) = %v, want it refused", err)
	}
}

func settings(t *testing.T, m map[string]any) string {
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// deleteTopology deletes the exchange and the durable queues the example
// declared on it: billing's subscriptions' (rabbitmq.DurableQueues) and
// the dead-letter queue.
func deleteTopology(t *testing.T, conn *amqp.Connection, exchange string) {
	queues := []string{exchange + ".dead-letters"}
	for topic, opts := range map[string][]broker.SubscribeOption{shop.TopicOrderPlaced: shop.BillingOptions, shop.DeadLetters: shop.MonitorOptions} {
		cfg, err := broker.NewSubscribeConfig(topic, opts...)
		if err != nil {
			t.Fatal(err)
		}
		queues = append(queues, rabbitmq.DurableQueues(exchange, topic, cfg)...)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Logf("cleaning up: %v", err)
		return
	}
	defer ch.Close()
	for _, q := range queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			t.Errorf("cleaning up queue %s: %v", q, err)
			if ch, err = conn.Channel(); err != nil {
				return
			}
		}
	}
	_ = ch.ExchangeDelete(exchange, false, false)
}
