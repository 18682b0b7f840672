package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/memory"
	"github.com/ferry-go/ferry/registry/static"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestMain(m *testing.M) {
	if os.Getenv(hostileChildEnv) != "" {
		os.Exit(runHostileChild())
	}
	goleak.VerifyTestMain(m)
}

type msg struct {
	Text string `json:"text"`
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newServer() *server.Server {
	s := server.New("svc", server.WithLogger(quiet()))
	server.Handle(s, "Echo", func(_ context.Context, m *msg) (*msg, error) { return m, nil })
	return s
}

// recorder is a Component that logs its lifecycle.
type recorder struct {
	name     string
	log      *[]string
	mu       *sync.Mutex
	startErr error
	stopErr  error
}

func (r recorder) Start(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, "start "+r.name)
	return r.startErr
}

func (r recorder) Stop(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, "stop "+r.name)
	return r.stopErr
}

func TestStopsInReverseOrder(t *testing.T) {
	var log []string
	var mu sync.Mutex
	rec := func(name string, startErr, stopErr error) ferry.Option {
		return ferry.WithComponent(recorder{name: name, log: &log, mu: &mu, startErr: startErr, stopErr: stopErr})
	}
	svc := ferry.New(newServer(), rec("a", nil, nil), rec("b", nil, errors.New("b failed to stop")), rec("c", nil, nil), ferry.WithSignals())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	<-svc.Ready()
	cancel()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "b failed to stop") {
		t.Errorf("Run = %v, want b's stop error", err)
	}
	if got, want := strings.Join(log, ","), "start a,start b,start c,stop c,stop b,stop a"; got != want {
		t.Errorf("lifecycle = %s, want %s (every component stopped even after a failure)", got, want)
	}
}

func TestStartFailureStopsStarted(t *testing.T) {
	var log []string
	var mu sync.Mutex
	svc := ferry.New(newServer(),
		ferry.WithComponent(recorder{name: "a", log: &log, mu: &mu}),
		ferry.WithComponent(recorder{name: "b", log: &log, mu: &mu, startErr: errors.New("port in use")}),
		ferry.WithComponent(recorder{name: "c", log: &log, mu: &mu}),
		ferry.WithSignals())
	err := svc.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "port in use") {
		t.Errorf("Run = %v, want the start error", err)
	}
	if got, want := strings.Join(log, ","), "start a,start b,stop a"; got != want {
		t.Errorf("lifecycle = %s, want %s", got, want)
	}
}

