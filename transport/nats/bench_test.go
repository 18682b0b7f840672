package nats_test

import (
	"context"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/server"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
)

// The benchmarks run the same JSON request/reply workload through raw
// nats.go and through the Ferry transport, with 64 callers in parallel:
//
//	go test -run XXX -bench . -benchmem ./transport/nats/

func setParallel64(b *testing.B) {
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
}

func BenchmarkRawNATS(b *testing.B) {
	ns := startNATS(b, natsembed.Options{})
	srvConn, cliConn := connect(b, ns), connect(b, ns)
	sub, err := srvConn.QueueSubscribe("raw.Hello", "raw", func(m *nats.Msg) {
		var req HelloRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			_ = m.Respond(nil)
			return
		}
		out, _ := json.Marshal(&HelloReply{Message: "Hello, " + req.Name})
		_ = m.Respond(out)
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := srvConn.Flush(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	setParallel64(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			data, _ := json.Marshal(&HelloRequest{Name: "bench"})
			ctx, cancel := context.WithTimeout(ctx, fnats.DefaultTimeout)
			msg, err := cliConn.RequestWithContext(ctx, "raw.Hello", data)
			cancel()
			if err != nil {
				b.Error(err)
				return
			}
			var out HelloReply
			if err := json.Unmarshal(msg.Data, &out); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkFerryNATS calls without a deadline, like the raw benchmark (the
// client's default timeout applies locally), so no headers travel.
func BenchmarkFerryNATS(b *testing.B) { benchFerry(b, false) }

// BenchmarkFerryNATSDeadline calls with a deadline, which travels in the
// Ferry-Timeout-Ms header.
func BenchmarkFerryNATSDeadline(b *testing.B) { benchFerry(b, true) }

func benchFerry(b *testing.B, deadline bool) {
	ns := startNATS(b, natsembed.Options{})
	srvConn, cliConn := connect(b, ns), connect(b, ns)
	srv := server.New("bench")
	server.Handle(srv, "Hello", hello)
	serve(b, srvConn, srv)
	client := fnats.NewClient(cliConn)
	setParallel64(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if deadline {
				ctx, cancel = context.WithTimeout(ctx, fnats.DefaultTimeout)
			}
			var out HelloReply
			err := client.Invoke(ctx, "bench", "Hello", &HelloRequest{Name: "bench"}, &out)
			cancel()
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
