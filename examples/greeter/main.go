// Command greeter serves one Hello handler over HTTP, gRPC and NATS at once.
//
//	go run ./examples/greeter
//
// then, from another terminal:
//
//	curl -s -d '{"name":"Ada"}' localhost:8080/greeter/Hello
//	curl -s localhost:8080/v1/hello/Ada
//	grpcurl -plaintext -d '{"name":"Ada"}' localhost:9090 greeter.Greeter/Hello
//	nats req greeter.Hello '{"name":"Ada"}'
//	nats micro ls
//
// With no NATS URL it starts an embedded NATS server on 127.0.0.1:4222.
// Every address can be set by a flag or an environment variable:
// -http (GREETER_HTTP_ADDR), -grpc (GREETER_GRPC_ADDR), -nats (NATS_URL),
// -nats-port (GREETER_NATS_PORT).
//
// Every call is traced, measured and logged (telemetry.Setup). Spans are
// exported only when OTEL_EXPORTER_OTLP_ENDPOINT names a collector — `ferry
// dev` sets it to its own, and the dashboard shows them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
)

type config struct {
	httpAddr, grpcAddr, natsURL string
	natsPort                    int
}

func parseFlags(args []string, getenv func(string) string) (config, error) {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("greeter", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.httpAddr, "http", env("GREETER_HTTP_ADDR", ":8080"), "HTTP listen address (env GREETER_HTTP_ADDR)")
	fs.StringVar(&c.grpcAddr, "grpc", env("GREETER_GRPC_ADDR", ":9090"), "gRPC listen address (env GREETER_GRPC_ADDR)")
	fs.StringVar(&c.natsURL, "nats", env("NATS_URL", ""), "NATS server URL; empty starts an embedded server (env NATS_URL)")
	port, err := strconv.Atoi(env("GREETER_NATS_PORT", "4222"))
	if err != nil {
		return c, fmt.Errorf("GREETER_NATS_PORT: %w", err)
	}
	fs.IntVar(&c.natsPort, "nats-port", port, "port of the embedded NATS server (env GREETER_NATS_PORT)")
	return c, fs.Parse(args)
}

// newServer registers the greeter's endpoints; main and the test share it.
func newServer(opts ...server.Option) *server.Server {
	opts = append([]server.Option{server.WithVersion("1.0.0"), server.WithDescription("Says hello over HTTP, gRPC and NATS")}, opts...)
	srv := server.New("greeter", opts...)
	server.Register(srv, Hello, Greeter{}.Hello, server.WithRoute("GET /v1/hello/{name}"), server.WithIdempotent())
	return srv
}

func main() {
	c, err := parseFlags(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2)
	}
	// Traces (exported when OTEL_EXPORTER_OTLP_ENDPOINT is set), metrics and
	// an access log line for every call, on every transport.
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "greeter", ServiceVersion: "1.0.0"})
	if err != nil {
		slog.Error("greeter", "err", err)
		os.Exit(1)
	}
	// One handler, three transports. NATS runs on the server at -nats-url,
	// or on a server embedded in this process when there is none.
	opts := []ferry.Option{
		ferry.WithTransport(fhttp.NewServer(c.httpAddr)),
		ferry.WithTransport(fgrpc.NewServer(c.grpcAddr)),
	}
	natsURL := func() string { return c.natsURL }
	if c.natsURL == "" {
		emb := natsembed.New(natsembed.Options{Port: c.natsPort})
		opts = append(opts, ferry.WithConnection(emb))
		natsURL = emb.ClientURL
	}
	nc := fnats.ConnectTo(natsURL, nats.Name("greeter"))
	opts = append(opts, ferry.WithConnection(nc), ferry.WithTransport(nc.Serve()))
	svc := ferry.New(newServer(server.WithMiddleware(tel.Middleware()...)), opts...)
	err = svc.Run(context.Background())
	// Flush the spans still buffered: the last calls' traces.
	err = errors.Join(err, tel.Shutdown(context.Background()))
	if err != nil {
		slog.Error("greeter", "err", err)
		os.Exit(1)
	}
}
