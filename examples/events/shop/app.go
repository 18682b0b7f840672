package shop

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/inbox"
	"github.com/ferry-go/ferry/outbox"
	"github.com/ferry-go/ferry/outbox/pgnotify"
	"github.com/ferry-go/ferry/server"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for a postgres:// database
	"github.com/spf13/pflag"
	_ "modernc.org/sqlite" // the "sqlite" driver, the default
)

// Defaults are the example's configuration before any file, FERRY_*
// variable or flag: orders on HTTP :8081 and NATS, an embedded NATS server
// with JetStream on 127.0.0.1:4223 (so it runs beside the greeter example,
// which takes 4222), and the JetStream broker with the EVENTS stream.
// Every key can be overridden as docs/CONFIG.md says, broker.kind and
// broker.settings included.
func Defaults(c *config.Config) {
	c.Service.Name = "orders"
	c.Service.Version = "1.0.0"
	c.Service.Description = "Places orders and publishes OrderPlaced"
	c.Transports.HTTP.Addr = ":8081"
	c.Transports.GRPC.Enabled = false
	c.NATS.Embedded.Port = 4223
	c.Admin.Enabled = false
	c.Broker.Kind = "jetstream"
	c.Broker.JetStream.Streams = []config.Stream{EventsStream}
}

// EventsStream stores the events on JetStream. One replica suits the
// embedded server; use three on a cluster. Events live under "events."
// because the NATS transport answers requests on "<service>.*": a topic
// "orders.placed" would reach the orders service's RPC subscription too.
var EventsStream = config.Stream{
	Name:       "EVENTS",
	Subjects:   []string{"events.>"},
	Duplicates: 10 * time.Minute, // an order ID placed twice within this window is stored once
	MaxAge:     7 * 24 * time.Hour,
}

// MaxDeliver is how many times billing tries an order before it goes to
// the dead-letter topic.
const MaxDeliver = 4

// BillingOptions are billing's subscription to TopicOrderPlaced: a queue
// group (a consumer group on Kafka, a durable queue on RabbitMQ, a durable
// consumer on JetStream), MaxDeliver attempts with back-off, eight at once.
var BillingOptions = []broker.SubscribeOption{
	broker.Queue("billing"),
	broker.MaxDeliver(MaxDeliver),
	broker.Backoff(200*time.Millisecond, 500*time.Millisecond, time.Second),
	broker.Concurrency(8),
}

// MonitorOptions are billing's subscription to DeadLetters.
var MonitorOptions = []broker.SubscribeOption{broker.Queue("dead-letter-monitor")}

// App is the example's two services in one process, built from one
// configuration: orders as it says, billing from a copy with no listener
// of its own, on the same broker (and, for a NATS broker, the same NATS
// server), each with its own pool on the example's database.
type App struct {
	cfg     *config.Config
	Orders  *ferry.Service
	Billing *ferry.Service
	Bill    *Billing
	Monitor *Monitor
	logger  *slog.Logger

	dsn       string
	tmp       string // the default SQLite database's directory, removed by Stop
	ordersDB  *sql.DB
	billingDB *sql.DB
	inbox     *inbox.Inbox
}

// Option configures an App.
type Option func(*App)

// WithDatabase sets the example's database: a postgres:// URL (pgx), or
// a SQLite data source name (modernc.org/sqlite, e.g.
// "file:events.db?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate").
// The default is a SQLite file in a temporary directory, removed at Stop.
func WithDatabase(dsn string) Option { return func(a *App) { a.dsn = dsn } }

// driverOf names the database/sql driver of a data source name.
func driverOf(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return "pgx"
	}
	return "sqlite"
}

