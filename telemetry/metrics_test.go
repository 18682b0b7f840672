package telemetry_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
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

// TestMetricsScrape: calls over HTTP, gRPC and NATS, server and client
// side, then a real GET of /metrics on the admin port: HTTP calls are in
// the HTTP conventions' histograms, gRPC and NATS calls in the RPC ones,
// each series with its conventions' labels plus ferry_endpoint and
// ferry_code; error_type only where the call failed in the conventions'
// sense (every client error; no server fault here).
func TestMetricsScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	_, base := startAdmin(t, telemetry.WithGatherer(reg))

	mw := telemetry.Metrics(mp)
	srv := server.New("metered", server.WithMiddleware(mw))
	server.Handle(srv, "Echo", func(ctx context.Context, h *hop) (*hop, error) {
		if h.Path == "fail" {
			return nil, errs.New(errs.NotFound, "no such thing")
		}
		return h, nil
	})
	inst := ferrytest.Start(t, srv)
	hc := must(fhttp.NewClient("http://"+inst.HTTPAddr, fhttp.WithClientMiddleware(mw)))(t)
	t.Cleanup(func() { _ = hc.Close() })
	gc := must(fgrpc.NewClient(inst.GRPCAddr, fgrpc.WithClientMiddleware(mw)))(t)
	t.Cleanup(func() { _ = gc.Close() })
	nc := fnats.NewClient(ferrytest.Connect(t, inst.NATSURL), fnats.WithClientMiddleware(mw))
	ctx := testCtx(t)
	for _, c := range []transport.Client{hc, gc, nc} {
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
	httpPort := inst.HTTPAddr[strings.LastIndexByte(inst.HTTPAddr, ':')+1:]
	common := func(code string) map[string]string {
		return map[string]string{"ferry_endpoint": "metered/Echo", "ferry_code": code}
	}
	with := func(m map[string]string, kv ...string) map[string]string {
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		metric string
		want   map[string]string // labels; "-" means absent
	}{
		{"http_server_request_duration_seconds_count", with(common("ok"), "http_request_method", "POST", "http_route", "/metered/Echo",
			"url_scheme", "http", "http_response_status_code", "200", "error_type", "-")},
		{"http_server_request_duration_seconds_count", with(common("not_found"), "http_request_method", "POST", "http_route", "/metered/Echo",
			"url_scheme", "http", "http_response_status_code", "404", "error_type", "-")},
		{"http_client_request_duration_seconds_count", with(common("ok"), "http_request_method", "POST", "server_address", "127.0.0.1",
			"server_port", httpPort, "http_response_status_code", "200", "error_type", "-")},
		{"http_client_request_duration_seconds_count", with(common("not_found"), "http_request_method", "POST", "server_address", "127.0.0.1",
			"server_port", httpPort, "http_response_status_code", "404", "error_type", "not_found")},
		{"http_server_active_requests", with(common(""), "http_request_method", "POST", "url_scheme", "http", "ferry_code", "-")},
		{"http_client_active_requests", with(common(""), "http_request_method", "POST", "server_address", "127.0.0.1", "ferry_code", "-")},
		{"rpc_server_call_duration_seconds_count", with(common("ok"), "rpc_system_name", "grpc", "rpc_method", "metered.Metered/Echo",
			"rpc_response_status_code", "OK", "error_type", "-")},
		{"rpc_server_call_duration_seconds_count", with(common("not_found"), "rpc_system_name", "grpc", "rpc_method", "metered.Metered/Echo",
			"rpc_response_status_code", "NOT_FOUND", "error_type", "-")},
		{"rpc_client_call_duration_seconds_count", with(common("not_found"), "rpc_system_name", "grpc", "rpc_method", "metered.Metered/Echo",
			"rpc_response_status_code", "NOT_FOUND", "error_type", "not_found")},
		{"rpc_server_call_duration_seconds_count", with(common("ok"), "rpc_system_name", "nats", "rpc_method", "metered/Echo",
			"rpc_response_status_code", "OK", "error_type", "-")},
		{"rpc_client_call_duration_seconds_count", with(common("not_found"), "rpc_system_name", "nats", "rpc_method", "metered/Echo",
			"rpc_response_status_code", "NOT_FOUND", "error_type", "not_found")},
		{"ferry_rpc_server_active_calls", with(common(""), "rpc_system_name", "grpc", "rpc_method", "metered.Metered/Echo", "ferry_code", "-")},
		{"ferry_rpc_client_active_calls", with(common(""), "rpc_system_name", "nats", "rpc_method", "metered/Echo", "ferry_code", "-")},
	} {
		if !hasSeries(series(body, c.metric), c.want) {
			t.Errorf("no %s series with %v in:\n%s", c.metric, c.want, strings.Join(lines(body, c.metric), "\n"))
		}
	}
	for _, old := range []string{"rpc_server_duration_seconds_count", "rpc_client_duration_seconds_count", "rpc_server_active_calls", "rpc_client_active_calls"} {
		if l := lines(body, old); len(l) > 0 {
			t.Errorf("/metrics still has %s: %v", old, l)
		}
	}
	for _, old := range []string{"rpc_service=", "rpc_system="} {
		if strings.Contains(body, old) {
			t.Errorf("/metrics still has the label %s", old)
		}
	}
	if !strings.Contains(body, `otel_scope_schema_url="`+telemetry.SemconvSchemaURL+`"`) {
		t.Errorf("/metrics lacks the schema URL %s", telemetry.SemconvSchemaURL)
	}
}

// hasSeries reports whether one of got has the labels want ("-": absent).
func hasSeries(got []map[string]string, want map[string]string) bool {
	for _, s := range got {
		ok := true
		for k, v := range want {
			have, present := s[k]
			if (v == "-" && present) || (v != "-" && have != v) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// lines returns the sample lines of metric name in body.
func lines(body, name string) []string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name+"{") {
			out = append(out, l)
		}
	}
	return out
}