func TestStartRefusesBadSetup(t *testing.T) {
	bad := server.New("bad name")
	server.Handle(bad, "Echo", func(_ context.Context, m *msg) (*msg, error) { return m, nil })
	tests := []struct {
		name string
		svc  *ferry.Service
		want string
	}{
		{"registration error", ferry.New(bad, ferry.WithTransport(fhttp.NewServer("127.0.0.1:0"))), `invalid service name "bad name"`},
		{"no transport", ferry.New(newServer()), "no transport configured"},
		{"no endpoints", ferry.New(server.New("empty"), ferry.WithTransport(fhttp.NewServer("127.0.0.1:0"))), `service "empty" has no endpoints`},
		{"nil connection", ferry.New(newServer(), ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")), ferry.WithConnection(nil)), "WithConnection(nil)"},
		{"bad shutdown timeout", ferry.New(newServer(), ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")), ferry.WithShutdownTimeout(0)), "shutdown timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.svc.Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	svc := ferry.New(newServer(), ferry.WithTransport(fgrpc.NewServer("127.0.0.1:0")), ferry.WithTransport(fhttp.NewServer(ln.Addr().String())), ferry.WithSignals())
	err = svc.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Run with a busy port = %v, want an error naming %s", err, ln.Addr())
	}
}

// A call in flight when the stop signal arrives completes; new calls are refused afterwards.
func TestSignalDrainsInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	s := server.New("svc", server.WithLogger(quiet()))
	server.Handle(s, "Slow", func(_ context.Context, m *msg) (*msg, error) {
		close(started)
		<-release
		return m, nil
	})
	h := fhttp.NewServer("127.0.0.1:0")
	svc := ferry.New(s, ferry.WithTransport(h), ferry.WithSignals(syscall.SIGUSR1), ferry.WithLogger(quiet()),
		ferry.WithShutdownTimeout(10*time.Second))
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background()) }()
	<-svc.Ready()
	c, err := fhttp.NewClient("http://" + h.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reply := make(chan error, 1)
	go func() {
		var out msg
		err := c.Invoke(context.Background(), "svc", "Slow", &msg{Text: "x"}, &out)
		if err == nil && out.Text != "x" {
			err = errors.New("wrong reply " + out.Text)
		}
		reply <- err
	}()
	<-started
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, "the transport stops accepting while the call is in flight", refusing(h.Addr().String()))
	close(release)
	if err := <-reply; err != nil {
		t.Errorf("in-flight call = %v, want it to complete during the drain", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after a clean stop", err)
	}
	if _, err := http.Post("http://"+h.Addr().String()+"/svc/Slow", "application/json", strings.NewReader("{}")); err == nil {
		t.Error("a call after stop succeeded, want the connection refused")
	}
}

// natsOn returns the options that serve a service over NATS at url — or,
// when url is empty, on an embedded server — and the connection.
func natsOn(url string) ([]ferry.Option, *fnats.Conn) {
	var opts []ferry.Option
	at := func() string { return url }
	if url == "" {
		emb := natsembed.New(natsembed.Options{})
		opts = append(opts, ferry.WithConnection(emb))
		at = emb.ClientURL
	}
	nc := fnats.ConnectTo(at)
	return append(opts, ferry.WithConnection(nc), ferry.WithTransport(nc.Serve())), nc
}

func TestEmbeddedNATS(t *testing.T) {
	opts, nc := natsOn("")
	svc := ferry.New(newServer(), append(opts, ferry.WithSignals(), ferry.WithLogger(quiet()))...)
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if c := nc.NATS(); c == nil || !c.IsConnected() {
		t.Fatal("the connection is not connected after Start")
	}
	url, ok := svc.Addr("nats")
	if !ok || url != nc.NATS().ConnectedUrl() {
		t.Errorf("Addr(nats) = %q, %v; want the embedded server's URL %q", url, ok, nc.NATS().ConnectedUrl())
	}
	cnc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer cnc.Close()
	got, err := transport.Invoke[msg, msg](ctx, fnats.NewClient(cnc), "svc", "Echo", &msg{Text: "via embedded"})
	if err != nil || got.Text != "via embedded" {
		t.Errorf("Echo over embedded NATS = %v, %v", got, err)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := svc.Stop(stopCtx); err != nil {
		t.Errorf("Stop = %v", err)
	}
	if nc.NATS() != nil {
		t.Error("the connection is still open after Stop")
	}
}

func TestRegistersAdvertisedEndpoints(t *testing.T) {
	reg := memory.New()
	nopts, _ := natsOn("")
	svc := ferry.New(newServer(), append(nopts, ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")), ferry.WithTransport(fgrpc.NewServer("127.0.0.1:0")),
		ferry.WithRegistry(reg), ferry.WithSignals(), ferry.WithLogger(quiet()))...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := reg.Lookup(ctx, "svc")
	if err != nil || len(got) != 1 {
		t.Fatalf("Lookup(svc) = %v, %v, want one instance", got, err)
	}
	in := got[0]
	if in.ID != svc.Instance().ID || in.Version != "0.0.0" {
		t.Errorf("registered %+v, want the service's instance %+v", in, svc.Instance())
	}
	for _, kind := range []string{"http", "grpc", "nats"} {
		ep, ok := in.Endpoint(kind)
		if !ok || !strings.Contains(ep.Address, "127.0.0.1:") {
			t.Errorf("endpoint %s = %+v, %v, want a loopback address", kind, ep, ok)
		}
	}
	if ep, _ := in.Endpoint("http"); !strings.HasPrefix(ep.Address, "http://") {
		t.Errorf("http endpoint %q, want a base URL", ep.Address)
	}
	var want []string
	for _, ep := range svc.Server().Endpoints() {
		want = append(want, ep.Name)
	}
	slices.Sort(want)
	if names, ok := in.EndpointNames(); !ok || !slices.Equal(names, want) {
		t.Errorf("registered endpoint names %v, %v; want %v (for gateways)", names, ok, want)
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := reg.Lookup(ctx, "svc"); len(got) != 0 {
		t.Errorf("after Stop Lookup = %v, want deregistered", got)
	}
}

// TestReadOnlyRegistry (issue #12): a service whose registry is read-only
// (static, DNS: instances managed elsewhere) starts without registering.
func TestReadOnlyRegistry(t *testing.T) {
	reg, err := static.New(registry.Instance{ID: "b1", Service: "back", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "10.0.0.1:9090"}}})
	if err != nil {
		t.Fatal(err)
	}
	svc := ferry.New(newServer(), ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")), ferry.WithRegistry(reg), ferry.WithLogger(quiet()))
	ctx := ferrytest.Context(t)
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("Start with a read-only registry = %v, want it to start unregistered", err)
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// Deregistration happens before any transport drains.
func TestDeregistersBeforeDrain(t *testing.T) {
	var log []string
	var mu sync.Mutex
	reg := &recordingRegistrar{log: &log, mu: &mu}
	svc := ferry.New(newServer(), ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")),
		ferry.WithComponent(recorder{name: "transport", log: &log, mu: &mu}),
		ferry.WithRegistry(reg), ferry.WithSignals(), ferry.WithLogger(quiet()))
	startStop(t, svc)
	if got, want := strings.Join(log, ","), "start transport,register,deregister,stop transport"; got != want {
		t.Errorf("order = %s, want %s", got, want)
	}
}

type recordingRegistrar struct {
	log *[]string
	mu  *sync.Mutex
}

func (r *recordingRegistrar) Register(context.Context, registry.Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, "register")
	return nil
}

func (r *recordingRegistrar) Deregister(context.Context, registry.Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, "deregister")
	return nil
}

// listenerComponent is a Component that listens somewhere of its own.
type listenerComponent struct{ recorder }

func (listenerComponent) ListenAddr() (string, string, bool) {
	return "admin", "http://127.0.0.1:9", true
}

// TestStartedLogNamesEveryAddress: the "started" line says where the
// service can be reached, transport by transport, and where its other
// listeners are.
func TestStartedLogNamesEveryAddress(t *testing.T) {
	ns, err := natsembed.Start(context.Background(), natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	var (
		buf ferrytest.Buffer
		mu  sync.Mutex
		log []string
	)
	nopts, _ := natsOn(ns.ClientURL())
	svc := ferry.New(newServer(), append(nopts,
		ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")), ferry.WithTransport(fgrpc.NewServer("127.0.0.1:0")),
		ferry.WithComponent(listenerComponent{recorder{name: "admin", log: &log, mu: &mu}}),
		ferry.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))...)
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := svc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	var started string
	for line := range strings.Lines(buf.String()) {
		if strings.Contains(line, "ferry: started") {
			started = line
		}
	}
	for _, want := range []string{"service=svc", "http=http://127.0.0.1:", "grpc=127.0.0.1:", "nats=" + ns.ClientURL(), "admin=http://127.0.0.1:9"} {
		if !strings.Contains(started, want) {
			t.Errorf("started log line = %q, want it to contain %q", started, want)
		}
	}
}

// TestCheck: the service's readiness check follows its transports; a NATS
// transport whose connection is gone fails it.
func TestCheck(t *testing.T) {
	ns, err := natsembed.Start(context.Background(), natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nopts, nc := natsOn(ns.ClientURL())
	svc := ferry.New(newServer(), append(nopts, ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")), ferry.WithLogger(quiet()))...)
	ctx := context.Background()
	if err := svc.Check(ctx); err == nil {
		t.Error("Check before Start = nil, want an error")
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(ctx)
	if err := svc.Check(ctx); err != nil {
		t.Errorf("Check while serving = %v", err)
	}
	nc.NATS().Close()
	if err := svc.Check(ctx); err == nil || !strings.Contains(err.Error(), "connection closed") {
		t.Errorf("Check with the NATS connection closed = %v, want it to say so", err)
	}
}

// TestStartTwice is issue #11's defect 8: starting a stopped NATS-only
// service panicked (close of closed channel) and HTTP/gRPC ones failed
// with a misleading error. A Service runs once: a second Start says so.
func TestStartTwice(t *testing.T) {
	ns, err := natsembed.Start(context.Background(), natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	ctx := context.Background()
	nopts, _ := natsOn(ns.ClientURL())
	for name, opts := range map[string][]ferry.Option{"nats": nopts, "http": {ferry.WithTransport(fhttp.NewServer("127.0.0.1:0"))}} {
		svc := ferry.New(newServer(), append(opts, ferry.WithLogger(quiet()))...)
		if err := svc.Start(ctx); err != nil {
			t.Fatalf("%s: Start = %v", name, err)
		}
		if err := svc.Start(ctx); err == nil || !strings.Contains(err.Error(), "already started") {
			t.Errorf("%s: Start while running = %v, want already started", name, err)
		}
		if err := svc.Stop(ctx); err != nil {
			t.Fatalf("%s: Stop = %v", name, err)
		}
		if err := svc.Start(ctx); err == nil || !strings.Contains(err.Error(), "cannot be restarted") {
			t.Errorf("%s: Start after Stop = %v, want cannot be restarted", name, err)
		}
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("%s: second Stop = %v, want nil", name, err)
		}
	}
}

// refusing reports whether nothing accepts TCP connections at addr any more.
func refusing(addr string) func() bool {
	return func() bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err != nil
	}
}

// Issue #11 defect 7: the transports stop accepting together and drain
// concurrently. A call held on gRPC (the last transport started, so the
// first to stop before) must not keep HTTP accepting new calls.
func TestTransportsStopTogether(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	s := server.New("svc", server.WithLogger(quiet()))
	server.Handle(s, "Slow", func(_ context.Context, m *msg) (*msg, error) {
		close(started)
		<-release
		return m, nil
	})
	h, g := fhttp.NewServer("127.0.0.1:0"), fgrpc.NewServer("127.0.0.1:0")
	svc := ferry.New(s, ferry.WithTransport(h), ferry.WithTransport(g), ferry.WithSignals(), ferry.WithLogger(quiet()))
	ctx := ferrytest.Context(t)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(g.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	reply := make(chan error, 1)
	go func() {
		var out msg
		reply <- fgrpc.NewClientConn(cc).Invoke(ctx, "svc", "Slow", &msg{Text: "x"}, &out)
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- svc.Stop(ctx) }()
	ferrytest.Eventually(t, "gRPC stops accepting", refusing(g.Addr().String()))
	ferrytest.Eventually(t, "HTTP stops accepting while gRPC still drains a call", refusing(h.Addr().String()))
	select {
	case err := <-reply:
		t.Fatalf("the held gRPC call ended before it was released: %v", err)
	default:
	}
	close(release)
	if err := <-reply; err != nil {
		t.Errorf("in-flight gRPC call = %v, want it to complete during the drain", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Stop = %v", err)
	}
}

// TestConnectionsFirstAndLast: connections start before every other
// component wherever their option was written, and stop after all of them.
func TestConnectionsFirstAndLast(t *testing.T) {
	var log []string
	var mu sync.Mutex
	rec := func(name string) recorder { return recorder{name: name, log: &log, mu: &mu} }
	svc := ferry.New(newServer(), ferry.WithComponent(rec("a")), ferry.WithConnection(rec("conn1")),
		ferry.WithComponent(rec("b")), ferry.WithConnection(rec("conn2")), ferry.WithSignals(), ferry.WithLogger(quiet()))
	startStop(t, svc)
	if got, want := strings.Join(log, ","), "start conn1,start conn2,start a,start b,stop b,stop a,stop conn2,stop conn1"; got != want {
		t.Errorf("lifecycle = %s, want %s", got, want)
	}
}

// Run logs the stop and how long the drain took.
func TestRunLogsStopped(t *testing.T) {
	var buf ferrytest.Buffer
	svc := ferry.New(newServer(), ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")), ferry.WithSignals(), ferry.WithLogger(buf.Logger()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	<-svc.Ready()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ferry: stopping", "ferry: stopped", "took="} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log = %s, want %q", buf.String(), want)
		}
	}
}

// blockingStart is a Component whose Start waits for its context, as a
// connection still dialling does, and reports it began.
type blockingStart struct{ began chan struct{} }

func (b blockingStart) Start(ctx context.Context) error {
	close(b.began)
	<-ctx.Done()
	return fmt.Errorf("register subscriptions: %w", ctx.Err())
}

func (blockingStart) Stop(context.Context) error { return nil }

// A Run whose context ends while the service is still starting stops it
// and returns nil, as a Run stopped after its start does: Ctrl-C during a
// slow start is not a failure. The components started before are stopped.
func TestRunCancelledWhileStarting(t *testing.T) {
	var (
		buf ferrytest.Buffer
		log []string
		mu  sync.Mutex
	)
	b := blockingStart{began: make(chan struct{})}
	svc := ferry.New(newServer(), ferry.WithComponent(recorder{name: "a", log: &log, mu: &mu}), ferry.WithComponent(b),
		ferry.WithSignals(), ferry.WithLogger(buf.Logger()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	<-b.began
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run cancelled while starting = %v, want nil", err)
	}
	mu.Lock()
	if got, want := strings.Join(log, ","), "start a,stop a"; got != want {
		t.Errorf("lifecycle = %s, want %s", got, want)
	}
	mu.Unlock()
	if !strings.Contains(buf.String(), "ferry: stopped while starting") {
		t.Errorf("log = %s, want it to say the service stopped while starting", buf.String())
	}
	// A start that fails on its own is still an error.
	svc = ferry.New(newServer(), ferry.WithComponent(recorder{name: "x", log: &log, mu: &mu, startErr: errors.New("port taken")}), ferry.WithSignals(), ferry.WithLogger(quiet()))
	if err := svc.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "port taken") {
		t.Errorf("Run with a failing start = %v, want the error", err)
	}
}

// startStop starts svc and stops it at once.
func startStop(t *testing.T, svc *ferry.Service) {
	t.Helper()
	ctx := ferrytest.Context(t)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
