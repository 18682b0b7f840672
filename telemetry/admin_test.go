package telemetry_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/telemetry"
	"github.com/nats-io/nats.go"
)

// TestHealth: /livez is 200; /readyz follows the checks and goes 503 for
// good once Stop (or the drain signal) begins.
func TestHealth(t *testing.T) {
	var depUp atomic.Bool
	depUp.Store(true)
	a, base := startAdmin(t, telemetry.WithCheck("dep", func(context.Context) error {
		if !depUp.Load() {
			return errors.New("down")
		}
		return nil
	}))
	if code, _ := get(t, base+"/livez"); code != http.StatusOK {
		t.Errorf("/livez = %d, want 200", code)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %q with the check passing, want 200", code, body)
	}
	depUp.Store(false)
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "dep: down") {
		t.Errorf("/readyz = %d %q with the check failing, want 503 naming it", code, body)
	}
	depUp.Store(true)
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d after the check recovered, want 200", code)
	}

	// The drain signal is the first component a Service stops.
	var hooked atomic.Int32
	a.OnDrain(func() { hooked.Add(1) })
	sig := a.DrainSignal()
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Errorf("/readyz = %d %q before the drain signal started, want 503 starting", code, body)
	}
	_ = sig.Start(context.Background())
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d once started, want 200", code)
	}
	_ = sig.Stop(context.Background())
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("/readyz = %d %q once stopping began, want 503 draining", code, body)
	}
	if code, _ := get(t, base+"/livez"); code != http.StatusOK {
		t.Errorf("/livez = %d while draining, want 200", code)
	}
	_ = a.Stop(context.Background())
	if n := hooked.Load(); n != 1 {
		t.Errorf("OnDrain hook ran %d times, want once", n)
	}
}

// TestAdminStopFlipsReadiness: without a drain signal, Stop itself turns
// /readyz to 503 before the server closes (observed during the drain
// delay).
func TestAdminStopFlipsReadiness(t *testing.T) {
	a, base := startAdmin(t, telemetry.WithDrainDelay(300*time.Millisecond))
	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop(context.Background()) }()
	deadline := 0
	for {
		code, _ := get(t, base+"/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if deadline++; deadline > 100 {
			t.Fatal("/readyz still 200 while Stop drains")
		}
	}
	if err := <-stopped; err != nil {
		t.Errorf("Stop() = %v", err)
	}
	if _, err := http.Get(base + "/livez"); err == nil {
		t.Error("/livez still answers after Stop")
	}
}

// TestNATSConnectedCheck: the NATS check fails without a connection.
func TestNATSConnectedCheck(t *testing.T) {
	if err := telemetry.NATSConnected(func() *nats.Conn { return nil })(context.Background()); err == nil {
		t.Error("NATSConnected(nil conn) passed")
	}
	ch := make(chan struct{})
	c := telemetry.Closed(ch)
	if c(context.Background()) == nil {
		t.Error("Closed(open channel) passed")
	}
	close(ch)
	if err := c(context.Background()); err != nil {
		t.Errorf("Closed(closed channel) = %v", err)
	}
}
