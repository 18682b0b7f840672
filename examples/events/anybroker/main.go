// Command anybroker is the events example (examples/events) with the
// Kafka and RabbitMQ broker plug-ins linked in, so that broker.kind
// selects any of JetStream, core NATS, Kafka and RabbitMQ by
// configuration only. It is a module of its own, as the plug-ins are: a
// program that does not import them never downloads their clients.
//
//	cd examples/events/anybroker
//	go run .                                                      # JetStream, embedded NATS
//	FERRY_BROKER_KIND=kafka FERRY_BROKER_SETTINGS='{"brokers":["localhost:9092"]}' go run .
//	FERRY_BROKER_KIND=rabbitmq FERRY_BROKER_SETTINGS='{"url":"amqp://guest:guest@localhost:5672/"}' go run .
//	EVENTS_KAFKA=in-process go run .                             # Kafka, on an in-process kfake cluster
//
// EVENTS_KAFKA=in-process starts a fake Kafka cluster in the process
// (github.com/twmb/franz-go/pkg/kfake, the one the plug-in's tests use)
// and makes it the default broker — nothing to install, nothing kept at
// exit. Everything else is as in examples/events: flags, FERRY_*
// variables and a file over shop.Defaults (README.md there).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferry-go/ferry/config"
	_ "github.com/ferry-go/ferry/contrib/broker/kafka"    // broker.kind: kafka
	_ "github.com/ferry-go/ferry/contrib/broker/rabbitmq" // broker.kind: rabbitmq
	"github.com/ferry-go/ferry/examples/events/shop"
	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "events:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string) error {
	var defaults []func(*config.Config)
	switch v := getenv("EVENTS_KAFKA"); v {
	case "":
	case "in-process":
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
		if err != nil {
			return fmt.Errorf("in-process Kafka: %w", err)
		}
		defer c.Close()
		defaults = append(defaults, InProcessKafka(c.ListenAddrs()))
	default:
		return fmt.Errorf("EVENTS_KAFKA = %q: want in-process or nothing", v)
	}
	return shop.Main(ctx, args, getenv, defaults...)
}

// InProcessKafka makes the Kafka cluster at addrs the default broker.
func InProcessKafka(addrs []string) func(*config.Config) {
	return func(c *config.Config) {
		c.Broker.Kind = "kafka"
		c.Broker.Settings = map[string]any{"brokers": addrs}
	}
}
