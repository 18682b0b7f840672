package natssrv_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/gateway"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/natssrv"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.uber.org/goleak"
)

// childEnv makes the test binary a Ferry service on NATS (TestKilledProcess).
const childEnv = "NATSSRV_TEST_CHILD"

func TestMain(m *testing.M) {
	if url := os.Getenv(childEnv); url != "" {
		os.Exit(runChild(url))
	}
	goleak.VerifyTestMain(m)
}

// fast is the poll interval of the tests: short, so that they wait little;
// nothing asserts a duration.
const fast = 100 * time.Millisecond

type HelloRequest struct {
	Name  string `json:"name"`
	Limit int    `json:"limit"`
}

type HelloReply struct {
	Message string `json:"message"`
}

func hello(_ context.Context, r *HelloRequest) (*HelloReply, error) {
	return &HelloReply{Message: fmt.Sprintf("Hello, %s (%d)", r.Name, r.Limit)}, nil
}

// greeter is a Ferry server with a plain, an idempotent and a REST endpoint.
func greeter(name string) *server.Server {
	srv := server.New(name, server.WithVersion("1.2.3"))
	server.Handle(srv, "Hello", hello)
	server.Handle(srv, "Get", hello, server.WithIdempotent())
	server.Handle(srv, "Find", hello, server.WithRoute("GET /v1/find/{name}"))
	return srv
}

// serve serves srv on NATS over nc until the test ends or stop is called.
func serve(t *testing.T, nc *nats.Conn, srv *server.Server) (tr *fnats.Server, stop func()) {
	t.Helper()
	tr = fnats.NewServer(nc)
	if err := tr.Start(ferrytest.Context(t), srv); err != nil {
		t.Fatalf("Start(%s) = %v", srv.Name(), err)
	}
	stop = func() {
		if err := tr.Stop(context.Background()); err != nil {
			t.Errorf("Stop(%s) = %v", srv.Name(), err)
		}
	}
	t.Cleanup(func() { _ = tr.Stop(context.Background()) })
	return tr, stop
}

func newRegistry(t testing.TB, nc *nats.Conn, opts ...natssrv.Option) *natssrv.Registry {
	t.Helper()
	r, err := natssrv.New(nc, append([]natssrv.Option{natssrv.WithInterval(fast)}, opts...)...)
	if err != nil {
		t.Fatalf("natssrv.New = %v", err)
	}
	return r
}

func watchAll(t testing.TB, r *natssrv.Registry) registry.Watcher {
	t.Helper()
	w, err := r.WatchAll(ferrytest.Context(t))
	if err != nil {
		t.Fatalf("WatchAll = %v", err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	return w
}

// nextUntil calls Next until cond holds for the set, and returns it.
func nextUntil(t *testing.T, w registry.Watcher, what string, cond func([]registry.Instance) bool) []registry.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(ferrytest.Context(t), ferrytest.WaitBound)
	defer cancel()
	var last []registry.Instance
	for {
		set, err := w.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("%s: Next = %v; last set %v", what, err, last)
			}
			t.Logf("%s: Next = %v, waiting on", what, err)
			continue
		}
		if last = set; cond(set) {
			return set
		}
	}
}

func find(set []registry.Instance, id string) (registry.Instance, bool) {
	i := slices.IndexFunc(set, func(in registry.Instance) bool { return in.ID == id })
	if i < 0 {
		return registry.Instance{}, false
	}
	return set[i], true
}

