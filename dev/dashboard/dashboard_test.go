package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/dev/dashboard"
	"github.com/ferry-go/ferry/dev/traces"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/registry"
	regmemory "github.com/ferry-go/ferry/registry/memory"
)

// wantAll fails for each of wants that body lacks.
func wantAll(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

// The catalogue lists each service with its instances per transport, its
// version, and its endpoints with routes and the idempotent flag; it is
// the same whether the dashboard is mounted by a mux pattern or behind
// http.StripPrefix.
func TestCatalogPage(t *testing.T) {
	st := startStack(t)
	resp, body := get(t, st.URL+"/_ferry/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /_ferry/ = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	httpAddr, _ := st.Greeter.Addr("http")
	wantAll(t, "catalogue", body,
		`data-testid="service-greeter"`, `data-testid="endpoint-greeter-Hello"`, `data-testid="endpoint-greeter-Fail"`,
		`href="/_ferry/services/greeter/Hello"`, "GET /v1/hello/{name}", "idempotent", "v 1.4.0",
		">nats<", ">http<", httpAddr, st.NATSURL, `data-fig-key="greeter/Hello"`, "1 service, 1 instance")

	// Behind StripPrefix, on a server of its own.
	strip := httptest.NewServer(http.StripPrefix("/_ferry", st.Dashboard))
	t.Cleanup(strip.Close)
	_, body2 := get(t, strip.URL+"/_ferry/")
	wantAll(t, "catalogue behind StripPrefix", body2, `data-testid="service-greeter"`, `href="/_ferry/static/app.css"`)
	if resp, _ := get(t, strip.URL+"/_ferry/static/app.js"); resp.StatusCode != 200 {
		t.Errorf("GET app.js behind StripPrefix = %d", resp.StatusCode)
	}
	// /_ferry redirects to /_ferry/.
	req, _ := http.NewRequest(http.MethodGet, st.URL+"/_ferry", nil)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/_ferry/" {
		t.Errorf("GET /_ferry = %d to %q, want a redirect to /_ferry/", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The JSON catalogue, with its ETag.
	resp, body = get(t, st.URL+"/_ferry/api/catalog")
	var cat dashboard.Catalog
	if err := json.Unmarshal([]byte(body), &cat); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("api/catalog: %v %q: %s", err, resp.Header.Get("Content-Type"), body)
	}
	if len(cat.Services) != 1 || cat.Services[0].Name != "greeter" || len(cat.Services[0].Instances) != 1 ||
		len(cat.Services[0].Endpoints) != 2 || !cat.Services[0].Endpoints[1].Idempotent || !cat.Services[0].Endpoints[1].Schemas {
		t.Errorf("api/catalog = %s", body)
	}
	if resp, _ := get(t, st.URL+"/_ferry/api/catalog", "If-None-Match", resp.Header.Get("ETag")); resp.StatusCode != http.StatusNotModified {
		t.Errorf("api/catalog with its ETag = %d, want 304", resp.StatusCode)
	}
}

// The endpoint page renders the published JSON Schema as a field table
// with the validator rules, and pre-fills the explorer with an example
// body; for an endpoint without a schema it says so and
// names the Go types $SRV.INFO gives.
func TestEndpointPage(t *testing.T) {
	st := startStack(t)
	_, body := get(t, st.URL+"/_ferry/services/greeter/Hello")
	wantAll(t, "Hello page", body,
		`data-testid="endpoint-title"`, `data-testid="field-name"`, "required,max=100", "who to greet",
		`data-testid="field-lang"`, "one of &#34;en&#34;, &#34;fr&#34;", "HelloRequest", "HelloReply", `data-testid="field-message"`,
		`data-testid="explorer-request"`, `data-call-url="/greeter/Hello"`, `data-testid="explorer-send"`, "Raw JSON Schema")
	// The skeleton: schema.Example of the request, values the rules accept.
	if !strings.Contains(body, "{\n  &#34;name&#34;: &#34;a&#34;,\n  &#34;lang&#34;: &#34;en&#34;\n}</textarea>") {
		t.Errorf("Hello page: the explorer body is not the skeleton {\"name\": \"a\", \"lang\": \"en\"}:\n%s", body)
	}
	ferrytest.Eventually(t, "the Fail page names the Go types from $SRV.INFO", func() bool {
		_, body = get(t, st.URL+"/_ferry/services/greeter/Fail")
		return strings.Contains(body, "does not publish its schema") && strings.Contains(body, "dashboard_test.failRequest")
	})
	if resp, body := get(t, st.URL+"/_ferry/services/greeter/Nope"); resp.StatusCode != 404 || !strings.Contains(body, "has no endpoint") {
		t.Errorf("unknown endpoint = %d", resp.StatusCode)
	}
	_, body = get(t, st.URL+"/_ferry/explorer?endpoint=greeter/Hello")
	wantAll(t, "explorer", body, `data-testid="explorer-endpoint"`, `value="greeter/Hello" selected`, `data-call-url="/greeter/Hello"`,
		"curl -s -H &#39;Content-Type: application/json&#39; -d &#39;{&#34;name&#34;:&#34;a&#34;,&#34;lang&#34;:&#34;en&#34;}&#39; "+st.URL+"/greeter/Hello")
}

func figuresOf(t *testing.T, base string) dashboard.Figures {
	t.Helper()
	resp, body := get(t, base+"/_ferry/api/figures")
	var f dashboard.Figures
	if err := json.Unmarshal([]byte(body), &f); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("api/figures: %v %q: %s", err, resp.Header.Get("Content-Type"), body)
	}
	return f
}

func endpointFigures(f dashboard.Figures, svc, ep string) dashboard.EndpointFigures {
	for _, e := range f.Endpoints {
		if e.Service == svc && e.Endpoint == ep {
			return e
		}
	}
	return dashboard.EndpointFigures{}
}

// The live figures: totals and window counts from $SRV.STATS, rates
// computed from them exactly, p50/p99 from the greeter's server spans.
func TestFigures(t *testing.T) {
	st := startStack(t)
	const okCalls, failCalls = 5, 3
	for range okCalls {
		if resp, body := post(t, st.URL+"/greeter/Hello", `{"name":"Ada"}`); resp.StatusCode != 200 {
			t.Fatalf("Hello = %d %s", resp.StatusCode, body)
		}
	}
	for range failCalls {
		if resp, _ := post(t, st.URL+"/greeter/Fail", `{"reason":"test"}`); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("Fail = %d, want 400", resp.StatusCode)
		}
	}
	var f dashboard.Figures
	ferrytest.Eventually(t, "the figures count the calls", func() bool {
		f = figuresOf(t, st.URL)
		h, fl := endpointFigures(f, "greeter", "Hello"), endpointFigures(f, "greeter", "Fail")
		return h.TotalCalls == okCalls && h.TotalErrors == 0 && fl.TotalCalls == failCalls && fl.TotalErrors == failCalls &&
			h.Spans == okCalls && fl.Spans == failCalls
	})
	if f.Stats != "$SRV.STATS" || !f.Traces {
		t.Errorf("sources = %q, traces %v", f.Stats, f.Traces)
	}
	h, fl := endpointFigures(f, "greeter", "Hello"), endpointFigures(f, "greeter", "Fail")
	if h.Instances != 1 || h.RateSource != "stats" || h.LatencySource != "traces" || h.P50Ms == nil || h.P99Ms == nil || *h.P50Ms > *h.P99Ms || h.AvgMs == nil {
		t.Errorf("Hello figures = %+v", h)
	}
	if fl.P50Ms == nil || fl.LatencySource != "traces" {
		t.Errorf("Fail figures = %+v", fl)
	}

	// Rates: calls while sampling, until a window holds some; its rate is
	// its count over its length, and its error rate errors over calls.
	ferrytest.Eventually(t, "a window with failed calls", func() bool {
		post(t, st.URL+"/greeter/Fail", `{"reason":"test"}`)
		fl = endpointFigures(figuresOf(t, st.URL), "greeter", "Fail")
		return fl.Calls > 0 && fl.WindowSeconds > 0
	})
	if fl.CallsPerSecond == nil || math.Abs(*fl.CallsPerSecond-float64(fl.Calls)/fl.WindowSeconds) > 1e-9 ||
		fl.ErrorRate == nil || *fl.ErrorRate != 1 || fl.Errors != fl.Calls {
		t.Errorf("Fail window figures = %+v: want calls/s = calls/window, error rate 1", fl)
	}

	// The catalogue renders them too (server-side, before any script).
	_, body := get(t, st.URL+"/_ferry/")
	wantAll(t, "catalogue", body, `data-fig="calls_per_s"`, `data-fig="p99_ms"`, "$SRV.STATS counter differences")
}

