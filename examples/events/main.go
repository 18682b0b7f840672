// Command events shows event-driven messaging with delivery guarantees:
// an orders service publishes OrderPlaced to NATS JetStream, a billing
// service consumes it — and fails now and then, so you can watch retries
// with back-off and the dead-letter subject at work.
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
// With no NATS URL it starts an embedded NATS server with JetStream on
// 127.0.0.1:4223 (stored in a temporary directory, gone at exit), so it runs
// beside the greeter example (which takes 4222). Flags
// and environment variables: -http (ORDERS_HTTP_ADDR, default :8081), -nats
// (NATS_URL), -nats-port (EVENTS_NATS_PORT, default 4223), -failure-rate
// (BILLING_FAILURE_RATE, default 0.3).
//
// Orders is served over HTTP and NATS (so `nats micro ls` and `ferry dev`'s
// dashboard list it). Calls and events are traced, measured and logged
// (telemetry.Setup): spans are exported only when OTEL_EXPORTER_OTLP_ENDPOINT
// names a collector, as `ferry dev` sets it, and a trace follows an order
// from the HTTP call through the publish to billing's handler.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/broker"
	jsbroker "github.com/ferry-go/ferry/broker/jetstream"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type config struct {
	httpAddr, natsURL string
	natsPort          int
	failureRate       float64
	tel               *telemetry.Telemetry // nil: no telemetry
}

func parseFlags(args []string, getenv func(string) string) (config, error) {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.httpAddr, "http", env("ORDERS_HTTP_ADDR", ":8081"), "orders HTTP listen address (env ORDERS_HTTP_ADDR)")
	fs.StringVar(&c.natsURL, "nats", env("NATS_URL", ""), "NATS server URL, with JetStream; empty starts an embedded server (env NATS_URL)")
	port, err := strconv.Atoi(env("EVENTS_NATS_PORT", "4223"))
	if err != nil {
		return c, fmt.Errorf("EVENTS_NATS_PORT: %w", err)
	}
	fs.IntVar(&c.natsPort, "nats-port", port, "port of the embedded NATS server (env EVENTS_NATS_PORT)")
	rate, err := strconv.ParseFloat(env("BILLING_FAILURE_RATE", "0.3"), 64)
	if err != nil {
		return c, fmt.Errorf("BILLING_FAILURE_RATE: %w", err)
	}
	fs.Float64Var(&c.failureRate, "failure-rate", rate, "fraction of billing attempts that fail, 0 to 1 (env BILLING_FAILURE_RATE)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.failureRate < 0 || c.failureRate > 1 {
		return c, fmt.Errorf("-failure-rate %v: want 0 to 1", c.failureRate)
	}
	return c, nil
}

// eventsStream stores the events. One replica suits the embedded server;
// use three on a cluster. Events live under "events." because the NATS
// transport answers requests on "<service>.*": a topic "orders.placed"
// would reach the orders service's RPC subscription too.
var eventsStream = jetstream.StreamConfig{
	Name:       "EVENTS",
	Subjects:   []string{"events.>"},
	Duplicates: 10 * time.Minute, // an order ID placed twice within this window is stored once
	MaxAge:     7 * 24 * time.Hour,
}

// jetStreamBroker makes, at start, a JetStream broker on nc, traced and
// measured when tel is not nil.
func jetStreamBroker(nc *fnats.Conn, tel *telemetry.Telemetry) func(context.Context) (broker.Broker, error) {
	return func(ctx context.Context) (broker.Broker, error) {
		js, err := jetstream.New(nc.NATS())
		if err != nil {
			return nil, err
		}
		b, err := jsbroker.New(ctx, js, jsbroker.WithStream(eventsStream))
		if err != nil || tel == nil {
			return b, err
		}
		return tel.Broker(b), nil
	}
}

// middleware is the telemetry middleware when c has telemetry.
func (c config) middleware() []middleware.Middleware {
	if c.tel == nil {
		return nil
	}
	return c.tel.Middleware()
}

// app is the two services of the example, in one process.
type app struct {
	cfg             config
	orders, billing *ferry.Service
	ordersNATS      *fnats.Conn
	ordersHTTP      *fhttp.Server
	bill            *Billing
	monitor         *Monitor
}

