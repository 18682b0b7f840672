package bench_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// BenchmarkServer measures what a server costs per request: the CPU time
// (user + system) and the allocations of the server process alone, read
// inside that process before and after the run. The server runs in a child
// process (this test binary, started again with serverEnv set), so neither
// the client nor nats-server (embedded in the benchmark's process) is
// counted; wall time per request (ns/op) is reported too, but client,
// server and nats-server share the machine's cores, so CPU per request is
// the steadier figure.
//
// Every row of a transport is driven by the same raw client (net/http,
// grpc-go, nats.go) with 64 callers, so the server sees the same bytes:
//
//	raw        the raw library: net/http + encoding/json, grpc-go with a
//	           hand-written ServiceDesc, a nats.go queue subscription +
//	           encoding/json
//	bare       Ferry's server and transport, no middleware
//	default    what config.NewService builds by default for that transport
//	           alone: tracing (default sampler, no exporter configured),
//	           metrics (Prometheus exporter), the access log (formatted as
//	           configured, text, and written to io.Discard), the admin
//	           server, default timeouts and admission
//	default-stderr
//	           the same, with the log on stderr as configured (here
//	           /dev/null): one write system call per line, as to a file
//	tracing, metrics, accesslog
//	           bare plus that one middleware of the default stack (the
//	           access log to io.Discard)
//	deadline   (NATS) bare, the caller sending a deadline in the
//	           Ferry-Timeout-Ms header (the nats CLI, a plain nats.go caller)
//	client-deadline
//	           (NATS) bare, called through Ferry's NATS client with a
//	           deadline, which it carries in the reply subject
//
// Reported: srv-cpu-ns/op and srv-allocs/op, srv-B/op, and for every row
// but raw cpu-x-raw and thr-x-raw: its server CPU over, and its throughput
// against, those of a raw server run in turns with it (benchServerRow),
// whose CPU per request is raw-cpu-ns/op.
func BenchmarkServer(b *testing.B) {
	for _, kind := range []string{"http", "grpc", "nats"} {
		rows := []string{"raw", "bare", "default", "tracing", "metrics", "accesslog", "default-stderr"}
		if kind == "nats" {
			rows = append(rows, "deadline", "client-deadline")
		}
		for _, row := range rows {
			b.Run(kind+"/"+row, func(b *testing.B) { benchServerRow(b, kind, row) })
		}
	}
}

// serverEnv, set in a child's environment, makes TestMain serve instead of
// testing: "kind/row".
const serverEnv = "FERRY_BENCH_SERVE"

// serverNATSEnv carries the nats-server URL to a NATS child.
const serverNATSEnv = "FERRY_BENCH_NATS"

