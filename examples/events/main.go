// Command events shows event-driven messaging with delivery guarantees:
// an orders service stores each order with its OrderPlaced event in one
// transaction (a transactional outbox, published by the service's relay),
// a billing service consumes it behind an idempotent inbox — and fails
// now and then, so you can watch retries with back-off and the
// dead-letter topic at work. The database is SQLite in a temporary
// directory by default, PostgreSQL with --db postgres://… (EVENTS_DB). The broker is chosen by configuration:
// NATS JetStream by default, on an embedded NATS server (nothing to
// install).
//
//	go run ./examples/events
//
// then, from another terminal:
//
//	curl -s -d '{"customer":"ada","amount":4200}' localhost:8081/orders/Place
//	curl -s -d '{"customer":"ada","amount":500000}' localhost:8081/orders/Place   # over the credit limit: dead letter
//	curl -s -d '{"customer":"bob","amount":100,"order_id":"o-1"}' localhost:8081/v1/orders  # twice: billed once
//	nats -s localhost:4223 stream ls
//	nats -s localhost:4223 stream get FERRY_DEAD_LETTERS 1   # the dead letter, with its ferry-dead-letter-* headers
//
// The configuration is config.Load's — flags, FERRY_* variables, a file —
// over the example's defaults (shop.Defaults): orders on HTTP :8081 and
// NATS, the embedded server on 127.0.0.1:4223 with its JetStream stored
// in a temporary directory (gone at exit), broker.kind jetstream. So
// --broker memory, FERRY_BROKER_KIND=nats, --http-addr :9000 or
// --nats-url nats://host:4222 change it without code. Kafka and RabbitMQ
// are plug-ins, linked in by examples/events/anybroker (README.md).
// --failure-rate (BILLING_FAILURE_RATE, default 0.3) is the fraction of
// billing attempts that fail.
//
// Calls and events are traced, measured and logged (telemetry.enabled):
// spans are exported only when OTEL_EXPORTER_OTLP_ENDPOINT names a
// collector, as `ferry dev` sets it, and a trace follows an order from the
// HTTP call through the publish to billing's handler.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferry-go/ferry/examples/events/shop"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := shop.Main(ctx, os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "events:", err)
		os.Exit(1)
	}
}
