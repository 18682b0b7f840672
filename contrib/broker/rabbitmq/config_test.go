package rabbitmq

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ferry.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func noEnv(string) (string, bool) { return "", false }

// broker.kind: rabbitmq builds this broker from broker.settings, and a
// service's subscription runs on it.
func TestConfigSelectsRabbitMQ(t *testing.T) {
	url := serverURL(t)
	exchange := testExchange()
	file := writeConfig(t, `
service: {name: rabbit}
transports:
  http: {enabled: false}
  grpc: {enabled: false}
  nats: {enabled: false}
admin: {enabled: false}
log: {level: error}
broker:
  kind: rabbitmq
  settings: {url: "`+url+`", exchange: `+exchange+`, queue_type: classic}
`)
	cfg, err := config.Load(config.Sources{File: file, Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	svc, err := config.NewService(cfg, func(svc *ferry.Service, _ *server.Server) {
		ferry.Subscribe(svc, "cfg.jobs", func(ctx context.Context, e *broker.Event[Job]) error {
			got <- e.Data.N
			return nil
		}, broker.Queue("cfg"))
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ferrytest.Context(t)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b, ok := svc.Broker().(broker.Broker)
	if !ok || b == nil {
		t.Fatalf("service broker = %T", svc.Broker())
	}
	if err := broker.Publish(ctx, b, "cfg.jobs", &Job{N: 42}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n != 42 {
			t.Errorf("got job %d, want 42", n)
		}
	case <-ctx.Done():
		t.Fatal("the subscription never got the message")
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Clean up what the service declared: a broker on the same exchange
	// knows the names.
	c := newBroker(t, WithExchange(exchange), WithQueueType(Classic))
	c.declared(GroupQueue(exchange, "cfg", "cfg.jobs"))
	for _, d := range broker.DefaultBackoff {
		c.declared(RetryQueue(GroupQueue(exchange, "cfg", "cfg.jobs"), d))
	}
}

// Bad settings are problems naming broker.settings.<key>, at Load.
func TestConfigBadSettings(t *testing.T) {
	for _, tt := range []struct{ name, settings, want string }{
		{"no url", `{exchange: x}`, "broker.settings.url"},
		{"not amqp", `{url: "http://127.0.0.1:5672/"}`, "broker.settings.url"},
		{"queue type", `{url: "amqp://127.0.0.1/", queue_type: stream}`, "broker.settings.queue_type"},
		{"unknown key", `{url: "amqp://127.0.0.1/", brokers: [a]}`, "unknown keys: brokers"},
		{"publish timeout", `{url: "amqp://127.0.0.1/", publish_timeout: 1ms}`, "broker.settings.publish_timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := writeConfig(t, "service: {name: x}\nbroker: {kind: rabbitmq, settings: "+tt.settings+"}\n")
			_, err := config.Load(config.Sources{File: file, Env: noEnv})
			var ce *config.Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v, want a *config.Error naming %q", err, tt.want)
			}
		})
	}
}

// New rejects bad options and says where it could not connect, without
// the password.
func TestNewErrors(t *testing.T) {
	ctx := ctxT(t)
	for _, tt := range []struct {
		url  string
		opts []Option
		want string
	}{
		{"http://x/", nil, "url"},
		{DefaultURL, []Option{WithExchange("")}, "exchange"},
		{DefaultURL, []Option{WithExchange("amq.topic")}, "reserved"},
		{DefaultURL, []Option{WithQueueType("stream")}, "queue type"},
		{DefaultURL, []Option{WithQueueGroup("a.b", "x")}, "queue group"},
		{DefaultURL, []Option{WithQueueGroup("g", "a.#")}, "#"},
		{DefaultURL, []Option{WithPublishTimeout(0)}, "publish timeout"},
		{DefaultURL, []Option{WithLogger(nil)}, "logger"},
	} {
		_, err := New(ctx, tt.url, tt.opts...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q, …) = %v, want an invalid_argument naming %q", tt.url, err, tt.want)
		}
	}
	// Nothing listens on port 1.
	_, err := New(ctx, "amqp://guest:secret@127.0.0.1:1/")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "secret") {
		t.Errorf("New(unreachable) = %v, want an error naming the address without the password", err)
	}
}

func TestDurableQueues(t *testing.T) {
	cfg := func(opts ...broker.SubscribeOption) broker.SubscribeConfig {
		c, err := broker.NewSubscribeConfig("orders.placed", opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, c := range []struct {
		cfg  broker.SubscribeConfig
		want []string
	}{
		{cfg(), nil},
		{cfg(broker.Queue("billing"), broker.Backoff(time.Second, 2*time.Second, time.Second)),
			[]string{"ferry.billing.orders.placed", "ferry.billing.orders.placed.retry.1s", "ferry.billing.orders.placed.retry.2s"}},
		{cfg(broker.Queue("billing"), broker.Ordered()), []string{"ferry.billing.orders.placed"}},
	} {
		if got := DurableQueues("ferry", "orders.placed", c.cfg); !slices.Equal(got, c.want) {
			t.Errorf("DurableQueues(%+v) = %q, want %q", c.cfg, got, c.want)
		}
	}
}
