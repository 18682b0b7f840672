// Command tracing shows one trace crossing three services and three
// transports in one process:
//
//	caller ─HTTP→ frontend ─NATS→ middle ─gRPC→ backend
//
// Every hop runs Ferry's telemetry middleware (tracing, metrics, access
// log) on its server and on the client that calls the next hop, so the
// trace context travels as an HTTP header, a NATS header and gRPC metadata,
// and every span lands in the same trace.
//
//	go run ./examples/tracing
//	curl -s -d '{"name":"Ada"}' localhost:8082/frontend/Hello
//	curl -s localhost:9465/metrics | grep -E 'http_server_request_duration_seconds_count|rpc_server_call_duration_seconds_count'
//	curl -s localhost:9465/readyz
//
// Spans go to stdout as JSON by default. With the standard OTLP variables
// set they go to a collector instead, e.g. Jaeger:
//
//	docker run --rm -p 16686:16686 -p 4318:4318 jaegertracing/all-in-one
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 go run ./examples/tracing
//
// An embedded NATS server (127.0.0.1, random port) carries the middle hop,
// or the server at -nats (env NATS_URL) when set, as `ferry dev` sets it.
// Frontend and backend answer over NATS too, so `nats micro ls` and the
// dev dashboard list all three. Flags: -http (:8082), -grpc
// (127.0.0.1:9092), -admin (:9465): ports of their own, so it runs beside
// the other examples.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
)

// HelloRequest is what every hop receives.
type HelloRequest struct {
	Name string `json:"name"`
	Path string `json:"path,omitempty"`
}

// HelloReply is what every hop returns.
type HelloReply struct {
	Message string `json:"message"`
	Path    string `json:"path"`
	TraceID string `json:"trace_id"`
}

type config struct {
	httpAddr, grpcAddr, adminAddr string
	natsURL                       string    // "": an embedded server
	stdout                        io.Writer // nil: stdout only without OTLP env
}

// app is the three services, their telemetry and the embedded NATS server.
type app struct {
	cfg    config
	logger *slog.Logger
	tel    *telemetry.Telemetry
	nats   *natsembed.Server
	nc     *nats.Conn
	admin  *telemetry.Admin
	grpc   *fgrpc.Server
	http   *fhttp.Server
	toC    *fgrpc.Client

	started []interface{ Stop(context.Context) error }
}

func traceID(ctx context.Context) string {
	return trace.SpanContextFromContext(ctx).TraceID().String()
}

