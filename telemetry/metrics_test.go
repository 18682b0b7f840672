package telemetry_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	"github.com/ferry-go/ferry/transport"
	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// startAdmin runs an Admin on 127.0.0.1:0 until the test ends.
func startAdmin(t *testing.T, opts ...telemetry.AdminOption) (*telemetry.Admin, string) {
	t.Helper()
	a := telemetry.NewAdmin("127.0.0.1:0", opts...)
	if err := a.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	return a, "http://" + a.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// series returns, for each sample line of metric name, its labels
// (name=value pairs) by label name.
func series(body, name string) []map[string]string {
	var out []map[string]string
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		labels, _, _ := strings.Cut(rest, "} ")
		m := map[string]string{}
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = strings.Trim(v, `"`)
		}
		out = append(out, m)
	}
	return out
}

func keys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestMetricsScrape: calls over HTTP, gRPC and NATS, then a real GET of
// /metrics on the admin port: the duration histogram exists for each
// transport under the same name with the same label set.
func TestMetricsScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	_, base := startAdmin(t, telemetry.WithGatherer(reg))

	srv := server.New("metered", server.WithMiddleware(telemetry.Metrics(mp)))
	server.Handle(srv, "Echo", func(ctx context.Context, h *hop) (*hop, error) {
		if h.Path == "fail" {
			return nil, errs.New(errs.NotFound, "no such thing")
		}
		return h, nil
	})
	inst := ferrytest.Start(t, srv)
	ctx := testCtx(t)
	for _, c := range []transport.Client{inst.HTTP, inst.GRPC, inst.NATS} {
		if _, err := transport.Invoke[hop, hop](ctx, c, "metered", "Echo", &hop{Path: "x"}); err != nil {
			t.Fatal(err)
		}
		if _, err := transport.Invoke[hop, hop](ctx, c, "metered", "Echo", &hop{Path: "fail"}); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("failing call = %v, want not_found", err)
		}
	}

	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	const name = "rpc_server_duration_seconds_count"
	got := series(body, name)
	bySystem := map[string][]string{}
	for _, s := range got {
		if s["rpc_service"] != "metered" {
			continue
		}
		if s["ferry_code"] != "ok" && s["ferry_code"] != "not_found" {
			t.Errorf("series with ferry_code %q", s["ferry_code"])
		}
		if s["rpc_method"] != "Echo" {
			t.Errorf("series with rpc_method %q", s["rpc_method"])
		}
		bySystem[s["rpc_system"]+"/"+s["ferry_code"]] = keys(s)
	}
	var want []string
	for _, sys := range []string{"http", "grpc", "nats"} {
		for _, code := range []string{"ok", "not_found"} {
			ls, ok := bySystem[sys+"/"+code]
			if !ok {
				t.Errorf("no %s series for rpc_system=%s ferry_code=%s in:\n%s", name, sys, code, body)
				continue
			}
			if want == nil {
				want = ls
			} else if !slices.Equal(ls, want) {
				t.Errorf("labels for %s/%s = %v, want %v (as for the others)", sys, code, ls, want)
			}
		}
	}
	for _, l := range []string{"rpc_service", "rpc_method", "rpc_system", "ferry_code"} {
		if !slices.Contains(want, l) {
			t.Errorf("label set %v lacks %s", want, l)
		}
	}
	for _, m := range []string{"rpc_server_duration_seconds_bucket", "rpc_server_active_calls"} {
		if !strings.Contains(body, m+"{") {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	t.Logf("label set: %v", want)
}
