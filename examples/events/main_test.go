package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/natsembed"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// place posts an order as the README's curl does (curl -d sends a form
// content type) and returns the status and body.
func place(t *testing.T, addr, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+path, "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOrdersAndBilling runs both services on the embedded server: every
// order ends either charged or dead-lettered after MaxDeliver attempts;
// an order over the credit limit is dead-lettered at once; an order ID
// placed twice is billed once; a bad order is refused.
func TestOrdersAndBilling(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	addr := freeAddr(t)
	a := newApp(config{httpAddr: addr, failureRate: 0.5}, logger, natsembed.Options{JetStream: true, StoreDir: t.TempDir()})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.start(ctx, logger); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := a.stop(context.Background()); err != nil {
			t.Errorf("stop = %v", err)
		}
	}()

	var ids []string
	for range 20 {
		code, body := place(t, addr, "/orders/Place", `{"customer":"ada","amount":4200}`)
		var p Placed
		if code != http.StatusOK || json.Unmarshal([]byte(body), &p) != nil || p.OrderID == "" {
			t.Fatalf("Place = %d %s, want 200 with an order ID", code, body)
		}
		ids = append(ids, p.OrderID)
	}
	for range 2 { // the same order twice, through the REST route
		if code, body := place(t, addr, "/v1/orders", `{"customer":"bob","amount":100,"order_id":"o-twice"}`); code != http.StatusOK {
			t.Fatalf("POST /v1/orders = %d %s", code, body)
		}
	}
	ids = append(ids, "o-twice")
	if code, body := place(t, addr, "/orders/Place", `{"customer":"eve","amount":500000,"order_id":"o-big"}`); code != http.StatusOK {
		t.Fatalf("Place(over the limit) = %d %s", code, body)
	}
	if code, body := place(t, addr, "/orders/Place", `{"customer":"","amount":1}`); code != http.StatusBadRequest || !strings.Contains(body, "customer is required") {
		t.Errorf("Place(no customer) = %d %s, want 400 naming the field", code, body)
	}

	dead := func() map[string]DeadLetter {
		m := map[string]DeadLetter{}
		for _, d := range a.monitor.DeadLetters() {
			m[d.OrderID] = d
		}
		return m
	}
	settled := func() bool {
		d := dead()
		if _, ok := d["o-big"]; !ok {
			return false
		}
		for _, id := range ids {
			_, charged := a.bill.Charged(id)
			_, lettered := d[id]
			if !charged && !lettered {
				return false
			}
		}
		return true
	}
	for !settled() {
		select {
		case <-ctx.Done():
			t.Fatal("orders not all charged or dead-lettered in time")
		case <-time.After(20 * time.Millisecond):
		}
	}
	d := dead()
	if big := d["o-big"]; big.Deliveries != "1" || !strings.Contains(big.Error, "credit limit") {
		t.Errorf("dead letter of o-big = %+v, want 1 delivery and the credit-limit error", big)
	}
	charged := 0
	for _, id := range ids {
		_, c := a.bill.Charged(id)
		l, dl := d[id]
		switch {
		case c && dl:
			t.Errorf("order %s both charged and dead-lettered", id)
		case dl && l.Deliveries != "4":
			t.Errorf("order %s dead-lettered after %s deliveries, want MaxDeliver = 4", id, l.Deliveries)
		case c:
			charged++
		}
	}
	t.Logf("%d orders: %d charged, %d dead-lettered after 4 failed attempts (failure rate 0.5), plus o-big dead-lettered at once", len(ids), charged, len(ids)-charged)
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil, func(k string) string {
		return map[string]string{"ORDERS_HTTP_ADDR": ":9999", "BILLING_FAILURE_RATE": "0.1"}[k]
	})
	if err != nil || c.httpAddr != ":9999" || c.failureRate != 0.1 || c.natsPort != 4223 {
		t.Errorf("parseFlags(env) = %+v, %v", c, err)
	}
	if _, err := parseFlags([]string{"-failure-rate", "2"}, func(string) string { return "" }); err == nil {
		t.Error("parseFlags(-failure-rate 2) = nil error, want an error")
	}
}
