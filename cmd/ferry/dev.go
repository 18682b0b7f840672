package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/dev/dashboard"
	"github.com/ferry-go/ferry/dev/traces"
	"github.com/ferry-go/ferry/dev/workspace"
	"github.com/ferry-go/ferry/gateway"
	"github.com/ferry-go/ferry/middleware/requestid"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/registry/natssrv"
	"github.com/ferry-go/ferry/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// devBatchDelay is how long the dev environment's tracers (the gateway's,
// and the services' through OTEL_BSP_SCHEDULE_DELAY) hold spans before
// exporting them: short, so that a call's trace is on the page at once.
const devBatchDelay = 250 * time.Millisecond

// devOptions are ferry dev's flags.
type devOptions struct {
	addr     string // gateway and dashboard
	natsPort int
	otlpAddr string
	forward  string // a collector's OTLP/HTTP traces URL, or ""
	noWatch  bool
	grace    time.Duration
}

func newDevCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev [dir | ferry.work.yaml]",
		Short: "Run a workspace of services with NATS, the gateway and the dashboard",
		Long: `Run a directory of services for development: ferry dev builds and starts every service of the
workspace (the ferry.work.yaml in dir, or else every main package under it; default: the current
directory), an embedded NATS server with JetStream, the API gateway and the development dashboard.

  - Services get NATS_URL and FERRY_NATS_URL (the embedded server; the second is nats.url for
    services built with config.Run, such as those of ferry new) and OTEL_EXPORTER_OTLP_ENDPOINT
    (the dashboard's trace receiver) in their environment; their output is printed a line at a time, prefixed
    with their name. A service whose sources change is rebuilt and restarted; one that crashes
    is restarted with back-off.
  - The gateway (--addr) routes POST /<service>/<Endpoint> and the services' REST routes to the
    services NATS $SRV discovery finds, over NATS, HTTP or gRPC; the request header
    Ferry-Transport picks one.
  - The dashboard (http://<addr>/_ferry/) shows the catalogue with JSON Schemas, live figures,
    an API explorer and the traces of the last calls, received over OTLP/HTTP.
  - Spans also go on to a collector or Jaeger when --otlp-forward (default: the traces URL of
    $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT, if set) names one.

Ctrl-C stops the services (SIGINT, then SIGKILL after --grace), then everything else.`,
		Example: `  ferry dev examples
  ferry dev --addr 127.0.0.1:8080 --nats-port 0
  ferry dev services/ferry.work.yaml --no-watch`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if !cmd.Flags().Changed("otlp-forward") {
				o.forward = forwardFromEnv(cmd.ErrOrStderr())
			}
			return runDev(cmd.Context(), dir, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:8000", "address of the gateway and the dashboard (/_ferry/)")
	f.IntVar(&o.natsPort, "nats-port", 4222, "port of the embedded NATS server on 127.0.0.1 (0: a free one)")
	f.StringVar(&o.otlpAddr, "otlp-addr", "127.0.0.1:0", "address of the OTLP/HTTP trace receiver the services export to")
	f.StringVar(&o.forward, "otlp-forward", "", "OTLP/HTTP traces URL of a collector that gets the spans too (default from $OTEL_EXPORTER_OTLP_*)")
	f.BoolVar(&o.noWatch, "no-watch", false, "do not rebuild services when their sources change")
	f.DurationVar(&o.grace, "grace", 5*time.Second, "how long a stopping service has between SIGINT and SIGKILL")
	return cmd
}

// forwardFromEnv is the collector the user's OTEL_EXPORTER_OTLP_*
// variables name, as a traces URL, or "" (with a note on stderr when they
// name one that cannot be used).
func forwardFromEnv(stderr io.Writer) string {
	proto := cmpOr(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	if u := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); u != "" {
		if proto == "grpc" {
			fmt.Fprintf(stderr, "ferry dev: not forwarding spans to %s: OTLP/gRPC; give an OTLP/HTTP URL with --otlp-forward\n", u)
			return ""
		}
		return u // the signal-specific variable is the whole URL
	}
	e := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	if e == "" {
		return ""
	}
	if proto == "grpc" {
		fmt.Fprintf(stderr, "ferry dev: not forwarding spans to %s: OTLP/gRPC; give an OTLP/HTTP URL with --otlp-forward\n", e)
		return ""
	}
	u, err := telemetry.OTLPTracesURL(e, false)
	if err != nil {
		fmt.Fprintf(stderr, "ferry dev: not forwarding spans: %v\n", err)
		return ""
	}
	return u
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// devEnv is the dev environment, torn down in reverse order of set-up.
type devEnv struct {
	stops []func(context.Context) error
}

func (e *devEnv) onStop(f func(context.Context) error) { e.stops = append(e.stops, f) }

func (e *devEnv) stop(ctx context.Context) error {
	var errs []error
	for i := len(e.stops) - 1; i >= 0; i-- {
		errs = append(errs, e.stops[i](ctx))
	}
	return errors.Join(errs...)
}

// loadWorkspace reads a ferry.work.yaml named by path, or the workspace of
// the directory path.
func loadWorkspace(path string) (*workspace.Workspace, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("workspace %s: %w", path, err)}
	}
	if fi.IsDir() {
		return workspace.Load(path)
	}
	return workspace.LoadFile(path)
}

