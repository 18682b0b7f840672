package config_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

type order struct {
	ID string `json:"id"`
}

type placed struct {
	ID string `json:"id"`
}

var (
	placeOrder = transport.Endpoint[order, placed]{Service: "orders", Name: "Place"}
	charge     = transport.Endpoint[order, placed]{Service: "payments", Name: "Charge"}
)

const orderPlaced = "orders.placed"

// TestSystemFromConfig (issue #12) runs three services built from
// configuration only — orders (HTTP) calls payments (gRPC, found in the
// NATS registry through config.Client), which publishes an event on
// JetStream that notifications consumes — with one in-memory span
// exporter: every span of a request has one trace id, each hop has its
// client and server (or producer and consumer) span, and each service's
// /metrics measured its side of every hop. Then payments turns gRPC off by
// configuration alone and calls go on over NATS, still in one trace.
func TestSystemFromConfig(t *testing.T) {
	natsURL := startNATS(t)
	exp := tracetest.NewInMemoryExporter()
	// A span processor of each service's own (a processor stops with its
	// provider), exporting to the one exporter.
	opts := func() []config.Option { return []config.Option{config.WithTracerOptions(sdktrace.WithSyncer(exp))} }
	common := []string{"FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats", "FERRY_ADMIN_ADDR", "127.0.0.1:0",
		"FERRY_TELEMETRY_SAMPLER", "always_on", "FERRY_TELEMETRY_ACCESS_LOG", "false"}
	with := func(kv ...string) []string { return append(append([]string(nil), common...), kv...) }

	consumed := make(chan string, 16) // order ids, as notifications sees them
	notifications := startWith(t, func(svc *ferry.Service, _ *server.Server) {
		ferry.Subscribe(svc, orderPlaced, func(_ context.Context, e *broker.Event[placed]) error {
			consumed <- e.Data.ID
			return nil
		}, broker.Queue("notifications"))
	}, opts(), with("FERRY_SERVICE_NAME", "notifications", "FERRY_TRANSPORTS_HTTP_ENABLED", "false",
		"FERRY_TRANSPORTS_GRPC_ENABLED", "false", "FERRY_TRANSPORTS_NATS_ENABLED", "false",
		"FERRY_BROKER_KIND", "jetstream", "FERRY_BROKER_JETSTREAM_STREAMS", `[{"name":"ORDERS","subjects":["orders.>"]}]`)...)

	var servedOver, traceOf latest[any] // of the last call
	paymentsRegister := func(svc *ferry.Service, srv *server.Server) {
		server.Register(srv, charge, func(ctx context.Context, o *order) (*placed, error) {
			call, _ := transport.CallFromContext(ctx)
			servedOver.set(call.Kind)
			if err := broker.Publish(ctx, svc.Broker(), orderPlaced, &placed{ID: o.ID}); err != nil {
				return nil, err
			}
			return &placed{ID: o.ID}, nil
		})
	}
	payments := startWith(t, paymentsRegister, opts(), with("FERRY_SERVICE_NAME", "payments", "FERRY_TRANSPORTS_HTTP_ENABLED", "false",
		"FERRY_TRANSPORTS_GRPC_ADDR", "127.0.0.1:0", "FERRY_BROKER_KIND", "jetstream")...)

	orders := startWith(t, func(svc *ferry.Service, srv *server.Server) {
		calls := config.Client(svc)
		server.Register(srv, placeOrder, func(ctx context.Context, o *order) (*placed, error) {
			traceOf.set(trace.SpanContextFromContext(ctx).TraceID())
			return charge.Call(ctx, calls, o)
		})
	}, opts(), with("FERRY_SERVICE_NAME", "orders", "FERRY_TRANSPORTS_GRPC_ENABLED", "false", "FERRY_TRANSPORTS_NATS_ENABLED", "false",
		"FERRY_TRANSPORTS_HTTP_ADDR", "127.0.0.1:0", "FERRY_CLIENT_TRANSPORTS", "grpc,nats")...)

	addr, _ := orders.Addr("http")
	public, err := fhttp.NewClient(addr) // a caller outside the system: no trace of its own
	if err != nil {
		t.Fatal(err)
	}
	defer public.Close()
	ctx := ferrytest.Context(t)

	// place calls orders until it succeeds, and returns the trace id of the
	// successful request and the transport payments served it over.
	place := func(id string) (trace.TraceID, transport.Kind) {
		t.Helper()
		ferrytest.Eventually(t, "order "+id+" placed", func() bool {
			got, err := placeOrder.Call(ctx, public, &order{ID: id})
			return err == nil && got.ID == id
		})
		tid, _ := traceOf.get().(trace.TraceID)
		kind, _ := servedOver.get().(transport.Kind)
		ferrytest.Eventually(t, "order "+id+" consumed", func() bool {
			select {
			case got := <-consumed:
				return got == id
			default:
				return false
			}
		})
		return tid, kind
	}
	// spansOf waits for the request's five spans and checks them.
	spansOf := func(tid trace.TraceID, over transport.Kind) {
		t.Helper()
		want := []struct {
			service string
			kind    trace.SpanKind
		}{
			{"orders", trace.SpanKindServer}, {"orders", trace.SpanKindClient},
			{"payments", trace.SpanKindServer}, {"payments", trace.SpanKindProducer},
			{"notifications", trace.SpanKindConsumer},
		}
		var mine tracetest.SpanStubs
		ferrytest.Eventually(t, "the request's spans exported", func() bool {
			mine = mine[:0]
			for _, s := range exp.GetSpans() {
				if s.SpanContext.TraceID() == tid {
					mine = append(mine, s)
				}
			}
			return len(mine) >= len(want)
		})
		for _, w := range want {
			found := false
			for _, s := range mine {
				if s.SpanKind == w.kind && serviceOf(s) == w.service {
					found = true
					if w.service == "payments" && w.kind == trace.SpanKindServer && !hasAttrValue(s, over.String()) {
						t.Errorf("payments' server span %q has attributes %v, want it served over %s", s.Name, s.Attributes, over)
					}
				}
			}
			if !found {
				t.Errorf("trace %s has no %s span of %s; spans: %v", tid, w.kind, w.service, describe(mine))
			}
		}
		// Every span has a parent in the trace, but the root (orders' server span).
		ids := map[trace.SpanID]bool{}
		for _, s := range mine {
			ids[s.SpanContext.SpanID()] = true
		}
		for _, s := range mine {
			if root := serviceOf(s) == "orders" && s.SpanKind == trace.SpanKindServer; !root && !ids[s.Parent.SpanID()] {
				t.Errorf("span %s of %s has a parent outside the trace", s.Name, serviceOf(s))
			}
		}
	}

	tid, over := place("o-1")
	if over != transport.GRPC {
		t.Errorf("payments served over %s, want grpc (client.transports: grpc,nats)", over)
	}
	if n := len(traceIDs(exp.GetSpans())); n != 1 {
		t.Errorf("one request made spans in %d traces, want 1: %v", n, describe(exp.GetSpans()))
	}
	spansOf(tid, transport.GRPC)

	// Every hop measured on both sides, in the /metrics of each service.
	scrape(t, orders, promHistogram(telemetry.HTTPServerDuration), "/orders/Place")
	scrape(t, orders, promHistogram(telemetry.RPCClientDuration), "payments.Payments/Charge")
	scrape(t, payments, promHistogram(telemetry.RPCServerDuration), "payments.Payments/Charge")
	scrape(t, payments, promCounter(telemetry.Published), orderPlaced)
	scrape(t, notifications, promCounter(telemetry.Consumed), orderPlaced)
	scrape(t, notifications, promHistogram(telemetry.ProcessDuration), orderPlaced)

	// payments turns gRPC off: configuration only, on both sides.
	if err := payments.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	startWith(t, paymentsRegister, opts(), with("FERRY_SERVICE_NAME", "payments", "FERRY_TRANSPORTS_HTTP_ENABLED", "false",
		"FERRY_TRANSPORTS_GRPC_ENABLED", "false", "FERRY_BROKER_KIND", "jetstream")...)
	tid, over = place("o-2")
	if over != transport.NATS {
		t.Errorf("payments served over %s, want nats once gRPC is off", over)
	}
	spansOf(tid, transport.NATS)
}

