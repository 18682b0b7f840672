// Package shoptest runs the events example's scenario on a broker chosen
// by configuration, so that every broker — the built-in ones here, the
// Kafka and RabbitMQ plug-ins in examples/events/anybroker — is held to
// the same outcome.
package shoptest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/examples/events/shop"
	"github.com/ferry-go/ferry/ferrytest"
)

// Config loads the example's configuration (shop.Defaults) with env as
// the only environment — the process's is not read — over loopback
// listeners on free ports, JetStream stored under a test directory and
// quiet logs. env adds or overrides variables, e.g. FERRY_BROKER_KIND.
func Config(t testing.TB, env map[string]string) *config.Config {
	t.Helper()
	vars := map[string]string{
		"FERRY_TRANSPORTS_HTTP_ADDR":    "127.0.0.1:0",
		"FERRY_NATS_EMBEDDED_PORT":      "0",
		"FERRY_NATS_EMBEDDED_STORE_DIR": t.TempDir(),
		"FERRY_LOG_LEVEL":               "error",
		"FERRY_TELEMETRY_ACCESS_LOG":    "false",
	}
	maps.Copy(vars, env)
	cfg, err := config.Load(config.Sources{Defaults: shop.Defaults, Env: func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Scenario runs both services on cfg with half of billing's attempts
// failing, places 20 orders, one order twice (through the REST route),
// one over the credit limit and one invalid, and checks that every order
// ends either charged or dead-lettered after exactly shop.MaxDeliver
// attempts, the one over the limit is dead-lettered after one, the
// duplicate is charged once (on JetStream, which de-duplicates by message
// ID, its second copy is not even stored) and the invalid one is refused
// naming its field. opts are shop.New's (the database, say). timeout bounds the whole run (start, calls, and the wait for the orders
// to settle, which ferrytest.Poll bounds by ferrytest.WaitBound too).
func Scenario(t *testing.T, cfg *config.Config, timeout time.Duration, opts ...shop.Option) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := shop.New(cfg, 0.5, logger, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := a.Stop(context.Background()); err != nil {
			t.Errorf("stop = %v", err)
		}
	}()
	placeURL, ok := a.PlaceURL()
	if !ok {
		t.Fatal("orders has no HTTP address")
	}
	base := strings.TrimSuffix(placeURL, "/orders/Place")

	var ids []string
	for range 20 {
		code, body := place(t, base+"/orders/Place", `{"customer":"ada","amount":4200}`)
		var p shop.Placed
		if code != http.StatusOK || json.Unmarshal([]byte(body), &p) != nil || p.OrderID == "" {
			t.Fatalf("Place = %d %s, want 200 with an order ID", code, body)
		}
		ids = append(ids, p.OrderID)
	}
	for range 2 {
		if code, body := place(t, base+"/v1/orders", `{"customer":"bob","amount":100,"order_id":"o-twice"}`); code != http.StatusOK {
			t.Fatalf("POST /v1/orders = %d %s", code, body)
		}
	}
	ids = append(ids, "o-twice")
	if code, body := place(t, base+"/orders/Place", `{"customer":"eve","amount":500000,"order_id":"o-big"}`); code != http.StatusOK {
		t.Fatalf("Place(over the limit) = %d %s", code, body)
	}
	if code, body := place(t, base+"/orders/Place", `{"customer":"","amount":1}`); code != http.StatusBadRequest || !strings.Contains(body, "customer is required") {
		t.Errorf("Place(no customer) = %d %s, want 400 naming the field", code, body)
	}

	dead := func() map[string][]shop.DeadLetter {
		m := map[string][]shop.DeadLetter{}
		for _, d := range a.Monitor.DeadLetters() {
			m[d.OrderID] = append(m[d.OrderID], d)
		}
		return m
	}
	settled := func() bool {
		d := dead()
		if len(d["o-big"]) == 0 {
			return false
		}
		for _, id := range ids {
			if _, charged := a.Bill.Charged(id); !charged && len(d[id]) == 0 {
				return false
			}
		}
		return true
	}
	if err := ferrytest.Poll(ctx, settled); err != nil {
		t.Fatalf("orders not all charged or dead-lettered: %v", err)
	}
	d := dead()
	if big := d["o-big"]; len(big) != 1 || big[0].Deliveries != "1" || !strings.Contains(big[0].Error, "credit limit") {
		t.Errorf("dead letters of o-big = %+v, want one, after 1 delivery, with the credit-limit error", big)
	}
	charged := 0
	for _, id := range ids {
		_, c := a.Bill.Charged(id)
		l := d[id]
		// Placed twice on a broker that does not de-duplicate by message
		// ID, o-twice is two messages: billed at most once, and a copy that
		// ran out of attempts is dead-lettered — even while the other was
		// charged.
		copies := 1
		if id == "o-twice" && cfg.Broker.Kind != "jetstream" {
			copies = 2
		}
		switch {
		case c && len(l) > 0 && copies == 1:
			t.Errorf("order %s both charged and dead-lettered", id)
		case len(l) > copies:
			t.Errorf("order %s dead-lettered %d times, want at most %d", id, len(l), copies)
		}
		for _, dl := range l {
			if dl.Deliveries != strconv.Itoa(shop.MaxDeliver) {
				t.Errorf("order %s dead-lettered after %s deliveries, want MaxDeliver = %d", id, dl.Deliveries, shop.MaxDeliver)
			}
		}
		if c {
			charged++
		}
	}
	t.Logf("broker %s: %d orders: %d charged, %d dead-lettered after 4 failed attempts (failure rate 0.5), plus o-big dead-lettered at once",
		cfg.Broker.Kind, len(ids), charged, len(ids)-charged)
}

// place posts an order as the README's curl does (curl -d sends a form
// content type) and returns the status and body.
func place(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
