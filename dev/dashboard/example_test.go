package dashboard_test

import (
	"context"
	"log"
	"net/http"

	"github.com/ferry-go/ferry/dev/dashboard"
	"github.com/ferry-go/ferry/dev/traces"
	"github.com/ferry-go/ferry/gateway"
	"github.com/ferry-go/ferry/registry"
	"github.com/nats-io/nats.go"
)

// The dashboard served by the gateway's HTTP server under /_ferry/, beside
// its routes: the explorer calls the gateway on the same origin. The trace
// store's receiver takes the services' OTLP exports.
func Example_withGateway() {
	var (
		ctx   = context.Background()
		reg   registry.Catalog // the services' registry
		gw    *gateway.Gateway // started on reg
		nc    *nats.Conn       // where the services answer $SRV.STATS
		store = traces.NewStore(0)
	)
	d, err := dashboard.New(dashboard.Options{Catalog: reg, Traces: store, Stats: dashboard.NATSStats(nc)})
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer d.Stop(ctx)

	mux := http.NewServeMux()
	mux.Handle("/", gw)
	mux.Handle("/_ferry/", d)
	mux.Handle("/v1/traces", traces.NewReceiver(store)) // OTEL_EXPORTER_OTLP_ENDPOINT=http://<this server>
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}
