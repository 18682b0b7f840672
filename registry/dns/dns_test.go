package dns_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/dns"
	"go.uber.org/goleak"
	"golang.org/x/net/dns/dnsmessage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is a small authoritative DNS server on 127.0.0.1 (UDP) whose
// records tests change while it runs.
type server struct {
	conn net.PacketConn

	mu   sync.Mutex
	ips  map[string][]netip.Addr // name (with the final dot) -> A/AAAA
	srvs map[string][]dnsmessage.SRVResource
	fail map[string]bool // names answered with SERVFAIL
	asks map[string]int  // questions answered, by name
}

func startServer(t *testing.T) *server {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ListenPacket = %v", err)
	}
	s := &server{conn: conn, ips: map[string][]netip.Addr{}, srvs: map[string][]dnsmessage.SRVResource{}, fail: map[string]bool{}, asks: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, addr, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply := s.answer(buf[:n]); reply != nil {
				_, _ = conn.WriteTo(reply, addr)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

func (s *server) set(name string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var addrs []netip.Addr
	for _, ip := range ips {
		addrs = append(addrs, netip.MustParseAddr(ip))
	}
	s.ips[name] = addrs
}

func (s *server) setFail(name string, fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[name] = fail
}

func (s *server) setSRV(name string, recs ...dnsmessage.SRVResource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srvs[name] = recs
}

// asked returns how many questions about name s has answered.
func (s *server) asked(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asks[name]
}

func (s *server) answer(req []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := strings.ToLower(q.Name.String())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asks[name]++
	ips, hasIPs := s.ips[name]
	srvs, hasSRV := s.srvs[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true}
	switch {
	case s.fail[name]:
		rh.RCode = dnsmessage.RCodeServerFailure
	case !hasIPs && !hasSRV:
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
	if rh.RCode == dnsmessage.RCodeSuccess {
		switch q.Type {
		case dnsmessage.TypeA:
			for _, ip := range ips {
				if ip.Is4() {
					_ = b.AResource(hdr, dnsmessage.AResource{A: ip.As4()})
				}
			}
		case dnsmessage.TypeAAAA:
			for _, ip := range ips {
				if ip.Is6() {
					_ = b.AAAAResource(hdr, dnsmessage.AAAAResource{AAAA: ip.As16()})
				}
			}
		case dnsmessage.TypeSRV:
			for _, r := range srvs {
				_ = b.SRVResource(hdr, r)
			}
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// resolver is a real net.Resolver that asks s, whatever resolv.conf says.
func (s *server) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.conn.LocalAddr().String())
	}}
}

func srv(target string, port uint16) dnsmessage.SRVResource {
	return dnsmessage.SRVResource{Priority: 10, Weight: 10, Port: port, Target: dnsmessage.MustNewName(target)}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLookup(t *testing.T) {
	s := startServer(t)
	s.set("greeter.test.", "10.0.0.7", "10.0.0.8", "fd00::1")
	s.set("secure.test.", "10.0.0.9")
	s.setSRV("_grpc._tcp.echo.test.", srv("pod-b.echo.test.", 9091), srv("pod-a.echo.test.", 9090))

	r, err := dns.New(map[string][]dns.Target{
		"greeter": {
			{Transport: "http", Host: "greeter.test.", Port: 8080},
			{Transport: "grpc", Host: "greeter.test.", Port: 9090},
			{Transport: "nats", Host: "greeter.test.", Port: 4222, Scheme: "tls"},
		},
		"echo":    {{Transport: "grpc", SRV: "_grpc._tcp.echo.test."}},
		"secure":  {{Transport: "http", Host: "secure.test.", Port: 8443, TLS: true}, {Transport: "grpc", Host: "secure.test.", Port: 9443, TLS: true}},
		"missing": {{Transport: "grpc", Host: "missing.test.", Port: 1}, {Transport: "http", SRV: "_http._tcp.missing.test."}},
	}, dns.WithResolver(s.resolver()))
	if err != nil {
		t.Fatalf("New = %v, want nil", err)
	}
	ctx := testCtx(t)
	ep := func(tr, addr string) registry.Endpoint { return registry.Endpoint{Transport: tr, Address: addr} }
	tests := []struct {
		service string
		want    []registry.Instance
	}{
		{"greeter", []registry.Instance{
			{ID: "10-0-0-7", Service: "greeter", Endpoints: []registry.Endpoint{ep("http", "http://10.0.0.7:8080"), ep("grpc", "10.0.0.7:9090"), ep("nats", "tls://10.0.0.7:4222")}},
			{ID: "10-0-0-8", Service: "greeter", Endpoints: []registry.Endpoint{ep("http", "http://10.0.0.8:8080"), ep("grpc", "10.0.0.8:9090"), ep("nats", "tls://10.0.0.8:4222")}},
			{ID: "fd00--1", Service: "greeter", Endpoints: []registry.Endpoint{ep("http", "http://[fd00::1]:8080"), ep("grpc", "[fd00::1]:9090"), ep("nats", "tls://[fd00::1]:4222")}},
		}},
		{"echo", []registry.Instance{
			{ID: "pod-a-echo-test", Service: "echo", Endpoints: []registry.Endpoint{ep("grpc", "pod-a.echo.test:9090")}},
			{ID: "pod-b-echo-test", Service: "echo", Endpoints: []registry.Endpoint{ep("grpc", "pod-b.echo.test:9091")}},
		}},
		{"secure", []registry.Instance{ // TLS: registered so, https:// for HTTP
			{ID: "10-0-0-9", Service: "secure", Endpoints: []registry.Endpoint{
				{Transport: "http", Address: "https://10.0.0.9:8443", TLS: true}, {Transport: "grpc", Address: "10.0.0.9:9443", TLS: true}}},
		}},
		{"missing", nil},      // names that do not exist: no instances
		{"unconfigured", nil}, // not configured: no instances
	}
	for _, tt := range tests {
		got, err := r.Lookup(ctx, tt.service)
		if err != nil {
			t.Errorf("Lookup(%q) = %v, want nil error", tt.service, err)
			continue
		}
		if !equalSets(got, tt.want) {
			t.Errorf("Lookup(%q) = %+v, want %+v", tt.service, got, tt.want)
		}
	}
}

func TestLookupFailure(t *testing.T) {
	s := startServer(t)
	s.set("ok.test.", "10.0.0.1")
	s.set("broken.test.", "10.0.0.2")
	s.setFail("broken.test.", true)
	r, err := dns.New(map[string][]dns.Target{
		"svc": {{Transport: "grpc", Host: "ok.test.", Port: 1}, {Transport: "http", Host: "broken.test.", Port: 2}},
	}, dns.WithResolver(s.resolver()))
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	got, err := r.Lookup(testCtx(t), "svc")
	if errs.CodeOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "broken.test.") {
		t.Errorf("Lookup(svc) with a failing name = %v, %v, want an %v error naming broken.test.", got, err, errs.Unavailable)
	}
}

func TestWatchPolls(t *testing.T) {
	s := startServer(t)
	s.set("svc.test.", "10.0.0.1")
	r, err := dns.New(map[string][]dns.Target{"svc": {{Transport: "grpc", Host: "svc.test.", Port: 9090}}},
		dns.WithResolver(s.resolver()), dns.WithInterval(50*time.Millisecond))
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	ctx := testCtx(t)
	w, err := r.Watch(ctx, "svc")
	if err != nil {
		t.Fatalf("Watch = %v", err)
	}
	defer w.Stop()
	next := func(want ...string) {
		t.Helper()
		got, err := w.Next(ctx)
		if err != nil || ids(got) != strings.Join(want, ",") {
			t.Fatalf("Next = %v, %v, want %v", ids(got), err, want)
		}
	}
	next("10-0-0-1")
	s.set("svc.test.", "10.0.0.1", "10.0.0.2")
	next("10-0-0-1", "10-0-0-2")
	s.setFail("svc.test.", true)
	if _, err := w.Next(ctx); errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("Next with DNS failing = %v, want an %v error", err, errs.Unavailable)
	}
	s.setFail("svc.test.", false)
	s.set("svc.test.", "10.0.0.2")
	next("10-0-0-2")
}

func TestWatchStopAndCancel(t *testing.T) {
	s := startServer(t)
	s.set("svc.test.", "10.0.0.1")
	r, err := dns.New(map[string][]dns.Target{"svc": {{Transport: "grpc", Host: "svc.test.", Port: 9090}}},
		dns.WithResolver(s.resolver()), dns.WithInterval(time.Hour))
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	ctx := testCtx(t)
	w, err := r.Watch(ctx, "svc")
	if err != nil {
		t.Fatalf("Watch = %v", err)
	}
	if _, err := w.Next(ctx); err != nil {
		t.Fatalf("first Next = %v, want nil", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := w.Next(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next before the interval = %v, want %v when ctx ends", err, context.DeadlineExceeded)
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.Next(ctx)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let Next start waiting; Stop works either way
	if err := w.Stop(); err != nil {
		t.Errorf("Stop = %v, want nil", err)
	}
	if err := <-done; !errors.Is(err, registry.ErrWatcherStopped) {
		t.Errorf("Next after Stop = %v, want %v", err, registry.ErrWatcherStopped)
	}
}

func TestReadOnlyAndInvalid(t *testing.T) {
	r, err := dns.New(nil)
	if err != nil {
		t.Fatalf("New(nil) = %v, want nil", err)
	}
	ctx := testCtx(t)
	in := registry.Instance{ID: "a", Service: "svc"}
	if err := r.Register(ctx, in); !errors.Is(err, dns.ErrReadOnly) {
		t.Errorf("Register = %v, want %v", err, dns.ErrReadOnly)
	}
	if err := r.Deregister(ctx, in); !errors.Is(err, dns.ErrReadOnly) {
		t.Errorf("Deregister = %v, want %v", err, dns.ErrReadOnly)
	}
	for _, name := range []string{"", "a.b", ">"} {
		if _, err := r.Lookup(ctx, name); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Lookup(%q) = %v, want an %v error", name, err, errs.InvalidArgument)
		}
		if _, err := r.Watch(ctx, name); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Watch(%q) = %v, want an %v error", name, err, errs.InvalidArgument)
		}
	}

	tests := []struct {
		name     string
		services map[string][]dns.Target
		opts     []dns.Option
		want     string
	}{
		{"bad service", map[string][]dns.Target{"a.b": nil}, nil, `invalid service name "a.b"`},
		{"no transport", map[string][]dns.Target{"s": {{Host: "h", Port: 1}}}, nil, "service s target 0: no transport"},
		{"no name", map[string][]dns.Target{"s": {{Transport: "grpc"}}}, nil, "neither SRV nor Host"},
		{"both names", map[string][]dns.Target{"s": {{Transport: "grpc", SRV: "x", Host: "h", Port: 1}}}, nil, "both SRV and Host"},
		{"no port", map[string][]dns.Target{"s": {{Transport: "grpc", Host: "h"}}}, nil, "port 0"},
		{"bad interval", nil, []dns.Option{dns.WithInterval(0)}, "interval 0s"},
		{"nil resolver", nil, []dns.Option{dns.WithResolver(nil)}, "nil resolver"},
	}
	for _, tt := range tests {
		r, err := dns.New(tt.services, tt.opts...)
		if errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%s) = %v, %v, want an %v error containing %q", tt.name, r, err, errs.InvalidArgument, tt.want)
		}
	}
}

func ids(set []registry.Instance) string {
	s := make([]string, len(set))
	for i, in := range set {
		s[i] = in.ID
	}
	return strings.Join(s, ",")
}

func equalSets(a, b []registry.Instance) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Service != b[i].Service || len(a[i].Endpoints) != len(b[i].Endpoints) {
			return false
		}
		for j := range a[i].Endpoints {
			if a[i].Endpoints[j] != b[i].Endpoints[j] {
				return false
			}
		}
	}
	return true
}
