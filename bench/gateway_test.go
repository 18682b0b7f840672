package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/gateway"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/memory"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
)

// BenchmarkGateway measures the gateway hop: a plain HTTP client posting
// the JSON workload to the service's own HTTP transport (direct), and to
// the gateway, which forwards it over NATS, HTTP or gRPC (grpc+json) to
// the same service (gateway-nats, gateway-http, gateway-grpc). Besides
// time it reports cpu-ns/op: the CPU time of the whole process (caller,
// gateway, embedded nats-server, service) per request, from getrusage,
// which on a machine with few cores says more than the wall time.
func BenchmarkGateway(b *testing.B) {
	for _, p := range parallelism {
		for _, row := range []string{"direct", "gateway-nats", "gateway-http", "gateway-grpc"} {
			b.Run(fmt.Sprintf("%s/p%d", row, p), func(b *testing.B) {
				url := startNATS(b)
				ht := fhttp.NewServer("127.0.0.1:0")
				srv := echoServer()
				serve(b, ht, srv)
				nc := connect(b, url)
				serve(b, fnats.NewServer(nc), srv)
				gt := fgrpc.NewServer("127.0.0.1:0")
				serve(b, gt, srv)
				target := "http://" + ht.Addr().String() + "/bench/Echo"
				if row != "direct" {
					reg := memory.New()
					in := registry.Instance{ID: "1", Service: "bench",
						Endpoints: []registry.Endpoint{{Transport: "http", Address: "http://" + ht.Addr().String()}, {Transport: "nats", Address: url},
							{Transport: "grpc", Address: gt.Addr().String()}},
						Metadata: map[string]string{registry.MetadataEndpoints: "Echo,EchoProto"}}
					if err := reg.Register(context.Background(), in); err != nil {
						b.Fatal(err)
					}
					kind := row[len("gateway-"):]
					c, err := client.New(reg, client.WithTransports(kind), client.WithNATS(connect(b, url)))
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { _ = c.Close() })
					g, err := gateway.New(reg, c, gateway.WithLogger(slog.New(slog.DiscardHandler)))
					if err != nil {
						b.Fatal(err)
					}
					if err := g.Start(context.Background()); err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { _ = g.Stop(context.Background()) })
					hs := httptest.NewServer(g)
					b.Cleanup(hs.Close)
					target = hs.URL + "/bench/Echo"
				}
				hc := newHTTPClient()
				b.Cleanup(hc.CloseIdleConnections)
				body, _ := json.Marshal(payload)
				cpu := cpuTime()
				run(b, p, func() error { return postEcho(hc, target, body) })
				b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// cpuTime is the CPU time, user and system, the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