// responder answers $SRV.PING and $SRV.INFO for one instance the way
// nats.go/micro does, with the given identity: a discovery for
// instances whose IDs and metadata the test chooses.
func responder(t testing.TB, nc *nats.Conn, in registry.Instance, endpoints []micro.EndpointInfo) {
	t.Helper()
	id := micro.ServiceIdentity{Name: in.Service, ID: in.ID, Version: in.Version, Metadata: in.Metadata}
	ping, _ := json.Marshal(micro.Ping{ServiceIdentity: id, Type: micro.PingResponseType})
	info, _ := json.Marshal(micro.Info{ServiceIdentity: id, Type: micro.InfoResponseType, Endpoints: endpoints})
	for verb, body := range map[micro.Verb][]byte{micro.PingVerb: ping, micro.InfoVerb: info} {
		for _, args := range [][2]string{{"", ""}, {in.Service, ""}, {in.Service, in.ID}} {
			subject, err := micro.ControlSubject(verb, args[0], args[1])
			if err != nil {
				t.Fatal(err)
			}
			sub, err := nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(body) })
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestReadOnlyConformance runs the shared read-only suite. Its instances
// have IDs, versions and metadata of the suite's choosing, which a Ferry
// transport would not take (it picks a NUID and announces its endpoints),
// so each is announced by a responder speaking the micro protocol as a
// foreign service would. What comes back: the same instance, whose one
// endpoint is NATS at the registry's server, and — not being Ferry's — an
// empty endpoint list (no endpoints on Ferry's subject scheme). Real Ferry
// services are the other tests'.
func TestReadOnlyConformance(t *testing.T) {
	// One server for every subtest (they run one after the other, and each
	// one's responders go with it), so that the carried address is known.
	url := ferrytest.NATS(t).ClientURL()
	ferrytest.RegistryReadOnlyConformance(t, func(t testing.TB, ins []registry.Instance) registry.Discovery {
		for _, in := range ins {
			responder(t, ferrytest.Connect(t, url), in, nil)
		}
		// Slower than the other tests: the suite checks that nothing changes
		// for a while, and a reply late by more than misses intervals would.
		return newRegistry(t, ferrytest.Connect(t, url), natssrv.WithInterval(250*time.Millisecond))
	}, ferrytest.WithCarried(func(in registry.Instance) registry.Instance {
		in.Endpoints = []registry.Endpoint{{Transport: "nats", Address: url}}
		in.Metadata = maps.Clone(in.Metadata)
		in.Metadata[registry.MetadataEndpoints] = ""
		return in
	}))
}

// A Ferry service on NATS appears with what it would register in a
// registry, and disappears once stopped.
func TestFerryServiceAppearsAndGoes(t *testing.T) {
	s := ferrytest.NATS(t)
	srv := greeter("greeter")
	tr, stop := serve(t, ferrytest.Connect(t, s.ClientURL()), srv)
	r := newRegistry(t, ferrytest.Connect(t, s.ClientURL()))
	w := watchAll(t, r)

	set := nextUntil(t, w, "the service appears", func(set []registry.Instance) bool { _, ok := find(set, tr.ID()); return ok })
	in, _ := find(set, tr.ID())
	want, err := registry.Describe(srv)
	if err != nil {
		t.Fatal(err)
	}
	if in.Service != "greeter" || in.Version != "1.2.3" || !maps.Equal(in.Metadata, want) {
		t.Errorf("instance = %+v, want greeter 1.2.3 with metadata %v", in, want)
	}
	if wantEp := []registry.Endpoint{{Transport: "nats", Address: s.ClientURL()}}; !slices.Equal(in.Endpoints, wantEp) {
		t.Errorf("instance endpoints = %+v, want %+v", in.Endpoints, wantEp)
	}
	if !in.Idempotent("Get") || in.Idempotent("Hello") {
		t.Errorf("instance idempotent = %q, want Get", in.Metadata[registry.MetadataIdempotent])
	}
	if infos, err := in.RouteInfos(); err != nil || !slices.Equal(infos["Find"].Routes, []string{"GET /v1/find/{name}"}) {
		t.Errorf("instance routes = %v, %v, want Find's GET /v1/find/{name}", infos, err)
	}

	// Lookup answers from the running poll loop, and without it.
	ctx := ferrytest.Context(t)
	for _, reg := range []*natssrv.Registry{r, newRegistry(t, ferrytest.Connect(t, s.ClientURL()))} {
		got, err := reg.Lookup(ctx, "greeter")
		if err != nil || len(got) != 1 || got[0].ID != tr.ID() || !maps.Equal(got[0].Metadata, want) {
			t.Errorf("Lookup(greeter) = %+v, %v, want the instance", got, err)
		}
		if got, err := reg.Lookup(ctx, "nobody"); err != nil || len(got) != 0 {
			t.Errorf("Lookup(nobody) = %+v, %v, want [], nil", got, err)
		}
	}

	stopped := time.Now()
	stop()
	nextUntil(t, w, "the stopped service disappears", func(set []registry.Instance) bool { _, ok := find(set, tr.ID()); return !ok })
	t.Logf("the stopped service disappeared after %v (interval %v, misses %d)", time.Since(stopped).Round(time.Millisecond), fast, natssrv.DefaultMisses)
}

// Watch follows one service among several; the watchers of a registry share
// its poll loop, and each gets its own copies.
func TestWatchOneService(t *testing.T) {
	s := ferrytest.NATS(t)
	nc := ferrytest.Connect(t, s.ClientURL())
	a, _ := serve(t, nc, greeter("alpha"))
	serve(t, nc, greeter("beta"))
	r := newRegistry(t, ferrytest.Connect(t, s.ClientURL()))
	all := watchAll(t, r)
	nextUntil(t, all, "both services appear", func(set []registry.Instance) bool { return len(set) == 2 })

	w, err := r.Watch(ferrytest.Context(t), "alpha")
	if err != nil {
		t.Fatalf("Watch(alpha) = %v", err)
	}
	defer w.Stop()
	set, err := w.Next(ferrytest.Context(t))
	if err != nil || len(set) != 1 || set[0].ID != a.ID() {
		t.Fatalf("Watch(alpha) Next = %+v, %v, want alpha's instance", set, err)
	}
	set[0].Metadata["x"] = "changed by the caller"
	if again, err := r.Lookup(ferrytest.Context(t), "alpha"); err != nil || again[0].Metadata["x"] != "" {
		t.Errorf("Lookup after the caller changed a returned instance = %+v, %v, want it unchanged", again, err)
	}
	if _, err := r.Watch(ferrytest.Context(t), "not a name"); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Watch(not a name) = %v, want InvalidArgument", err)
	}
}