// newApp wires the services: orders owns the NATS connection (and the
// embedded server when natsURL is empty); billing connects to the same
// server once orders has started.
func newApp(c config, logger *slog.Logger, embedded natsembed.Options) *app {
	a := &app{cfg: c, bill: &Billing{FailureRate: c.failureRate, Logger: logger}, monitor: &Monitor{Logger: logger}}
	osrv := server.New("orders", server.WithVersion("1.0.0"), server.WithDescription("Places orders and publishes OrderPlaced"),
		server.WithLogger(logger), server.WithMiddleware(c.middleware()...))
	a.ordersHTTP = fhttp.NewServer(c.httpAddr)
	opts := []ferry.Option{ferry.WithTransport(a.ordersHTTP), ferry.WithLogger(logger)}
	natsURL := func() string { return c.natsURL }
	if c.natsURL == "" {
		emb := natsembed.New(embedded)
		opts = append(opts, ferry.WithConnection(emb))
		natsURL = emb.ClientURL
	}
	a.ordersNATS = fnats.ConnectTo(natsURL, nats.Name("orders"))
	opts = append(opts, ferry.WithConnection(a.ordersNATS), ferry.WithTransport(a.ordersNATS.Serve()),
		ferry.WithBrokerFrom(jetStreamBroker(a.ordersNATS, c.tel)))
	a.orders = ferry.New(osrv, opts...)
	server.Handle(osrv, "Place", Orders{Broker: a.orders.Broker}.Place, server.WithRoute("POST /v1/orders"))
	return a
}

// start starts orders, then billing on orders' NATS server.
func (a *app) start(ctx context.Context, logger *slog.Logger) error {
	if err := a.orders.Start(ctx); err != nil {
		return fmt.Errorf("orders: %w", err)
	}
	bsrv := server.New("billing", server.WithVersion("1.0.0"), server.WithLogger(logger), server.WithMiddleware(a.cfg.middleware()...))
	bnc := fnats.Connect(a.ordersNATS.NATS().ConnectedUrl(), nats.Name("billing"))
	a.billing = ferry.New(bsrv,
		ferry.WithConnection(bnc),
		ferry.WithBrokerFrom(jetStreamBroker(bnc, a.cfg.tel)),
		ferry.WithLogger(logger),
	)
	ferry.Subscribe(a.billing, TopicOrderPlaced, a.bill.OnOrderPlaced,
		broker.Queue("billing"),
		broker.MaxDeliver(4),
		broker.Backoff(200*time.Millisecond, 500*time.Millisecond, time.Second),
		broker.Concurrency(8))
	ferry.Subscribe(a.billing, DeadLetters, a.monitor.OnDeadLetter, broker.Queue("dead-letter-monitor"))
	if err := a.billing.Start(ctx); err != nil {
		return errors.Join(fmt.Errorf("billing: %w", err), a.orders.Stop(ctx))
	}
	return nil
}

// stop stops billing (draining its subscriptions), then orders.
func (a *app) stop(ctx context.Context) error {
	var list []error
	if a.billing != nil {
		list = append(list, a.billing.Stop(ctx))
	}
	return errors.Join(append(list, a.orders.Stop(ctx))...)
}

func main() {
	c, err := parseFlags(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "events:", err)
		os.Exit(2)
	}
	logger := slog.Default()
	// Traces (exported when OTEL_EXPORTER_OTLP_ENDPOINT is set), metrics and
	// access logs of calls and events.
	if c.tel, err = telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "events", ServiceVersion: "1.0.0", Logger: logger}); err != nil {
		logger.Error("events", "err", err)
		os.Exit(1)
	}
	defer func() { _ = c.tel.Shutdown(context.Background()) }()
	a := newApp(c, logger, natsembed.Options{Port: c.natsPort, JetStream: true})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.start(ctx, logger); err != nil {
		logger.Error("events", "err", err)
		os.Exit(1)
	}
	logger.Info("events: ready", "place_orders", "curl -s -d '{\"customer\":\"ada\",\"amount\":4200}' "+hostPort(a.ordersHTTP.Addr())+"/orders/Place")
	<-ctx.Done()
	logger.Info("events: stopping; subscriptions drain, unfinished messages go back to the stream")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.stop(sctx); err != nil {
		logger.Error("events: stop", "err", err)
		os.Exit(1)
	}
}

// hostPort is addr as a command line would name it: localhost for a
// wildcard host (":8081").
func hostPort(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