// New builds orders from cfg; billing, whose NATS URL may be the one
// orders' embedded server gets, is built by Start. failureRate is the
// fraction of billing attempts that fail (0 to 1).
func New(cfg *config.Config, failureRate float64, logger *slog.Logger, opts ...Option) (*App, error) {
	if failureRate < 0 || failureRate > 1 {
		return nil, fmt.Errorf("failure rate %v: want 0 to 1", failureRate)
	}
	if logger == nil {
		logger = slog.Default()
	}
	switch cfg.Broker.Kind {
	case "none":
		return nil, fmt.Errorf("broker.kind = none (from %s): the events example needs a broker", cfg.Source("broker.kind"))
	case "memory":
		return nil, fmt.Errorf("broker.kind = memory (from %s): orders and billing are two services, each with a memory broker of its own, so billing would never see an order; use jetstream, nats, or a plug-in's kind", cfg.Source("broker.kind"))
	case "nats":
		logger.Warn("events: core NATS is at most once: a failed billing attempt is not retried and nothing is dead-lettered; use jetstream for the guarantees")
	}
	a := &App{cfg: cfg, logger: logger, Monitor: &Monitor{Logger: logger}}
	for _, o := range opts {
		if o != nil {
			o(a)
		}
	}
	if a.dsn == "" {
		dir, err := os.MkdirTemp("", "ferry-events-")
		if err != nil {
			return nil, err
		}
		a.tmp = dir
		a.dsn = "file:" + filepath.Join(dir, "events.db") + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	}
	var err error
	if a.ordersDB, err = sql.Open(driverOf(a.dsn), a.dsn); err == nil {
		a.billingDB, err = sql.Open(driverOf(a.dsn), a.dsn)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("database: %w", err), a.close())
	}
	a.Bill = &Billing{DB: a.billingDB, FailureRate: failureRate, Logger: logger}
	a.inbox = inbox.New(a.billingDB, inbox.WithLogger(logger))
	relayOpts := []outbox.Option{outbox.WithLogger(logger)}
	if driverOf(a.dsn) == "pgx" {
		relayOpts = append(relayOpts, outbox.WithNotifier(pgnotify.New(a.ordersDB))) // commits wake the relay wherever they are made
	}
	relay := outbox.NewRelay(a.ordersDB, relayOpts...)
	orders, err := config.NewService(cfg, func(svc *ferry.Service, srv *server.Server) {
		server.Handle(srv, "Place", Orders{DB: a.ordersDB}.Place, server.WithRoute("POST /v1/orders"))
	}, config.WithServiceOptions(ferry.WithComponent(relay)))
	if err != nil {
		return nil, errors.Join(err, a.close())
	}
	a.Orders = orders
	return a, nil
}

// migrate creates the example's tables: orders (and the outbox's, which
// the relay would make too) and billing's charges (the inbox makes its
// own).
func (a *App) migrate(ctx context.Context) error {
	d, err := outbox.DialectOf(a.ordersDB)
	if err != nil {
		return err
	}
	if err := outbox.Migrate(ctx, a.ordersDB, d); err != nil {
		return err
	}
	for _, stmt := range []string{OrdersSchema, ChargesSchema} {
		if _, err := a.ordersDB.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("database: %w", err)
		}
	}
	return nil
}

// close closes the databases and removes the default one.
func (a *App) close() error {
	var list []error
	for _, db := range []*sql.DB{a.ordersDB, a.billingDB} {
		if db != nil {
			list = append(list, db.Close())
		}
	}
	if a.tmp != "" {
		list = append(list, os.RemoveAll(a.tmp))
	}
	return errors.Join(list...)
}

// billingConfig is orders' configuration for billing: no transports, no
// admin server, and orders' NATS server when orders embeds it.
func (a *App) billingConfig() (*config.Config, error) {
	c := *a.cfg
	c.Service.Name = "billing"
	c.Service.Description = "Charges placed orders"
	c.Transports.HTTP.Enabled, c.Transports.GRPC.Enabled, c.Transports.NATS.Enabled = false, false, false
	c.Gateway.Enabled = false
	c.Admin.Enabled = false
	if c.NATS.URL == "" && (c.Broker.Kind == "jetstream" || c.Broker.Kind == "nats" || c.Registry.Kind != "none") {
		u, ok := a.Orders.Addr("nats")
		if !ok {
			return nil, errors.New("billing needs the NATS server orders embeds, and orders has no NATS transport: set nats.url or transports.nats.enabled")
		}
		c.NATS.URL = u
	}
	return &c, nil
}