func TestMain(m *testing.M) {
	if what := os.Getenv(serverEnv); what != "" {
		if err := serveChild(what); err != nil {
			fmt.Println("error", strings.ReplaceAll(err.Error(), "\n", " "))
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// benchServerRow runs one row: a child serving kind/row, 64 callers, and
// the child's CPU and allocations over the run. Every row but raw is
// paired with a raw child of its own, run in turns with it (pairSegments
// each), so that cpu-x-raw compares the two under the same conditions:
// on a shared machine the CPU a request costs drifts by more than the
// differences measured here within the minutes a whole run takes.
func benchServerRow(b *testing.B, kind, row string) {
	rowRun := newServerRun(b, kind, row)
	var raw *serverRun
	if row != "raw" {
		raw = newServerRun(b, kind, "raw")
	}
	segments := min(pairSegments, b.N)
	var rowUse, rawUse usage
	var rowWall, rawWall time.Duration
	b.ResetTimer()
	for i := range segments {
		n := b.N/segments + btoi(i < b.N%segments)
		began := time.Now()
		rowUse = rowUse.add(rowRun.run(b, n))
		rowWall += time.Since(began)
		if raw != nil {
			b.StopTimer()
			began = time.Now()
			rawUse = rawUse.add(raw.run(b, n))
			rawWall += time.Since(began)
			b.StartTimer()
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(rowUse.cpu)/n, "srv-cpu-ns/op")
	b.ReportMetric(float64(rowUse.allocs)/n, "srv-allocs/op")
	b.ReportMetric(float64(rowUse.bytes)/n, "srv-B/op")
	if raw != nil && rawUse.cpu > 0 && rowWall > 0 {
		b.ReportMetric(float64(rowUse.cpu)/float64(rawUse.cpu), "cpu-x-raw")
		b.ReportMetric(float64(rawUse.cpu)/n, "raw-cpu-ns/op")
		b.ReportMetric(float64(rawWall)/float64(rowWall), "thr-x-raw")
	}
}

// pairSegments is how many turns a row and its raw pair take.
const pairSegments = 8

func btoi(v bool) int {
	if v {
		return 1
	}
	return 0
}

// serverRun is a child serving one row (with a nats-server of its own for
// NATS) and a caller of it.
type serverRun struct {
	child *child
	call  func() error
}

// newServerRun starts a child serving kind/row and warms it up:
// connections open, caches filled, the child's heap grown (less for the
// one-iteration smoke run of CI).
func newServerRun(b *testing.B, kind, row string) *serverRun {
	natsURL := ""
	if kind == "nats" {
		natsURL = startNATS(b)
	}
	r := &serverRun{child: startChild(b, kind+"/"+row, natsURL)}
	r.call = rowCaller(b, kind, row, r.child.addr, natsURL)
	runCalls(b, 64, min(512, 64*b.N), r.call)
	return r
}

// run makes n calls and returns what they cost the child.
func (r *serverRun) run(b *testing.B, n int) usage {
	before := r.child.stat(b)
	runCalls(b, 64, n, r.call)
	return r.child.stat(b).sub(before)
}

// runCalls makes n calls from p goroutines.
func runCalls(b *testing.B, p, n int, call func() error) {
	var next atomic.Int64
	errc := make(chan error, p)
	for range p {
		go func() {
			for next.Add(1) <= int64(n) {
				if err := call(); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range p {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
}

// rowCaller returns one call of the raw client of kind against addr.
func rowCaller(b *testing.B, kind, row, addr, natsURL string) func() error {
	switch kind {
	case "http":
		hc := newHTTPClient()
		b.Cleanup(hc.CloseIdleConnections)
		body, _ := json.Marshal(payload)
		url := addr + "/bench/Echo"
		return func() error { return postEcho(hc, url, body) }
	case "grpc":
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cc.Close() })
		method := "/bench.Raw/Echo"
		if row != "raw" {
			method = fgrpc.MethodName("bench", "EchoProto")
		}
		in := wrapperspb.String(payload.Text)
		ctx := context.Background()
		return func() error {
			var out wrapperspb.StringValue
			if err := cc.Invoke(ctx, method, in, &out); err != nil {
				return err
			}
			if out.Value != in.Value {
				return fmt.Errorf("bad echo %q", out.Value)
			}
			return nil
		}
	}
	nc := connect(b, natsURL)
	if row == "client-deadline" {
		return deadlineEcho(fnats.NewClient(nc))
	}
	body, _ := json.Marshal(payload)
	var hdr nats.Header
	if row == "deadline" {
		hdr = nats.Header{"Ferry-Timeout-Ms": {"30000"}}
	}
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		m, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: "bench.Echo", Data: body, Header: hdr})
		if err != nil {
			return err
		}
		var out Msg
		if err := json.Unmarshal(m.Data, &out); err != nil {
			return fmt.Errorf("%w: %q", err, m.Data)
		}
		if out.Num != payload.Num {
			return fmt.Errorf("bad echo %+v", out)
		}
		return nil
	}
}

// child is a server process of one row.
type child struct {
	addr string
	in   io.WriteCloser
	out  *bufio.Reader
}

type usage struct{ cpu, allocs, bytes uint64 }

func (u usage) add(v usage) usage {
	return usage{u.cpu + v.cpu, u.allocs + v.allocs, u.bytes + v.bytes}
}
func (u usage) sub(v usage) usage {
	return usage{u.cpu - v.cpu, u.allocs - v.allocs, u.bytes - v.bytes}
}

func startChild(b *testing.B, what, natsURL string) *child {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^$")
	cmd.Env = append(os.Environ(), serverEnv+"="+what, serverNATSEnv+"="+natsURL)
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	// Stderr stays nil: /dev/null, where the access log goes.
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &child{in: in, out: bufio.NewReader(outPipe)}
	b.Cleanup(func() {
		_ = in.Close() // the child stops its server and exits
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("server child %s: %v", what, err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			b.Errorf("server child %s did not exit", what)
		}
	})
	line := c.line(b)
	addr, ok := strings.CutPrefix(line, "addr ")
	if !ok {
		b.Fatalf("server child %s: %s", what, line)
	}
	c.addr = addr
	return c
}

func (c *child) line(b *testing.B) string {
	b.Helper()
	s, err := c.out.ReadString('\n')
	if err != nil {
		b.Fatalf("server child: %v", err)
	}
	return strings.TrimSpace(s)
}

// stat asks the child for its CPU time and allocations so far.
func (c *child) stat(b *testing.B) usage {
	b.Helper()
	if _, err := io.WriteString(c.in, "stat\n"); err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(c.line(b))
	if len(f) != 3 {
		b.Fatalf("server child: stat %q", f)
	}
	var u usage
	for i, p := range []*uint64{&u.cpu, &u.allocs, &u.bytes} {
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			b.Fatalf("server child: stat %q", f)
		}
		*p = v
	}
	return u
}

// serveChild is the child's side: it serves what ("kind/row"), prints
// "addr ADDR", answers each "stat" line with "CPU-NS ALLOCS BYTES", and
// stops when its stdin closes.
func serveChild(what string) error {
	kind, row, _ := strings.Cut(what, "/")
	natsURL := os.Getenv(serverNATSEnv)
	addr, stop, err := startRow(kind, row, natsURL)
	if err != nil {
		return err
	}
	fmt.Println("addr", addr)
	sc := bufio.NewScanner(os.Stdin)
	stats := 0
	for sc.Scan() {
		if sc.Text() != "stat" {
			continue
		}
		if stats++; stats == 1 {
			// The run starts: profile it if asked to.
			if stopProfile, err := startProfile(); err != nil {
				return err
			} else {
				defer stopProfile()
			}
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return err
		}
		fmt.Println(ru.Utime.Nano()+ru.Stime.Nano(), ms.Mallocs, ms.TotalAlloc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return stop(ctx)
}

// serverProfileEnv names a file prefix: a child then writes the CPU
// profile (PREFIX.cpu) and the allocation profile (PREFIX.mem) of its
// measured run, for go tool pprof; with FERRY_BENCH_PROFILE_ALLOCS set
// too, the allocation profile records every allocation (and the CPU
// profile is skewed by that).
const serverProfileEnv = "FERRY_BENCH_PROFILE"

func startProfile() (func(), error) {
	prefix := os.Getenv(serverProfileEnv)
	if prefix == "" {
		return func() {}, nil
	}
	prefix += "-" + strings.ReplaceAll(os.Getenv(serverEnv), "/", "-")
	f, err := os.Create(prefix + ".cpu")
	if err != nil {
		return nil, err
	}
	if os.Getenv(serverProfileEnv+"_ALLOCS") != "" {
		runtime.MemProfileRate = 1 // every allocation, at a cost in CPU
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		if m, err := os.Create(prefix + ".mem"); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(m, 0)
			_ = m.Close()
		}
	}, nil
}

// startRow starts the server of one row and returns the address its
// clients dial (an HTTP base URL, a gRPC host:port, the NATS URL).
func startRow(kind, row, natsURL string) (string, func(context.Context) error, error) {
	if row == "raw" {
		return startRawRow(kind, natsURL)
	}
	if row == "client-deadline" || row == "deadline" {
		row = "bare"
	}
	if row == "default" || row == "default-stderr" {
		var out io.Writer = io.Discard
		if row == "default-stderr" {
			out = os.Stderr
		}
		return startDefaultRow(kind, natsURL, out)
	}
	srv := server.New("bench", server.WithMiddleware(rowMiddleware(row)...))
	registerEcho(srv)
	var t server.Transport
	switch kind {
	case "http":
		t = fhttp.NewServer("127.0.0.1:0")
	case "grpc":
		t = fgrpc.NewServer("127.0.0.1:0")
	default:
		nc, err := nats.Connect(natsURL)
		if err != nil {
			return "", nil, err
		}
		t = fnats.NewServer(nc)
	}
	if err := t.Start(context.Background(), srv); err != nil {
		return "", nil, err
	}
	addr := natsURL
	switch tt := t.(type) {
	case *fhttp.Server:
		addr = "http://" + tt.Addr().String()
	case *fgrpc.Server:
		addr = tt.Addr().String()
	}
	return addr, t.Stop, nil
}

// rowMiddleware is the middleware of a bare, tracing, metrics or
// accesslog row: the default stack's parts as config.NewService makes
// them (telemetry.Setup with the default configuration, the default
// logger), one at a time.
func rowMiddleware(row string) []middleware.Middleware {
	switch row {
	case "tracing", "metrics", "accesslog":
	default:
		return nil
	}
	logger := slog.New(telemetry.LogHandler(slog.NewTextHandler(io.Discard, nil))) // config.NewLogger's, to io.Discard
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "bench", Logger: logger})
	if err != nil {
		panic(err)
	}
	switch row {
	case "tracing":
		return []middleware.Middleware{tel.Tracing()}
	case "metrics":
		return []middleware.Middleware{tel.Metrics()}
	}
	return []middleware.Middleware{tel.AccessLog()}
}

// startDefaultRow builds the service config.NewService makes from the
// default configuration, with only kind's transport on loopback.
func startDefaultRow(kind, natsURL string, logs io.Writer) (string, func(context.Context) error, error) {
	cfg, err := config.Load(config.Sources{
		Env: func(string) (string, bool) { return "", false },
		Defaults: func(c *config.Config) {
			c.Service.Name = "bench"
			c.Admin.Addr = "127.0.0.1:0"
			c.Transports.HTTP.Enabled = kind == "http"
			c.Transports.HTTP.Addr = "127.0.0.1:0"
			c.Transports.GRPC.Enabled = kind == "grpc"
			c.Transports.GRPC.Addr = "127.0.0.1:0"
			c.Transports.NATS.Enabled = kind == "nats"
			if kind == "nats" {
				c.NATS.URL = natsURL
			}
		},
	})
	if err != nil {
		return "", nil, err
	}
	svc, err := config.NewService(cfg, func(_ *ferry.Service, srv *server.Server) { registerEcho(srv) },
		config.WithLogOutput(logs))
	if err != nil {
		return "", nil, err
	}
	if err := svc.Start(context.Background()); err != nil {
		return "", nil, err
	}
	if kind == "nats" {
		return natsURL, svc.Stop, nil
	}
	addr, ok := svc.Addr(kind)
	if !ok {
		return "", nil, errors.New("no address for " + kind)
	}
	return addr, svc.Stop, nil
}

// startRawRow serves the raw library's echo.
func startRawRow(kind, natsURL string) (string, func(context.Context) error, error) {
	switch kind {
	case "http":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		hs := &http.Server{Handler: rawHTTPHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		return "http://" + ln.Addr().String(), hs.Shutdown, nil
	case "grpc":
		gs := grpc.NewServer()
		gs.RegisterService(&rawEchoDesc, struct{}{})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		go func() { _ = gs.Serve(ln) }()
		return ln.Addr().String(), func(context.Context) error { gs.Stop(); return nil }, nil
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return "", nil, err
	}
	if _, err := nc.QueueSubscribe("bench.Echo", "bench", rawNATSHandler); err != nil {
		return "", nil, err
	}
	if err := nc.Flush(); err != nil {
		return "", nil, err
	}
	return natsURL, func(context.Context) error { return nc.Drain() }, nil
}
