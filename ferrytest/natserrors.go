package ferrytest

import (
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
)

// NATSErrors collects the asynchronous errors a NATS server sends a
// connection — permissions violations above all, which nats.go reports
// only to the connection's error handler. Give Option to nats.Connect.
type NATSErrors struct {
	mu   sync.Mutex
	errs []string
}

// Option installs the collector as the connection's error handler.
func (e *NATSErrors) Option() nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.errs = append(e.errs, err.Error())
	})
}

// AwaitViolation waits (Eventually, naming what) until the connection was
// told of a permissions violation mentioning subject ("" for any).
func (e *NATSErrors) AwaitViolation(t testing.TB, what, subject string) {
	t.Helper()
	Eventually(t, what, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, s := range e.errs {
			if strings.Contains(strings.ToLower(s), "permissions violation") && strings.Contains(s, subject) {
				return true
			}
		}
		return false
	})
}