// runDev runs the dev environment for the workspace at dir until ctx ends.
func runDev(ctx context.Context, dir string, o devOptions, stdout, stderr io.Writer) (err error) {
	ws, err := loadWorkspace(dir)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	env := &devEnv{}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.grace+10*time.Second)
		defer cancel()
		err = errors.Join(err, env.stop(sctx))
	}()

	// NATS with JetStream, for the services and for discovery.
	ns, err := natsembed.Start(ctx, natsembed.Options{Port: o.natsPort, JetStream: true})
	if err != nil {
		return fmt.Errorf("embedded NATS on port %d: %w (--nats-port 0 picks a free port)", o.natsPort, err)
	}
	env.onStop(func(context.Context) error { ns.Shutdown(); return nil })
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("ferry dev"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to the embedded NATS: %w", err)
	}
	env.onStop(func(context.Context) error { nc.Close(); return nil })

	// The traces: a store fed by an OTLP/HTTP receiver, forwarded on.
	store := traces.NewStore(0)
	var ropts []traces.ReceiverOption
	if o.forward != "" {
		ropts = append(ropts, traces.WithForward(o.forward, nil))
	}
	recv := traces.NewReceiver(store, ropts...)
	otlpURL, err := serveHTTP(env, o.otlpAddr, recv, "OTLP receiver")
	if err != nil {
		return err
	}
	env.onStop(func(context.Context) error { recv.Close(); return nil })

	// The gateway, traced into the same store.
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(otlpURL+"/v1/traces"))
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("gateway"))),
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(devBatchDelay)))
	env.onStop(tp.Shutdown)
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

	reg, err := natssrv.New(nc, natssrv.WithLogger(logger))
	if err != nil {
		return err
	}
	lc, err := client.New(reg, client.WithNATS(nc), client.WithTransports("nats", "http", "grpc"),
		client.WithMiddleware(telemetry.Tracing(tp, prop), requestid.Client()))
	if err != nil {
		return err
	}
	env.onStop(func(context.Context) error { return lc.Close() })
	gw, err := gateway.New(reg, lc, gateway.WithMiddleware(telemetry.Tracing(tp, prop), requestid.New()),
		gateway.WithLogger(logger))
	if err != nil {
		return err
	}
	if err := gw.Start(ctx); err != nil {
		return err
	}
	env.onStop(gw.Stop)

	dash, err := dashboard.New(dashboard.Options{Catalog: reg, Traces: store, Stats: dashboard.NATSStats(nc), Logger: logger})
	if err != nil {
		return err
	}
	if err := dash.Start(ctx); err != nil {
		return err
	}
	env.onStop(dash.Stop)
	baseURL, err := serveHTTP(env, o.addr, devMux(gw, dash), "gateway")
	if err != nil {
		return err
	}

	// The services.
	sup, err := workspace.New(ws, workspace.Options{
		Output: stdout,
		Env: []string{
			"NATS_URL=" + ns.ClientURL(),
			// config.Run reads nats.url from FERRY_NATS_URL: services
			// made by ferry new join the dev NATS instead of embedding one.
			"FERRY_NATS_URL=" + ns.ClientURL(),
			"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlpURL,
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + otlpURL + "/v1/traces",
			"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf",
			"OTEL_TRACES_SAMPLER=parentbased_always_on",
			fmt.Sprintf("OTEL_BSP_SCHEDULE_DELAY=%d", devBatchDelay.Milliseconds()),
		},
		NoWatch: o.noWatch,
		Grace:   o.grace,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ferry dev: %d services in %s\n", len(ws.Services), ws.Dir)
	fmt.Fprintf(stdout, "  dashboard  %s/_ferry/\n", baseURL)
	fmt.Fprintf(stdout, "  gateway    %s/<service>/<Endpoint>\n", baseURL)
	fmt.Fprintf(stdout, "  NATS       %s (JetStream)\n", ns.ClientURL())
	fmt.Fprintf(stdout, "  traces     %s/v1/traces (OTLP/HTTP)", otlpURL)
	if o.forward != "" {
		fmt.Fprintf(stdout, ", forwarded to %s", o.forward)
	}
	fmt.Fprintf(stdout, "\n  Ctrl-C stops everything.\n")
	if err := sup.Start(ctx); err != nil {
		return err
	}
	env.onStop(sup.Stop)
	<-ctx.Done()
	fmt.Fprintln(stdout, "ferry dev: stopping")
	return nil
}

// devMux serves the dashboard under /_ferry/ and the gateway's routes
// beside it; a browser opening / is sent to the dashboard.
func devMux(gw http.Handler, dash http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(dashboard.DefaultPrefix, dash)
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
			strings.Contains(r.Header.Get("Accept"), "text/html") {
			http.Redirect(w, r, dashboard.DefaultPrefix, http.StatusFound)
			return
		}
		gw.ServeHTTP(w, r)
	}))
	return mux
}

// serveHTTP serves h on addr until the environment stops, and returns its
// base URL (http://host:port).
func serveHTTP(env *devEnv, addr string, h http.Handler, what string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s: listen on %s: %w", what, addr, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = hs.Serve(ln) }()
	env.onStop(func(ctx context.Context) error {
		if err := hs.Shutdown(ctx); err != nil {
			return hs.Close()
		}
		return nil
	})
	return "http://" + ln.Addr().String(), nil
}
