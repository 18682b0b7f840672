// Command config is the README's configuration example: a whole service
// main in one call to config.Run, which reads flags, FERRY_* environment
// variables and a file (in that order of precedence), validates them and
// builds exactly the transports, registry, broker and middleware they
// name.
//
//	go build -o svc ./examples/config
//	./svc --config examples/config/ferry.yaml
//	FERRY_TRANSPORTS_GRPC_ENABLED=false ./svc --config examples/config/ferry.yaml --set registry.kind=memory
//	./svc --log-level loud      # config: log.level = "loud" (from flag --log-level): want one of: …
//
// examples/config/ferry.yaml gives it ports of its own (HTTP 8083, gRPC
// 9093, embedded NATS 4224, admin 9466), so it runs beside the other
// examples. Every key: docs/CONFIG.md.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/server"
)

func main() {
	err := config.Run(context.Background(), func(svc *ferry.Service, srv *server.Server) {
		server.Handle(srv, "Hello", Hello, server.WithRoute("GET /v1/hello/{name}"), server.WithIdempotent())
	}, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