func TestReadOnly(t *testing.T) {
	s := ferrytest.NATS(t)
	r := newRegistry(t, ferrytest.Connect(t, s.ClientURL()))
	in := registry.Instance{ID: "x", Service: "svc"}
	if err := r.Register(context.Background(), in); !errors.Is(err, natssrv.ErrReadOnly) || errs.CodeOf(err) != errs.Unimplemented {
		t.Errorf("Register = %v, want ErrReadOnly (Unimplemented)", err)
	}
	if err := r.Deregister(context.Background(), in); !errors.Is(err, natssrv.ErrReadOnly) {
		t.Errorf("Deregister = %v, want ErrReadOnly", err)
	}
	if _, err := natssrv.New(nil); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("New(nil) = %v, want InvalidArgument", err)
	}
}

// Services that are not Ferry's are listed with their own metadata and the
// endpoints a Ferry client can call; replies that make no sense are
// ignored and break nothing.
func TestForeignAndMalformedReplies(t *testing.T) {
	s := ferrytest.NATS(t)
	nc := ferrytest.Connect(t, s.ClientURL())
	svc, err := micro.AddService(nc, micro.Config{Name: "foreign", Version: "0.1.0", Metadata: map[string]string{"team": "other"}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	noop := micro.HandlerFunc(func(req micro.Request) { _ = req.Respond([]byte(`{}`)) })
	if err := svc.AddGroup("foreign").AddEndpoint("Ep", noop); err != nil { // subject foreign.Ep
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("Other", noop); err != nil { // subject Other: not callable by Ferry
		t.Fatal(err)
	}
	for _, body := range []string{`{not json`, `{"type":"io.nats.micro.v1.ping_response","name":"9bad","id":"x"}`, `{"type":"other","name":"x","id":"y"}`, `[]`} {
		sub, err := nc.Subscribe("$SRV.PING", func(m *nats.Msg) { _ = m.Respond([]byte(body)) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	ferry, _ := serve(t, nc, greeter("greeter"))

	log := &ferrytest.Buffer{}
	r := newRegistry(t, ferrytest.Connect(t, s.ClientURL()), natssrv.WithLogger(debugLogger(log)))
	set := nextUntil(t, watchAll(t, r), "both services appear", func(set []registry.Instance) bool { return len(set) == 2 })
	if set[0].Service != "foreign" || set[1].ID != ferry.ID() {
		t.Fatalf("set = %+v, want foreign then greeter", set)
	}
	in := set[0]
	if in.ID != svc.Info().ID || in.Version != "0.1.0" || in.Metadata["team"] != "other" {
		t.Errorf("foreign instance = %+v, want its id, version and metadata", in)
	}
	if names, ok := in.EndpointNames(); !ok || !slices.Equal(names, []string{"Ep"}) {
		t.Errorf("foreign EndpointNames = %v, %v, want [Ep] (the one on <service>.<endpoint>)", names, ok)
	}
	ferrytest.Eventually(t, "the bad replies logged", func() bool {
		return strings.Contains(log.String(), "malformed PING reply ignored") && strings.Contains(log.String(), "invalid service name")
	})
}

func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestKilledProcess: a Ferry service killed with SIGKILL (no goodbye to
// NATS) disappears once it has missed its polls.
func TestKilledProcess(t *testing.T) {
	s := ferrytest.NATS(t)
	child := ferrytest.StartChild(t, childEnv, s.ClientURL())
	id := child.Ready
	r := newRegistry(t, ferrytest.Connect(t, s.ClientURL()))
	w := watchAll(t, r)
	nextUntil(t, w, "the child appears", func(set []registry.Instance) bool { _, ok := find(set, id); return ok })
	killed := time.Now()
	if err := child.Kill(); err != nil {
		t.Fatal(err)
	}
	nextUntil(t, w, "the killed child disappears", func(set []registry.Instance) bool { _, ok := find(set, id); return !ok })
	t.Logf("the killed instance disappeared after %v (interval %v, misses %d)", time.Since(killed).Round(time.Millisecond), fast, natssrv.DefaultMisses)
}

// runChild serves a Ferry service on NATS at url, prints "ready <id>" and
// serves until stdin closes.
func runChild(url string) int {
	nc, err := nats.Connect(url, nats.Name("natssrv child"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	defer nc.Close()
	tr := fnats.NewServer(nc)
	if err := tr.Start(context.Background(), greeter("doomed")); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	fmt.Println("ready", tr.ID())
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	_ = tr.Stop(context.Background())
	return 0
}

// client.Client calls instances found here over NATS, and a gateway routes
// them, POST and REST, with nothing but NATS between them.
func TestClientAndGateway(t *testing.T) {
	s := ferrytest.NATS(t)
	serve(t, ferrytest.Connect(t, s.ClientURL()), greeter("greeter"))
	nc := ferrytest.Connect(t, s.ClientURL())
	r := newRegistry(t, nc)
	c, err := client.New(r, client.WithNATS(nc))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ferrytest.Context(t)
	var out HelloReply
	if err := c.Invoke(ctx, "greeter", "Hello", &HelloRequest{Name: "Ada", Limit: 1}, &out); err != nil || out.Message != "Hello, Ada (1)" {
		t.Fatalf("client Invoke(greeter/Hello) = %+v, %v, want Hello, Ada (1)", out, err)
	}
	if _, err := transport.Invoke[HelloRequest, HelloReply](ctx, c, "greeter", "Get", &HelloRequest{Name: "B"}); err != nil {
		t.Errorf("client Invoke(greeter/Get) = %v", err)
	}

	g, err := gateway.New(r, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer g.Stop(context.Background())
	ts := httptest.NewServer(g)
	defer ts.Close()
	ferrytest.Eventually(t, "the gateway routes greeter", func() bool {
		return slices.ContainsFunc(g.Routes(), func(rt gateway.Route) bool { return rt.Path == "GET /v1/find/{name}" })
	})
	for _, tt := range []struct{ method, path, body, want string }{
		{"POST", "/greeter/Hello", `{"name":"Ada","limit":2}`, `{"message":"Hello, Ada (2)"}`},
		{"GET", "/v1/find/Bob?limit=3", "", `{"message":"Hello, Bob (3)"}`},
		{"GET", "/greeter/Get?name=Cy", "", `{"message":"Hello, Cy (0)"}`},
	} {
		req, _ := http.NewRequestWithContext(ctx, tt.method, ts.URL+tt.path, strings.NewReader(tt.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s = %v", tt.method, tt.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != tt.want {
			t.Errorf("%s %s = %d %s, want 200 %s", tt.method, tt.path, resp.StatusCode, b, tt.want)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/greeter/Nope", strings.NewReader(`{}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /greeter/Nope = %v, %v, want 404 at the edge", resp, err)
	} else {
		resp.Body.Close()
	}
}

// After the connection drops, Next reports Unavailable once and the watch
// recovers when the server is back; a closed connection ends it.
func TestConnectionLoss(t *testing.T) {
	ctx := ferrytest.Context(t)
	s, err := natsembed.Start(ctx, natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown() })
	url, port := s.ClientURL(), s.Addr().(*net.TCPAddr).Port
	connect := func() *nats.Conn {
		nc, err := nats.Connect(url, nats.ReconnectWait(20*time.Millisecond), nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	svcConn := connect()
	first, _ := serve(t, svcConn, greeter("greeter"))
	nc := connect()
	w := watchAll(t, newRegistry(t, nc))
	nextUntil(t, w, "the service appears", func(set []registry.Instance) bool { _, ok := find(set, first.ID()); return ok })

	s.Shutdown()
	if _, err := w.Next(ctx); errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("Next after the server went = %v, want Unavailable", err)
	}
	s2, err := natsembed.Start(ctx, natsembed.Options{Port: port})
	if err != nil {
		t.Fatalf("restart NATS on port %d: %v", port, err)
	}
	t.Cleanup(func() { s2.Shutdown() })
	ferrytest.Eventually(t, "both connections back", func() bool { return nc.IsConnected() && svcConn.IsConnected() })
	second, _ := serve(t, svcConn, greeter("greeter"))
	nextUntil(t, w, "polling resumes: a new instance appears beside the old", func(set []registry.Instance) bool {
		_, a := find(set, first.ID())
		_, b := find(set, second.ID())
		return a && b
	})

	nc.Close()
	for range 2 {
		if _, err := w.Next(ctx); errs.CodeOf(err) != errs.Unavailable {
			t.Fatalf("Next after the connection closed = %v, want Unavailable", err)
		}
	}
}

// A ferry.Service on NATS, HTTP and gRPC answers $SRV.INFO with its other
// transports (registry.MetadataTransports), so the instance found by NATS
// discovery lists all three, and a client can pin a call to each.
func TestOtherTransports(t *testing.T) {
	s := ferrytest.NATS(t)
	conn := fnats.ConnectTo(func() string { return s.ClientURL() })
	svc := ferry.New(greeter("greeter"), ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")),
		ferry.WithTransport(fgrpc.NewServer("127.0.0.1:0")), ferry.WithConnection(conn), ferry.WithTransport(conn.Serve()),
		ferry.WithLogger(slog.New(slog.DiscardHandler)))
	ctx := ferrytest.Context(t)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(context.Background())
	httpAddr, _ := svc.Addr("http")
	grpcAddr, _ := svc.Addr("grpc")

	nc := ferrytest.Connect(t, s.ClientURL())
	r := newRegistry(t, nc)
	w := watchAll(t, r)
	set := nextUntil(t, w, "the service appears", func(set []registry.Instance) bool { return len(set) == 1 })
	kinds := map[string]string{}
	for _, ep := range set[0].Endpoints {
		kinds[ep.Transport] = ep.Address
	}
	if len(kinds) != 3 || kinds["nats"] != s.ClientURL() || kinds["http"] != httpAddr || kinds["grpc"] != grpcAddr {
		t.Fatalf("endpoints = %+v, want nats %s, http %s and grpc %s", set[0].Endpoints, s.ClientURL(), httpAddr, grpcAddr)
	}
	c, err := client.New(r, client.WithNATS(nc), client.WithTransports("nats", "http", "grpc"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, kind := range []transport.Kind{transport.NATS, transport.HTTP, transport.GRPC} {
		var out HelloReply
		if err := c.Invoke(client.WithCallTransport(ctx, kind), "greeter", "Hello", &HelloRequest{Name: string(kind)}, &out); err != nil || out.Message != "Hello, "+string(kind)+" (0)" {
			t.Errorf("Hello over %s = %+v, %v", kind, out, err)
		}
	}
}