// latest holds the last value set.
type latest[T any] struct {
	mu sync.Mutex
	v  T
}

func (l *latest[T]) set(v T) { l.mu.Lock(); l.v = v; l.mu.Unlock() }
func (l *latest[T]) get() T  { l.mu.Lock(); defer l.mu.Unlock(); return l.v }

func serviceOf(s tracetest.SpanStub) string {
	v, _ := s.Resource.Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

func hasAttrValue(s tracetest.SpanStub, value string) bool {
	for _, a := range s.Attributes {
		if a.Value.Emit() == value {
			return true
		}
	}
	return false
}

func traceIDs(spans tracetest.SpanStubs) map[trace.TraceID]bool {
	ids := map[trace.TraceID]bool{}
	for _, s := range spans {
		ids[s.SpanContext.TraceID()] = true
	}
	return ids
}

func describe(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, serviceOf(s)+":"+s.SpanKind.String()+":"+s.Name+"@"+s.SpanContext.TraceID().String())
	}
	return out
}

// promHistogram and promCounter are the Prometheus names of OTel
// instruments in seconds and of counters.
func promHistogram(name string) string { return strings.ReplaceAll(name, ".", "_") + "_seconds_count" }
func promCounter(name string) string   { return strings.ReplaceAll(name, ".", "_") + "_total" }

// scrape checks that svc's /metrics has a sample of metric whose labels
// mention label.
func scrape(t *testing.T, svc *ferry.Service, metric, label string) {
	t.Helper()
	admin, ok := svc.Addr("admin")
	if !ok {
		t.Fatal("no admin address")
	}
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, metric+"{") && strings.Contains(line, `"`+label+`"`) {
			return
		}
	}
	t.Errorf("%s /metrics has no %s sample for %q", svc.Server().Name(), metric, label)
}
