package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/gateway"
	"github.com/ferry-go/ferry/registry"
	regmemory "github.com/ferry-go/ferry/registry/memory"
	"github.com/ferry-go/ferry/transport"
)

// echoClient answers every call with its request and one reply header,
// without a network: what is left is the gateway's own work.
type echoClient struct{}

func (echoClient) Invoke(_ context.Context, _, _ string, req, resp any) error {
	*resp.(*json.RawMessage) = append(json.RawMessage(nil), req.(json.RawMessage)...)
	return nil
}

// BenchmarkServeHTTP is the gateway's own cost per request — routing,
// body, deadline, headers, the edge chain, the reply — with a client that
// answers at once, so no network or service is measured.
func BenchmarkServeHTTP(b *testing.B) {
	reg := regmemory.New()
	in := registry.Instance{ID: "1", Service: "bench", Endpoints: []registry.Endpoint{{Transport: "http", Address: "http://127.0.0.1:1"}},
		Metadata: map[string]string{registry.MetadataEndpoints: "Echo"}}
	if err := reg.Register(context.Background(), in); err != nil {
		b.Fatal(err)
	}
	g, err := gateway.New(reg, echoClient{}, gateway.WithLogger(quiet()))
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Stop(context.Background()) })
	const body = `{"text":"hello, this is a benchmark payload of modest size","num":42}`
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/bench/Echo", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("User-Agent", "Go-http-client/1.1")
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("= %d %s", w.Code, w.Body)
		}
	}
}

var _ transport.Client = echoClient{}

func (echoClient) Close() error { return nil }
