package client_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/memory"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec)) // an instance process of the kill test
	}
	goleak.VerifyTestMain(m)
}

// testTimeout bounds any one test's calls; generous for a loaded machine.
const testTimeout = 30 * time.Second

type EchoRequest struct {
	N int `json:"n"`
}

type EchoReply struct {
	N        int    `json:"n"`
	Instance string `json:"instance"`
	Meta     string `json:"meta,omitempty"`
}

// backend is one instance of the "echo" service, serving Echo on a real
// transport, with a hook deciding how each call goes.
type backend struct {
	id   string
	hits atomic.Int64
	// fail, if set, runs before the reply; a non-nil error is returned.
	fail func(ctx context.Context, n int64) error
	stop func()
	in   registry.Instance
}

func (b *backend) Echo(ctx context.Context, req *EchoRequest) (*EchoReply, error) {
	n := b.hits.Add(1)
	if b.fail != nil {
		if err := b.fail(ctx, n); err != nil {
			return nil, err
		}
	}
	var meta string
	if c, ok := transport.CallFromContext(ctx); ok {
		meta = c.Request.Get("x-test") + c.Request.Get("x-mw")
	}
	return &EchoReply{N: req.N, Instance: b.id, Meta: meta}, nil
}

// Count streams req.N replies numbered from 0, each naming the instance.
func (b *backend) Count(ctx context.Context, req *EchoRequest, out server.Sender[EchoReply]) error {
	b.hits.Add(1)
	for i := range req.N {
		if err := out.Send(&EchoReply{N: i, Instance: b.id}); err != nil {
			return err
		}
	}
	return nil
}

// start serves b over kind ("http" or "grpc") and registers it as service
// svc in reg. stop hard-stops the server (the registry entry stays).
func start(t *testing.T, reg registry.Registrar, svc, kind string, b *backend) *backend {
	t.Helper()
	srv := server.New(svc)
	server.Handle(srv, "Echo", b.Echo)
	server.Handle(srv, "Idem", b.Echo)
	server.HandleServerStream(srv, "Count", b.Count)
	var tr interface {
		server.Transport
		server.Advertiser
	}
	switch kind {
	case "grpc":
		tr = fgrpc.NewServer("127.0.0.1:0")
	default:
		tr = fhttp.NewServer("127.0.0.1:0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := tr.Start(ctx, srv); err != nil {
		t.Fatalf("Start(%s) = %v", kind, err)
	}
	var once sync.Once
	b.stop = func() {
		once.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			_ = tr.Stop(sctx)
		})
	}
	t.Cleanup(b.stop)
	name, addr, _ := tr.Advertise()
	b.in = registry.Instance{ID: b.id, Service: svc, Endpoints: []registry.Endpoint{{Transport: name, Address: addr}}}
	if err := reg.Register(ctx, b.in); err != nil {
		t.Fatalf("Register(%s) = %v", b.id, err)
	}
	return b
}

func newClient(t *testing.T, d registry.Discovery, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(d, opts...)
	if err != nil {
		t.Fatalf("client.New() = %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func echo(ctx context.Context, c *client.Client, svc string, n int) (*EchoReply, error) {
	return transport.Endpoint[EchoRequest, EchoReply]{Service: svc, Name: "Echo"}.Call(ctx, c, &EchoRequest{N: n})
}

// counting wraps a Discovery, counting look-ups and watches, and can be
// taken down: while down, Watch fails and open watchers' Next fails.
type counting struct {
	registry.Discovery
	lookups, watches atomic.Int64

	mu   sync.Mutex
	down chan struct{} // closed while down; nil when up
}

var errDown = errors.New("registry unreachable")

func (c *counting) Lookup(ctx context.Context, svc string) ([]registry.Instance, error) {
	c.lookups.Add(1)
	if c.downCh() != nil {
		return nil, errDown
	}
	return c.Discovery.Lookup(ctx, svc)
}

func (c *counting) Watch(ctx context.Context, svc string) (registry.Watcher, error) {
	c.watches.Add(1)
	if c.downCh() != nil {
		return nil, errDown
	}
	w, err := c.Discovery.Watch(ctx, svc)
	if err != nil {
		return nil, err
	}
	return &countingWatcher{Watcher: w, c: c}, nil
}

func (c *counting) downCh() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down
}

func (c *counting) setDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case down && c.down == nil:
		c.down = make(chan struct{})
		close(c.down)
	case !down:
		c.down = nil
	}
}

type countingWatcher struct {
	registry.Watcher
	c *counting
}

func (w *countingWatcher) Next(ctx context.Context) ([]registry.Instance, error) {
	if w.c.downCh() != nil {
		return nil, errDown
	}
	// Wake up when the registry goes down; polling is good enough here.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if w.c.downCh() != nil {
					cancel()
					return
				}
			}
		}
	}()
	ins, err := w.Watcher.Next(ctx)
	if err != nil && w.c.downCh() != nil {
		return nil, errDown
	}
	return ins, err
}

func newMemory() *memory.Registry { return memory.New() }

// eventually calls f until it reports true or the test timeout passes.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, testTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The test service's endpoints.
var (
	epIdem = transport.Endpoint[EchoRequest, EchoReply]{Service: "echo", Name: "Idem"}
	epGet  = transport.Endpoint[EchoRequest, EchoReply]{Service: "echo", Name: "Get"}
	epPut  = transport.Endpoint[EchoRequest, EchoReply]{Service: "echo", Name: "Put"}
)
