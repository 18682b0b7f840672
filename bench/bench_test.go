package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/memory"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Msg is the JSON workload: the same struct for raw and Ferry.
type Msg struct {
	Text string `json:"text" validate:"required"`
	Num  int64  `json:"num" validate:"gte=0"`
}

var payload = &Msg{Text: "hello, this is a benchmark payload of modest size", Num: 42}

// run drives op at parallelism p (1 = a plain loop; 64 = 64 goroutines).
func run(b *testing.B, p int, op func() error) {
	b.ReportAllocs()
	if p == 1 {
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(max(1, p/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

var parallelism = []int{1, 64}

func echoServer() *server.Server {
	s := server.New("bench")
	registerEcho(s)
	return s
}

// registerEcho adds the echo endpoints: Echo (the JSON Msg) and EchoProto
// (a protobuf StringValue).
func registerEcho(s *server.Server) {
	server.Handle(s, "Echo", func(_ context.Context, m *Msg) (*Msg, error) { return m, nil })
	server.Handle(s, "EchoProto", func(_ context.Context, m *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return m, nil
	})
}

func startTransport(b *testing.B, t server.Transport) { serve(b, t, echoServer()) }

// serve runs s on t until the end of the benchmark.
func serve(b *testing.B, t server.Transport, s *server.Server) {
	b.Helper()
	if err := t.Start(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = t.Stop(ctx)
	})
}

func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
}

func BenchmarkHTTP(b *testing.B) {
	for _, p := range parallelism {
		b.Run(fmt.Sprintf("raw/p%d", p), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			hs := &http.Server{Handler: rawHTTPHandler(), ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = hs.Serve(ln) }()
			b.Cleanup(func() { _ = hs.Close() })
			url := "http://" + ln.Addr().String() + "/bench/Echo"
			hc := newHTTPClient()
			b.Cleanup(hc.CloseIdleConnections)
			run(b, p, func() error {
				body, _ := json.Marshal(payload)
				return postEcho(hc, url, body)
			})
		})
		b.Run(fmt.Sprintf("ferry/p%d", p), func(b *testing.B) {
			benchClient(b, p, startHTTP(b, echoServer()), "Echo")
		})
	}
}

// rawHTTPHandler is the raw net/http echo: encoding/json in and out.
func rawHTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /bench/Echo", func(w http.ResponseWriter, r *http.Request) {
		var m Msg
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, _ := json.Marshal(&m)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
	return mux
}

// rawNATSHandler is the raw nats.go echo: encoding/json in and out, one
// message at a time in the subscription's callback.
func rawNATSHandler(m *nats.Msg) {
	var in Msg
	if err := json.Unmarshal(m.Data, &in); err != nil {
		_ = m.Respond([]byte(err.Error()))
		return
	}
	out, _ := json.Marshal(&in)
	_ = m.Respond(out)
}

// postEcho posts body (the JSON payload) to url with a plain http.Client
// and checks the echo.
func postEcho(hc *http.Client, url string, body []byte) error {
	resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out Msg
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK || out.Num != payload.Num {
		return fmt.Errorf("bad echo %d %+v", resp.StatusCode, out)
	}
	return nil
}

func benchClient(b *testing.B, p int, c transport.Client, endpoint string) {
	ctx := context.Background()
	run(b, p, func() error {
		var out Msg
		if err := c.Invoke(ctx, "bench", endpoint, payload, &out); err != nil {
			return err
		}
		if out.Num != payload.Num {
			return fmt.Errorf("bad echo %+v", out)
		}
		return nil
	})
}

// benchDeadlineClient is benchClient with a caller deadline on every call.
func benchDeadlineClient(b *testing.B, p int, c transport.Client) { run(b, p, deadlineEcho(c)) }

// deadlineEcho is one echo call through c with a caller deadline (30 s).
func deadlineEcho(c transport.Client) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out Msg
		if err := c.Invoke(ctx, "bench", "Echo", payload, &out); err != nil {
			return err
		}
		if out.Num != payload.Num {
			return fmt.Errorf("bad echo %+v", out)
		}
		return nil
	}
}

func benchProtoClient(b *testing.B, p int, c transport.Client) {
	ctx := context.Background()
	in := wrapperspb.String(payload.Text)
	run(b, p, func() error {
		var out wrapperspb.StringValue
		if err := c.Invoke(ctx, "bench", "EchoProto", in, &out); err != nil {
			return err
		}
		if out.Value != in.Value {
			return fmt.Errorf("bad echo %q", out.Value)
		}
		return nil
	})
}

// rawEchoDesc is a hand-written grpc.ServiceDesc, what protoc-gen-go-grpc
// would generate for `service Raw { rpc Echo(StringValue) returns (StringValue); }`.
var rawEchoDesc = grpc.ServiceDesc{
	ServiceName: "bench.Raw",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return in, nil
		},
	}},
}