func (a *app) start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, a.stop(context.WithoutCancel(ctx)))
		}
	}()
	otlp := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	a.tel, err = telemetry.Setup(ctx, telemetry.Config{
		ServiceName:  "ferry-tracing-example",
		Stdout:       a.cfg.stdout != nil || !otlp,
		StdoutWriter: a.cfg.stdout,
		Logger:       a.logger,
	})
	if err != nil {
		return err
	}
	mws := a.tel.Middleware() // tracing, metrics, access log

	natsURL := a.cfg.natsURL
	if natsURL == "" {
		a.nats, err = natsembed.Start(ctx, natsembed.Options{})
		if err != nil {
			return err
		}
		a.started = append(a.started, stopFunc(func(context.Context) error { a.nats.Shutdown(); return nil }))
		natsURL = a.nats.ClientURL()
	}
	a.nc, err = nats.Connect(natsURL, nats.Name("frontend"))
	if err != nil {
		return err
	}
	a.started = append(a.started, stopFunc(func(context.Context) error { a.nc.Close(); return nil }))

	a.admin = a.tel.Admin(a.cfg.adminAddr, telemetry.WithCheck("nats", telemetry.NATSConnected(func() *nats.Conn { return a.nc })))
	if err := a.admin.Start(ctx); err != nil {
		return err
	}
	a.started = append(a.started, a.admin)

	// backend: gRPC (and NATS, for discovery).
	c := server.New("backend", server.WithMiddleware(mws...), server.WithLogger(a.logger))
	server.Handle(c, "Greet", func(ctx context.Context, r *HelloRequest) (*HelloReply, error) {
		if r.Name == "" {
			return nil, errs.New(errs.InvalidArgument, "name is required")
		}
		return &HelloReply{Message: "Hello, " + r.Name + "!", Path: r.Path + ">backend", TraceID: traceID(ctx)}, nil
	})
	a.grpc = fgrpc.NewServer(a.cfg.grpcAddr)
	cnc := fnats.Connect(natsURL, nats.Name("backend"))
	if err := a.run(ctx, ferry.New(c, ferry.WithTransport(a.grpc), ferry.WithConnection(cnc), ferry.WithTransport(cnc.Serve()),
		ferry.WithSignals(), ferry.WithLogger(a.logger))); err != nil {
		return err
	}
	a.toC, err = fgrpc.NewClient(a.grpc.Addr().String(), fgrpc.WithClientMiddleware(mws...))
	if err != nil {
		return err
	}
	a.started = append(a.started, stopFunc(func(context.Context) error { return a.toC.Close() }))

	// middle: NATS, calls backend over gRPC.
	b := server.New("middle", server.WithMiddleware(mws...), server.WithLogger(a.logger))
	server.Handle(b, "Relay", func(ctx context.Context, r *HelloRequest) (*HelloReply, error) {
		return transport.Invoke[HelloRequest, HelloReply](ctx, a.toC, "backend", "Greet", &HelloRequest{Name: r.Name, Path: r.Path + ">middle"})
	})
	bnc := fnats.Connect(natsURL, nats.Name("middle"))
	if err := a.run(ctx, ferry.New(b, ferry.WithConnection(bnc), ferry.WithTransport(bnc.Serve()), ferry.WithSignals(), ferry.WithLogger(a.logger))); err != nil {
		return err
	}
	toB := fnats.NewClient(a.nc, fnats.WithClientMiddleware(mws...))

	// frontend: HTTP (and NATS, for discovery), calls middle over NATS.
	fe := server.New("frontend", server.WithMiddleware(mws...), server.WithLogger(a.logger))
	server.Handle(fe, "Hello", func(ctx context.Context, r *HelloRequest) (*HelloReply, error) {
		return transport.Invoke[HelloRequest, HelloReply](ctx, toB, "middle", "Relay", &HelloRequest{Name: r.Name, Path: "frontend"})
	})
	a.http = fhttp.NewServer(a.cfg.httpAddr)
	fnc := fnats.Connect(natsURL, nats.Name("frontend"))
	return a.run(ctx, ferry.New(fe, ferry.WithTransport(a.http), ferry.WithConnection(fnc), ferry.WithTransport(fnc.Serve()),
		ferry.WithSignals(), ferry.WithLogger(a.logger)))
}

type stopFunc func(context.Context) error

func (f stopFunc) Stop(ctx context.Context) error { return f(ctx) }

// run starts svc and remembers it for stop.
func (a *app) run(ctx context.Context, svc *ferry.Service) error {
	if err := svc.Start(ctx); err != nil {
		return err
	}
	a.started = append(a.started, svc)
	return nil
}

// stop stops everything in reverse order and flushes the spans.
func (a *app) stop(ctx context.Context) error {
	var errsOut []error
	if a.admin != nil {
		a.admin.Drain() // out of rotation before anything stops
	}
	for i := len(a.started) - 1; i >= 0; i-- {
		if err := a.started[i].Stop(ctx); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	a.started = nil
	if a.tel != nil {
		if err := a.tel.Shutdown(ctx); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	return errors.Join(errsOut...)
}

func main() {
	var cfg config
	flag.StringVar(&cfg.httpAddr, "http", ":8082", "frontend HTTP address")
	flag.StringVar(&cfg.grpcAddr, "grpc", "127.0.0.1:9092", "backend gRPC address")
	flag.StringVar(&cfg.adminAddr, "admin", ":9465", "admin address (/metrics, /livez, /readyz)")
	flag.StringVar(&cfg.natsURL, "nats", os.Getenv("NATS_URL"), "NATS server URL; empty starts an embedded server (env NATS_URL)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{cfg: cfg, logger: logger}
	if err := a.start(ctx); err != nil {
		logger.Error("tracing example", "err", err)
		os.Exit(1)
	}
	logger.Info("tracing example: ready", "frontend", "http://"+a.http.Addr().String(), "middle", a.nc.ConnectedUrlRedacted(),
		"backend", a.grpc.Addr().String(), "admin", "http://"+a.admin.Addr().String(),
		"try", "curl -s -d '{\"name\":\"Ada\"}' localhost"+portOf(a.http.Addr().String())+"/frontend/Hello")
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.stop(stopCtx); err != nil {
		logger.Error("tracing example: stop", "err", err)
		os.Exit(1)
	}
}

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i:]
		}
	}
	return fmt.Sprintf(":%s", addr)
}
