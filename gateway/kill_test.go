package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/gateway"
	natsreg "github.com/ferry-go/ferry/registry/nats"
	"github.com/ferry-go/ferry/server"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The fault tests run each backend instance as a child process — this test
// binary re-executed with childEnv set — so that killing one is a real
// SIGKILL: no deregistration, no drain.
const (
	childEnv = "FERRY_GATEWAY_TEST_CHILD" // "<nats url>"
	killTTL  = 2 * time.Second            // the registry TTL of the fault tests
)

// runChild serves greeter.Hello (idempotent) over HTTP, registered in the
// NATS registry, until its stdin closes; it prints "ready" once registered.
func runChild(url string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "child:", err); return 1 }
	nc, err := nats.Connect(url)
	if err != nil {
		return fail(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(err)
	}
	reg, err := natsreg.New(ctx, js, natsreg.WithTTL(killTTL))
	if err != nil {
		return fail(err)
	}
	defer reg.Close()
	srv := server.New("greeter", server.WithLogger(quiet()))
	server.Handle(srv, "Hello", func(_ context.Context, r *helloReq) (*helloReply, error) {
		time.Sleep(time.Millisecond) // keep calls in flight when the kill comes
		return &helloReply{Message: "hello " + r.Name}, nil
	}, server.WithIdempotent())
	svc := ferry.New(srv, ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")), ferry.WithRegistry(reg),
		ferry.WithAdvertiseHost("127.0.0.1"), ferry.WithLogger(quiet()))
	if err := svc.Start(ctx); err != nil {
		return fail(err)
	}
	fmt.Println("ready greeter")
	_, _ = io.Copy(io.Discard, os.Stdin)
	stopCtx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := svc.Stop(stopCtx); err != nil {
		return fail(err)
	}
	return 0
}

// startChild starts an instance process and waits until it registered.
func startChild(t *testing.T, url string) *ferrytest.Child {
	t.Helper()
	return ferrytest.StartChild(t, childEnv, url)
}

// natsGateway serves a gateway on the NATS registry, calling over HTTP.
func natsGateway(t *testing.T, url string) (*gateway.Gateway, string) {
	t.Helper()
	ctx := ferrytest.Context(t)
	js, err := jetstream.New(ferrytest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := natsreg.New(ctx, js, natsreg.WithTTL(killTTL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	c, err := client.New(reg, client.WithTransports("http"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	g, err := gateway.New(reg, c, gateway.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Stop(context.Background()) })
	hs := httptest.NewServer(g)
	t.Cleanup(hs.Close)
	return g, hs.URL
}

func instancesOf(g *gateway.Gateway, path string) int {
	for _, r := range g.Routes() {
		if r.Path == path {
			return r.Instances
		}
	}
	return 0
}

// Issue #13: a route appears once its service registers in the NATS
// registry and disappears within the registry's TTL after its last
// instance is SIGKILLed (nobody deregisters it). The times are reported,
// not asserted.
func TestRouteLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ns := ferrytest.NATS(t)
	g, url := natsGateway(t, ns.ClientURL())
	if status, _, _ := post(t, url+"/greeter/Hello", `{}`); status != http.StatusNotFound {
		t.Fatalf("before any instance = %d, want 404", status)
	}
	began := time.Now()
	child := startChild(t, ns.ClientURL())
	registered := time.Since(began)
	ferrytest.Eventually(t, "the route served", func() bool {
		status, _, _ := post(t, url+"/greeter/Hello", `{"name":"r"}`)
		return status == 200
	})
	t.Logf("route served %v after the instance registered (start to registered: %v)", time.Since(began)-registered, registered)

	if err := child.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	ferrytest.Eventually(t, "the route gone after the kill", func() bool {
		return instancesOf(g, "/greeter/Hello") == 0
	})
	t.Logf("route gone %v after SIGKILL (registry TTL %v)", time.Since(killed), killTTL)
	if status, _, body := post(t, url+"/greeter/Hello", `{}`); status != http.StatusNotFound {
		t.Errorf("after the route went = %d %s, want 404", status, body)
	}
}

// Issue #13: one of two instances SIGKILLed under load — no call to the
// idempotent endpoint fails through the gateway.
func TestKillUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ns := ferrytest.NATS(t)
	g, url := natsGateway(t, ns.ClientURL())
	victim := startChild(t, ns.ClientURL())
	startChild(t, ns.ClientURL())
	ferrytest.Eventually(t, "two instances routed", func() bool { return instancesOf(g, "/greeter/Hello") == 2 })

	const workers, before, after = 8, 200, 600
	var ok, failed atomic.Int64
	var firstErr sync.Once
	var killOnce sync.Once
	killed := make(chan struct{})
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ok.Load()+failed.Load() < before+after {
				resp, err := hc.Post(url+"/greeter/Hello", "application/json", strings.NewReader(`{"name":"load"}`))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.Do(func() { t.Errorf("call failed: %v %v", err, resp) })
					continue
				}
				if ok.Add(1) >= before {
					killOnce.Do(func() { _ = victim.Kill(); close(killed) })
				}
			}
		})
	}
	wg.Wait()
	<-killed
	t.Logf("%d calls succeeded, %d failed; one of two instances SIGKILLed after %d", ok.Load(), failed.Load(), before)
	if failed.Load() != 0 {
		t.Errorf("%d of %d idempotent calls failed through the gateway, want 0", failed.Load(), ok.Load()+failed.Load())
	}
}
