package config_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/middleware/requestid"
	"github.com/ferry-go/ferry/transport"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
)

// TestGatewayFromConfig (issue #13): a service with gateway.enabled and
// no endpoints of its own — what `ferry gateway` runs — routes every
// service of its registry, through its client, behind its middleware; its
// Routes endpoint lists the routes.
func TestGatewayFromConfig(t *testing.T) {
	natsURL := startNATS(t)
	startConfigured(t, backRegister(nil), "FERRY_SERVICE_NAME", "back", "FERRY_ADMIN_ENABLED", "false",
		"FERRY_TRANSPORTS_HTTP_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ENABLED", "false",
		"FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats")
	gw := startConfigured(t, nil, "FERRY_SERVICE_NAME", "edge", "FERRY_ADMIN_ENABLED", "false",
		"FERRY_TRANSPORTS_HTTP_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ENABLED", "false",
		"FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats",
		"FERRY_GATEWAY_ENABLED", "true", "FERRY_GATEWAY_ADDR", "127.0.0.1:0",
		"FERRY_GATEWAY_ROUTES", `[{"service": "back", "endpoint": "Echo", "path": "/api/echo"}]`)
	addr, ok := gw.Addr("gateway")
	if !ok {
		t.Fatal("no gateway address")
	}
	var body string
	ferrytest.Eventually(t, "back's Echo served through the gateway", func() bool {
		resp, err := http.Post(addr+"/api/echo", "application/json", strings.NewReader(`{"text": "edge"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	if strings.TrimSpace(body) != `{"text":"edge>back"}` {
		t.Errorf("through the gateway = %s", body)
	}
	// The gateway's own Routes endpoint, over NATS.
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got, err := transport.Invoke[struct{}, config.RoutesReply](ferrytest.Context(t), fnats.NewClient(nc), "edge", "Routes", &struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range got.Routes {
		found = found || (r.Path == "/api/echo" && r.Service == "back" && r.Endpoint == "Echo" && r.Instances == 1)
	}
	if !found {
		t.Errorf("Routes = %+v, want /api/echo → back/Echo with 1 instance", got.Routes)
	}
}

// Without a registry, a gateway on NATS routes what NATS $SRV discovery
// finds (issue #13), whether registry.kind is none or srv; the backend
// registers nowhere. With srv, the service's own client finds the backend
// the same way.
func TestGatewayWithoutRegistry(t *testing.T) {
	for _, kind := range []string{"none", "srv"} {
		t.Run(kind, func(t *testing.T) {
			natsURL := startNATS(t)
			startConfigured(t, backRegister(nil), "FERRY_SERVICE_NAME", "back", "FERRY_ADMIN_ENABLED", "false",
				"FERRY_TRANSPORTS_HTTP_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ENABLED", "false",
				"FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", kind)
			gw := startConfigured(t, nil, "FERRY_SERVICE_NAME", "edge", "FERRY_ADMIN_ENABLED", "false",
				"FERRY_TRANSPORTS_HTTP_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ENABLED", "false",
				"FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", kind,
				"FERRY_GATEWAY_ENABLED", "true", "FERRY_GATEWAY_ADDR", "127.0.0.1:0")
			addr, ok := gw.Addr("gateway")
			if !ok {
				t.Fatal("no gateway address")
			}
			var status int
			var body string
			ferrytest.Eventually(t, "back's Echo served through the gateway", func() bool {
				resp, err := http.Post(addr+"/back/Echo", "application/json", strings.NewReader(`{"text": "edge"}`))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				status, body = resp.StatusCode, string(b)
				return status == 200
			})
			if strings.TrimSpace(body) != `{"text":"edge>back"}` {
				t.Errorf("through the gateway = %d %s", status, body)
			}
			// Routed exactly: an endpoint back does not list is 404 at the edge.
			resp, err := http.Post(addr+"/back/Nope", "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("POST /back/Nope = %d, want 404", resp.StatusCode)
			}
		})
	}
}

// With the requestid middleware configured, the ID the gateway's edge
// gives a request (or takes from the caller) is the one the backend sees:
// the configured client sends it on.
func TestGatewayRequestIDReachesBackend(t *testing.T) {
	natsURL := startNATS(t)
	seen := make(chan string, 10)
	startConfigured(t, backRegister(func(ctx context.Context) {
		if call, ok := transport.CallFromContext(ctx); ok && call.Request != nil {
			seen <- call.Request.Get(requestid.Key)
		}
	}), "FERRY_SERVICE_NAME", "back", "FERRY_ADMIN_ENABLED", "false",
		"FERRY_TRANSPORTS_HTTP_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ENABLED", "false",
		"FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats")
	file := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(file, []byte("middleware:\n  - name: requestid\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Sources{File: file, Env: env("FERRY_LOG_LEVEL", "error",
		"FERRY_SERVICE_NAME", "edge", "FERRY_ADMIN_ENABLED", "false",
		"FERRY_TRANSPORTS_HTTP_ENABLED", "false", "FERRY_TRANSPORTS_GRPC_ENABLED", "false",
		"FERRY_NATS_URL", natsURL, "FERRY_REGISTRY_KIND", "nats",
		"FERRY_GATEWAY_ENABLED", "true", "FERRY_GATEWAY_ADDR", "127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := config.NewService(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ferrytest.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ferrytest.WaitBound)
		defer cancel()
		_ = gw.Stop(ctx)
	})
	addr, _ := gw.Addr("gateway")
	call := func(id string) (sent string) {
		var resp *http.Response
		ferrytest.Eventually(t, "back's Echo through the gateway", func() bool {
			req, _ := http.NewRequest(http.MethodPost, addr+"/back/Echo", strings.NewReader(`{"text": "id"}`))
			req.Header.Set("Content-Type", "application/json")
			if id != "" {
				req.Header.Set(requestid.Key, id)
			}
			var err error
			if resp, err = http.DefaultClient.Do(req); err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		return resp.Header.Get(requestid.Key)
	}
	for _, id := range []string{"", "from-the-caller"} {
		answered := call(id)
		if id != "" && answered != id {
			t.Errorf("the gateway answered x-request-id %q, want the caller's %q", answered, id)
		}
		var got string
		for len(seen) > 0 { // earlier attempts while the route appeared did not reach back
			got = <-seen
		}
		if answered == "" || got != answered {
			t.Errorf("caller sent %q: back saw x-request-id %q, the gateway answered %q; want one ID", id, got, answered)
		}
	}
}