// A call through the gateway with a traceparent (as the explorer sends)
// appears in the trace list, and its page draws spans of the gateway and
// the greeter with their attributes.
func TestTracePages(t *testing.T) {
	st := startStack(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	if resp, body := post(t, st.URL+"/greeter/Hello", `{"name":"Ada"}`, "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01"); resp.StatusCode != 200 {
		t.Fatalf("Hello = %d %s", resp.StatusCode, body)
	}
	post(t, st.URL+"/greeter/Fail", `{"reason":"boom"}`, "traceparent", "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ferrytest.Eventually(t, "the trace has spans of gateway and greeter", func() bool {
		tr, ok := st.Store.Get(traceID)
		return ok && len(tr.Services) == 2 && tr.SpanCount >= 3
	})
	_, body := get(t, st.URL+"/_ferry/traces")
	wantAll(t, "trace list", body, `data-testid="trace-row" data-trace-id="`+traceID+`"`, `href="/_ferry/traces/`+traceID+`"`, "greeter", "gateway")
	resp, body := get(t, st.URL+"/_ferry/traces/"+traceID)
	if resp.StatusCode != 200 {
		t.Fatalf("trace page = %d", resp.StatusCode)
	}
	wantAll(t, "trace page", body, `data-testid="waterfall"`, `data-testid="span-greeter"`, `data-testid="span-gateway"`,
		"ferry.endpoint", "greeter/Hello", "· nats", `<rect class="c`)
	if resp, body := get(t, st.URL+"/_ferry/traces/0123456789abcdef0123456789abcdef"); resp.StatusCode != 404 || !strings.Contains(body, "trace-missing") {
		t.Errorf("missing trace = %d", resp.StatusCode)
	}
	resp, body = get(t, st.URL+"/_ferry/api/traces")
	var list traces.List
	if err := json.Unmarshal([]byte(body), &list); err != nil || resp.Header.Get("Content-Type") != "application/json" || len(list.Traces) == 0 {
		t.Errorf("api/traces: %v %q %s", err, resp.Header.Get("Content-Type"), body)
	}
}

