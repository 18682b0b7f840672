package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/internal/browser"
)

// exampleEndpoints are the endpoints the examples serve (examples/*/main.go),
// by the dashboard's test id; billing (events) only subscribes, so it has no
// endpoint to list.
var exampleEndpoints = []string{
	"endpoint-greeter-Hello", "endpoint-orders-Place", "endpoint-hello-Hello",
	"endpoint-frontend-Hello", "endpoint-middle-Relay", "endpoint-backend-Greet",
}

// TestDev runs `ferry dev` on examples/ as a developer would: every example
// is built and started on the dev NATS; the gateway answers greeter's
// Hello (and its error) with a trace of gateway and greeter spans in the
// dashboard's store; / sends a browser to the dashboard. The browser
// subtest then drives the dashboard in headless Chromium. Ctrl-C (the
// context ending) stops every service.
func TestDev(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the four examples")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut ferrytest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, "../../examples", devOptions{addr: "127.0.0.1:0", natsPort: 0, otlpAddr: "127.0.0.1:0",
			noWatch: true, grace: 5 * time.Second}, &out, &errOut)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ferry dev = %v\nstderr:\n%s", err, errOut.String())
			}
		case <-time.After(ferrytest.WaitBound):
			t.Fatalf("ferry dev did not stop within %v:\n%s", ferrytest.WaitBound, out.String())
		}
	}
	defer stop()

	dashRE := regexp.MustCompile(`dashboard  (http://\S+)/_ferry/`)
	var base string
	ferrytest.Eventually(t, "the banner", func() bool {
		select {
		case err := <-done:
			t.Fatalf("ferry dev ended: %v\n%s\n%s", err, out.String(), errOut.String())
		default:
		}
		m := dashRE.FindStringSubmatch(out.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})

	// Every example up and routed: each endpoint on the catalogue page.
	var page string
	waitLong(t, "every example endpoint in the catalogue", func() bool {
		_, page = get(t, base+"/_ferry/", "")
		for _, id := range exampleEndpoints {
			if !strings.Contains(page, `data-testid="`+id+`"`) {
				return false
			}
		}
		return true
	}, func() string { return page + "\n" + out.String() })

	// greeter's Hello through the gateway, and its error.
	resp, body := post(t, base+"/greeter/Hello", `{"name": "Dev"}`)
	if resp.StatusCode != 200 || !strings.Contains(body, "Hello, Dev!") {
		t.Fatalf("greeter Hello through ferry dev's gateway = %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, base+"/greeter/Hello", `{"name": ""}`)
	if resp.StatusCode != 400 || !strings.Contains(body, `"code":"invalid_argument"`) {
		t.Errorf("greeter Hello without a name = %d %s, want 400 invalid_argument", resp.StatusCode, body)
	}
	// Over each of greeter's transports: NATS discovery ($SRV.INFO) alone
	// tells the gateway greeter's HTTP and gRPC addresses too.
	for _, tr := range []string{"nats", "http", "grpc"} {
		req, _ := http.NewRequest(http.MethodPost, base+"/greeter/Hello", strings.NewReader(`{"name": "`+tr+`"}`))
		req.Header.Set("Ferry-Transport", tr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "Hello, "+tr+"!") {
			t.Errorf("greeter Hello pinned to %s = %d %s", tr, resp.StatusCode, b)
		}
	}
	for _, tag := range []string{`class="tag t-http"`, `class="tag t-grpc"`} {
		if _, page = get(t, base+"/_ferry/", ""); !strings.Contains(page, tag) {
			t.Errorf("the catalogue lists no %s instance", tag)
		}
	}
	// Its trace, from the gateway and from the greeter process.
	waitLong(t, "a trace of gateway and greeter spans", func() bool {
		_, body = get(t, base+"/_ferry/api/traces", "")
		var list struct {
			Traces []struct {
				Root     string   `json:"root"`
				Services []string `json:"services"`
			} `json:"traces"`
		}
		_ = json.Unmarshal([]byte(body), &list)
		for _, tr := range list.Traces {
			if tr.Root == "POST /greeter/Hello" && slices.Contains(tr.Services, "gateway") && slices.Contains(tr.Services, "greeter") {
				return true
			}
		}
		return false
	}, func() string { return body })
	// A browser opening / lands on the dashboard; other clients get the
	// gateway's answer.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if r, err := noFollow.Do(req); err != nil || r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/_ferry/" {
		t.Errorf("GET / from a browser = %v %v, want 302 to /_ferry/", r, err)
	} else {
		r.Body.Close()
	}

	t.Run("browser", func(t *testing.T) { devBrowser(t, base) })

	stop()
	for _, svc := range []string{"greeter", "events", "tracing", "config"} {
		if !regexp.MustCompile(`(?m)^` + svc + ` +\| stopped$`).MatchString(out.String()) {
			t.Errorf("%s was not stopped:\n%s", svc, out.String())
		}
	}
}

// waitLong is ferrytest.Eventually with what to show when it fails.
func waitLong(t *testing.T, what string, cond func() bool, show func() string) {
	t.Helper()
	ok := false
	deadline := time.Now().Add(3 * ferrytest.WaitBound)
	for time.Now().Before(deadline) {
		if ok = cond(); ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s:\n%s", what, show())
}

func get(t *testing.T, url, accept string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func post(t *testing.T, url, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// devBrowser: in headless Chromium, the catalogue lists every example
// service and endpoint; the explorer calls greeter Hello and shows the
// reply; a failing call shows its error; the call's trace shows spans of
// the gateway and of greeter. Screenshots are artefacts (internal/browser;
// docs/dashboard.png is the first).
func devBrowser(t *testing.T, base string) {
	b := browser.Start(t, 3*time.Minute)
	ctx := b.Ctx
	do, text, waitFor := b.Do, b.Text, b.WaitFor
	ready := func() { t.Helper(); waitFor("the page's script", `document.body.dataset.ready === "true"`) }

	// The catalogue, reached from / as a developer types it.
	do("open the dashboard", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/"), chromedp.WaitVisible(browser.TestID("service-greeter")))
	for _, svc := range []string{"greeter", "orders", "hello", "frontend", "middle", "backend"} {
		do("see service "+svc, chromedp.WaitVisible(browser.TestID("service-"+svc)))
	}
	for _, id := range exampleEndpoints {
		do("see "+id, chromedp.WaitVisible(browser.TestID(id)))
	}
	b.Screenshot("catalogue")

	// greeter.Hello in the explorer, its body pre-filled from the schema.
	do("open greeter.Hello", chromedp.Click(browser.TestID("endpoint-greeter-Hello")), chromedp.WaitVisible(browser.TestID("explorer-request")))
	ready()
	do("send Hello", chromedp.SetValue(browser.TestID("explorer-request"), `{"name": "Browser"}`), chromedp.Click(browser.TestID("explorer-send")))
	waitFor("the reply", `document.querySelector('[data-testid="explorer-status"]').textContent.startsWith("200")`)
	if got := text("explorer-body"); !strings.Contains(got, "Hello, Browser!") {
		t.Errorf("explorer body = %q", got)
	}
	traceID, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="explorer-trace"]').dataset.traceId`))
	if err != nil || len(traceID) != 32 {
		t.Fatalf("trace link: %q %v", traceID, err)
	}
	b.Screenshot("explorer-reply")

	// A failing call shows its problem.
	do("send an empty name", chromedp.SetValue(browser.TestID("explorer-request"), `{"name": ""}`), chromedp.Click(browser.TestID("explorer-send")))
	waitFor("the error", `document.querySelector('[data-testid="explorer-status"]').textContent.startsWith("400")`)
	do("see the problem", chromedp.WaitVisible(browser.TestID("explorer-error")))
	if got := text("explorer-error"); !strings.Contains(got, "invalid_argument") {
		t.Errorf("explorer error = %q", got)
	}
	b.Screenshot("explorer-error")

	// The first call's trace: spans of the gateway and of greeter.
	row := `[data-testid="trace-row"][data-trace-id="` + traceID + `"]`
	do("open the traces", chromedp.Click(browser.TestID("nav-traces")), chromedp.WaitVisible(chromedp.CSS(row)))
	do("open the trace", chromedp.Click(chromedp.CSS(row+" a")), chromedp.WaitVisible(browser.TestID("waterfall")),
		chromedp.WaitVisible(browser.TestID("span-gateway")), chromedp.WaitVisible(browser.TestID("span-greeter")))
	b.Screenshot("trace")

	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("the pages reported errors:\n%s", strings.Join(errs, "\n"))
	}
}