func BenchmarkGRPC(b *testing.B) {
	for _, p := range parallelism {
		b.Run(fmt.Sprintf("raw/p%d", p), func(b *testing.B) {
			cc := serveRawGRPC(b, &rawEchoDesc)
			in := wrapperspb.String(payload.Text)
			ctx := context.Background()
			run(b, p, func() error {
				var out wrapperspb.StringValue
				if err := cc.Invoke(ctx, "/bench.Raw/Echo", in, &out); err != nil {
					return err
				}
				if out.Value != in.Value {
					return fmt.Errorf("bad echo %q", out.Value)
				}
				return nil
			})
		})
		b.Run(fmt.Sprintf("ferry/p%d", p), func(b *testing.B) {
			c := startGRPC(b)
			benchProtoClient(b, p, c)
		})
		b.Run(fmt.Sprintf("ferry-struct/p%d", p), func(b *testing.B) {
			c := startGRPC(b)
			benchClient(b, p, c, "Echo")
		})
	}
}

// serveRawGRPC serves desc with a plain grpc-go server on loopback and
// returns a connection to it.
func serveRawGRPC(b *testing.B, desc *grpc.ServiceDesc) *grpc.ClientConn {
	gs := grpc.NewServer()
	gs.RegisterService(desc, struct{}{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	b.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cc.Close() })
	return cc
}

// startHTTP serves s over HTTP on loopback and returns a client for it.
func startHTTP(b *testing.B, s *server.Server) *fhttp.Client {
	t := fhttp.NewServer("127.0.0.1:0")
	serve(b, t, s)
	c, err := fhttp.NewClient("http://" + t.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

func startGRPC(b *testing.B) *fgrpc.Client {
	t := fgrpc.NewServer("127.0.0.1:0")
	startTransport(b, t)
	c, err := fgrpc.NewClient(t.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

func startNATS(b *testing.B) string {
	s, err := natsembed.Start(context.Background(), natsembed.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Shutdown)
	return s.ClientURL()
}

func connect(b *testing.B, url string) *nats.Conn {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

func BenchmarkNATS(b *testing.B) {
	for _, p := range parallelism {
		b.Run(fmt.Sprintf("raw/p%d", p), func(b *testing.B) {
			url := startNATS(b)
			srv, cli := connect(b, url), connect(b, url)
			sub, err := srv.QueueSubscribe("bench.Echo", "bench", rawNATSHandler)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = sub.Unsubscribe() })
			if err := srv.Flush(); err != nil {
				b.Fatal(err)
			}
			run(b, p, func() error {
				body, _ := json.Marshal(payload)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				m, err := cli.RequestWithContext(ctx, "bench.Echo", body)
				if err != nil {
					return err
				}
				var out Msg
				if err := json.Unmarshal(m.Data, &out); err != nil {
					return err
				}
				if out.Num != payload.Num {
					return fmt.Errorf("bad echo %+v", out)
				}
				return nil
			})
		})
		b.Run(fmt.Sprintf("ferry/p%d", p), func(b *testing.B) {
			url := startNATS(b)
			srv, cli := connect(b, url), connect(b, url)
			startTransport(b, fnats.NewServer(srv))
			benchClient(b, p, fnats.NewClient(cli), "Echo")
		})
		// With a caller deadline, Ferry carries it in a NATS header; the raw
		// benchmark sends no header, so this row costs more than raw by design.
		b.Run(fmt.Sprintf("ferry-deadline/p%d", p), func(b *testing.B) {
			url := startNATS(b)
			srv, cli := connect(b, url), connect(b, url)
			startTransport(b, fnats.NewServer(srv))
			benchDeadlineClient(b, p, fnats.NewClient(cli))
		})
	}
}

// transportClient serves the echo server over kind ("http" or "grpc") and
// returns that transport's own client.
func transportClient(b *testing.B, kind string) transport.Client {
	if kind == "grpc" {
		return startGRPC(b)
	}
	return startHTTP(b, echoServer())
}

// BenchmarkClient measures what client.Client (discovery, P2C selection,
// outlier tracking, retry and bulkhead middleware, default deadline) adds
// on top of the transport client it ends in, against one instance found in
// an in-memory registry.
func BenchmarkClient(b *testing.B) {
	for _, kind := range []string{"http", "grpc"} {
		for _, p := range parallelism {
			b.Run(fmt.Sprintf("%s/transport/p%d", kind, p), func(b *testing.B) {
				benchClient(b, p, transportClient(b, kind), "Echo")
			})
			// client.Client always sends a deadline (its default timeout when
			// the caller has none): this row is the transport client doing so.
			b.Run(fmt.Sprintf("%s/transport-deadline/p%d", kind, p), func(b *testing.B) {
				benchDeadlineClient(b, p, transportClient(b, kind))
			})
			b.Run(fmt.Sprintf("%s/client/p%d", kind, p), func(b *testing.B) {
				var t interface {
					server.Transport
					server.Advertiser
				}
				if kind == "grpc" {
					t = fgrpc.NewServer("127.0.0.1:0")
				} else {
					t = fhttp.NewServer("127.0.0.1:0")
				}
				startTransport(b, t)
				reg := memory.New()
				name, addr, _ := t.Advertise()
				in := registry.Instance{ID: "1", Service: "bench", Endpoints: []registry.Endpoint{{Transport: name, Address: addr}}}
				if err := reg.Register(context.Background(), in); err != nil {
					b.Fatal(err)
				}
				c, err := client.New(reg)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = c.Close() })
				benchClient(b, p, c, "Echo")
			})
		}
	}
}
