package dashboard

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ferry-go/ferry/internal/microdisc"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// StatsSource gives the request counters of the running service instances:
// one micro.Stats per instance, as each answers $SRV.STATS.
type StatsSource interface {
	Stats(ctx context.Context) ([]micro.Stats, error)
}

// InfoSource is an optional capability of a StatsSource: the instances'
// $SRV.INFO documents, whose endpoint metadata name the Go request and
// response types (a Ferry service's "request" and "response"). The
// endpoint pages show them when no JSON Schema is published.
type InfoSource interface {
	Info(ctx context.Context) ([]micro.Info, error)
}

// NATS is the StatsSource (and InfoSource) of the services on one NATS
// connection: it publishes $SRV.STATS ($SRV.INFO) and gathers every
// instance's answer, waiting Quiet after the last.
type NATS struct {
	nc *nats.Conn
	// Quiet is how long to wait for one more answer after the last
	// (default 300ms).
	Quiet time.Duration
}

var (
	_ StatsSource = (*NATS)(nil)
	_ InfoSource  = (*NATS)(nil)
)

// NATSStats returns the StatsSource of the services reachable on nc.
func NATSStats(nc *nats.Conn) *NATS { return &NATS{nc: nc} }

// Stats gathers the $SRV.STATS answers; an answer that does not decode is
// skipped.
func (n *NATS) Stats(ctx context.Context) ([]micro.Stats, error) {
	replies, err := microdisc.Gather(ctx, n.nc, "$SRV.STATS", n.Quiet, 0)
	out := make([]micro.Stats, 0, len(replies))
	for _, b := range replies {
		var s micro.Stats
		if json.Unmarshal(b, &s) == nil && s.Name != "" {
			out = append(out, s)
		}
	}
	return out, err
}

// Info gathers the $SRV.INFO answers; an answer that does not decode is
// skipped.
func (n *NATS) Info(ctx context.Context) ([]micro.Info, error) {
	replies, err := microdisc.Gather(ctx, n.nc, "$SRV.INFO", n.Quiet, 0)
	out := make([]micro.Info, 0, len(replies))
	for _, b := range replies {
		var s micro.Info
		if json.Unmarshal(b, &s) == nil && s.Name != "" {
			out = append(out, s)
		}
	}
	return out, err
}