// Start creates the tables, starts orders (and its outbox relay), then
// billing, which subscribes to OrderPlaced behind its inbox and to its
// dead letters.
func (a *App) Start(ctx context.Context) error {
	if err := a.migrate(ctx); err != nil {
		return errors.Join(err, a.close())
	}
	if err := a.Orders.Start(ctx); err != nil {
		return errors.Join(fmt.Errorf("orders: %w", err), a.close())
	}
	bc, err := a.billingConfig()
	if err == nil {
		billing := append([]broker.SubscribeOption{broker.WithMiddleware(a.inbox.Middleware())}, BillingOptions...)
		a.Billing, err = config.NewService(bc, func(svc *ferry.Service, _ *server.Server) {
			ferry.Subscribe(svc, TopicOrderPlaced, a.Bill.OnOrderPlaced, billing...)
			ferry.Subscribe(svc, DeadLetters, a.Monitor.OnDeadLetter, MonitorOptions...)
		}, config.WithServiceOptions(ferry.WithComponent(a.inbox)))
	}
	if err == nil {
		err = a.Billing.Start(ctx)
	}
	if err != nil {
		a.Billing = nil
		return errors.Join(fmt.Errorf("billing: %w", err), a.Orders.Stop(ctx), a.close())
	}
	return nil
}

// Stop stops billing (draining its subscriptions), then orders (its
// relay finishing the round in flight), and closes the databases.
func (a *App) Stop(ctx context.Context) error {
	var list []error
	if a.Billing != nil {
		list = append(list, a.Billing.Stop(ctx))
	}
	return errors.Join(append(list, a.Orders.Stop(ctx), a.close())...)
}

// PlaceURL is where orders' Place endpoint answers over HTTP, once started.
func (a *App) PlaceURL() (string, bool) {
	addr, ok := a.Orders.Addr("http")
	if !ok {
		return "", false
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", false
	}
	if host, port, err := net.SplitHostPort(u.Host); err == nil {
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			u.Host = net.JoinHostPort("localhost", port) // as a command line names a wildcard listener
		}
	}
	return u.String() + "/orders/Place", true
}

// Main is the example's main: it reads flags (config.RegisterFlags and
// --failure-rate), FERRY_* variables and a file over Defaults, runs both
// services until ctx ends, then drains them. getenv reads
// BILLING_FAILURE_RATE, the default of --failure-rate. defaults change
// the configuration's defaults after Defaults (every source still
// overrides them).
func Main(ctx context.Context, args []string, getenv func(string) string, defaults ...func(*config.Config)) error {
	fs := pflag.NewFlagSet("events", pflag.ContinueOnError)
	config.RegisterFlags(fs)
	rate := 0.3
	if v := getenv("BILLING_FAILURE_RATE"); v != "" {
		var err error
		if rate, err = strconv.ParseFloat(v, 64); err != nil {
			return fmt.Errorf("BILLING_FAILURE_RATE = %q: want a number from 0 to 1", v)
		}
	}
	fs.Float64Var(&rate, "failure-rate", rate, "fraction of billing attempts that fail, 0 to 1 (env BILLING_FAILURE_RATE)")
	db := fs.String("db", getenv("EVENTS_DB"), "the orders' and billing's database: a postgres:// URL, or a SQLite data source name (env EVENTS_DB; default a SQLite file in a temporary directory)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := config.Load(config.Sources{Flags: fs, Defaults: func(c *config.Config) {
		Defaults(c)
		for _, d := range defaults {
			d(c)
		}
	}})
	if err != nil {
		return err
	}
	logger := config.NewLogger(cfg.Log)
	slog.SetDefault(logger)
	a, err := New(cfg, rate, logger, WithDatabase(*db))
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	place, _ := a.PlaceURL()
	logger.Info("events: ready", "broker", cfg.Broker.Kind, "database", driverOf(a.dsn), "place_orders", "curl -s -d '{\"customer\":\"ada\",\"amount\":4200}' "+place)
	<-ctx.Done()
	logger.Info("events: stopping; subscriptions drain, unfinished messages go back to the broker")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return a.Stop(sctx)
}