// catalog is a registry.Catalog that lists fixed instances, as a broken or
// hostile registry might: names the real registries refuse, malformed
// metadata.
type catalog []registry.Instance

func (c catalog) WatchAll(context.Context) (registry.Watcher, error) {
	return &fixedWatcher{ins: c, stop: make(chan struct{})}, nil
}

type fixedWatcher struct {
	ins  []registry.Instance
	sent bool
	stop chan struct{}
}

func (w *fixedWatcher) Next(ctx context.Context) ([]registry.Instance, error) {
	if !w.sent {
		w.sent = true
		return w.ins, nil
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-w.stop:
		return nil, registry.ErrWatcherStopped
	}
}

func (w *fixedWatcher) Stop() error { close(w.stop); return nil }

// Names and metadata with markup are escaped everywhere; malformed
// metadata is reported on the page, never a 500.
func TestHostileCatalog(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	cat := catalog{
		{Service: evil, ID: `"><img src=x onerror=alert(1)>`, Version: evil,
			Endpoints: []registry.Endpoint{{Transport: evil, Address: "javascript:alert(1)"}},
			Metadata: map[string]string{
				registry.MetadataEndpoints: evil + ",Hello",
				registry.MetadataRoutes:    `{not json`,
				registry.MetadataSchemas:   `{"Hello": {"request": {"type": "object", "properties": {"` + evil + `": {"type": "string", "x-validate": "` + evil + `"}}}}, "` + evil + `": 7}`,
				"zone":                     evil,
			}},
		{Service: "broken", ID: "b1", Metadata: map[string]string{
			registry.MetadataEndpoints: "Get",
			registry.MetadataSchemas:   `[1,2`,
			registry.MetadataRoutes:    `{"Get": {"routes": [7]}}`,
		}},
		{Service: "bare", ID: "x"}, // no metadata at all
		{Service: "weird", ID: "w", Metadata: map[string]string{
			registry.MetadataEndpoints: "Do",
			registry.MetadataSchemas:   `{"Do": {"request": {"type": 5, "properties": {"a": {"$ref": "#/$defs/Loop"}}, "$defs": {"Loop": {"$ref": "#/$defs/Loop"}}}, "response": "nope"}}`,
		}},
	}
	d, err := dashboard.New(dashboard.Options{Catalog: cat, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ferrytest.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	hs := httptest.NewServer(d)
	t.Cleanup(hs.Close)
	ferrytest.Eventually(t, "the catalogue is in", func() bool {
		_, body := get(t, hs.URL+"/_ferry/")
		return strings.Contains(body, "broken")
	})
	for _, path := range []string{"/_ferry/", "/_ferry/services/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/Hello",
		"/_ferry/services/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/%3Cscript%3Ealert%281%29%3C%2Fscript%3E",
		"/_ferry/services/broken/Get", "/_ferry/services/weird/Do", "/_ferry/explorer", "/_ferry/explorer?endpoint=" + evil,
		"/_ferry/traces", "/_ferry/traces/" + evil, "/_ferry/api/catalog", "/_ferry/api/figures", "/_ferry/nowhere"} {
		resp, body := get(t, hs.URL+path)
		if resp.StatusCode >= 500 {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") || strings.Contains(body, `href="javascript:`) {
			t.Errorf("GET %s: unescaped markup in\n%s", path, body)
		}
	}
	_, body := get(t, hs.URL+"/_ferry/")
	wantAll(t, "hostile catalogue", body, "&lt;script&gt;alert(1)&lt;/script&gt;", "ferry.routes is not valid JSON",
		"ferry.schemas is not valid JSON", `data-testid="service-bare"`, "does not list its endpoints")
	_, body = get(t, hs.URL+"/_ferry/services/weird/Do")
	wantAll(t, "weird schema page", body, `data-testid="schema-request"`, "Raw JSON Schema")
	_, body = get(t, hs.URL+"/_ferry/traces")
	wantAll(t, "traces without a store", body, `data-testid="tracing-off"`, "tracing off")
	if resp, body := get(t, hs.URL+"/_ferry/api/traces"); resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("api/traces without a store = %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// With Gateway an URL, the explorer posts to the dashboard, which forwards
// to that gateway: the page stays same-origin.
func TestExplorerThroughProxy(t *testing.T) {
	st := startStack(t)
	d, err := dashboard.New(dashboard.Options{Catalog: st.Registry, Gateway: st.URL, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ferrytest.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	hs := httptest.NewServer(d)
	t.Cleanup(hs.Close)
	ferrytest.Eventually(t, "the explorer posts to the proxy", func() bool {
		_, body := get(t, hs.URL+"/_ferry/services/greeter/Hello")
		return strings.Contains(body, `data-call-url="/_ferry/call/greeter/Hello"`) && strings.Contains(body, st.URL+"/greeter/Hello")
	})
	resp, body := post(t, hs.URL+"/_ferry/call/greeter/Hello", `{"name":"proxy"}`)
	if resp.StatusCode != 200 || !strings.Contains(body, "Hello, proxy!") {
		t.Errorf("POST call/greeter/Hello = %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, hs.URL+"/_ferry/call/greeter/Hello", `{"name":""}`)
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, "invalid_argument") {
		t.Errorf("POST call/greeter/Hello with no name = %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

func TestNewRefuses(t *testing.T) {
	reg := regmemory.New()
	for _, o := range []dashboard.Options{
		{},
		{Catalog: reg, Prefix: "_ferry"},
		{Catalog: reg, Gateway: "ftp://x"},
		{Catalog: reg, Gateway: "localhost:8080"},
	} {
		if _, err := dashboard.New(o); err == nil {
			t.Errorf("New(%+v) = nil error", o)
		}
	}
}

// Without a trace store, latency is the $SRV.STATS average, and the pages
// say tracing is off.
func TestFiguresWithoutTraces(t *testing.T) {
	st := startStack(t, func(o *dashboard.Options) { o.Traces = nil })
	for range 2 {
		post(t, st.URL+"/greeter/Hello", `{"name":"Ada"}`)
	}
	var h dashboard.EndpointFigures
	ferrytest.Eventually(t, "the STATS figures count the calls", func() bool {
		h = endpointFigures(figuresOf(t, st.URL), "greeter", "Hello")
		return h.TotalCalls == 2
	})
	if h.LatencySource != "stats" || h.AvgMs == nil || h.P50Ms != nil || h.P99Ms != nil || h.Spans != 0 {
		t.Errorf("figures without traces = %+v", h)
	}
	_, body := get(t, st.URL+"/_ferry/services/greeter/Hello")
	wantAll(t, "Hello page without traces", body, "tracing off", "the average processing time from $SRV.STATS")
}

// failing is a catalogue that gives its instances once, then fails.
type failing struct{ catalog }

func (c failing) WatchAll(ctx context.Context) (registry.Watcher, error) {
	w, _ := c.catalog.WatchAll(ctx)
	return &failingWatcher{w.(*fixedWatcher)}, nil
}

type failingWatcher struct{ *fixedWatcher }

func (w *failingWatcher) Next(ctx context.Context) ([]registry.Instance, error) {
	if !w.sent {
		return w.fixedWatcher.Next(ctx)
	}
	select {
	case <-w.stop:
		return nil, registry.ErrWatcherStopped
	default:
		return nil, errors.New("registry unreachable")
	}
}

// A failing registry keeps the services last known on the page, with a
// banner saying so.
func TestRegistryFailing(t *testing.T) {
	cat := failing{catalog{{Service: "greeter", ID: "g1", Metadata: map[string]string{registry.MetadataEndpoints: "Hello"}}}}
	d, err := dashboard.New(dashboard.Options{Catalog: cat, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ferrytest.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	hs := httptest.NewServer(d)
	t.Cleanup(hs.Close)
	ferrytest.Eventually(t, "the page says the registry is failing", func() bool {
		_, body := get(t, hs.URL+"/_ferry/")
		return strings.Contains(body, "registry: failing") && strings.Contains(body, "registry unreachable") &&
			strings.Contains(body, `data-testid="service-greeter"`)
	})
	var c dashboard.Catalog
	_, body := get(t, hs.URL+"/_ferry/api/catalog")
	if err := json.Unmarshal([]byte(body), &c); err != nil || c.RegistryError != "registry unreachable" || len(c.Services) != 1 {
		t.Errorf("api/catalog = %s (%v)", body, err)
	}
}
