package dashboard_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ferry-go/ferry/internal/browser"
)

// sel is the CSS selector of a data-testid.
func sel(id string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + id + `"]`) }

// TestBrowser drives the dashboard in headless Chromium as a developer
// would: the catalogue lists the greeter, its endpoint page shows the
// schema and live figures, the explorer calls Hello through the real
// gateway over NATS and shows the reply, a failing call shows its
// problem, and the call's trace appears with spans of the gateway and the
// greeter. Screenshots are written as artefacts (see internal/browser).
func TestBrowser(t *testing.T) {
	b := browser.Start(t, 2*time.Minute)
	st := startStack(t)
	ctx := b.Ctx
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(sel(id)))
		if err != nil {
			t.Fatalf("text of %s: %v", id, err)
		}
		return s
	}
	// waitFor polls a JavaScript predicate (the page's own timing, never a
	// sleep); chromedp's poll gives up after its timeout, well inside the
	// browser's.
	waitFor := func(what, predicate string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}

	// ready waits for the page's script to have run: call it once an
	// element only the new page has is visible.
	ready := func() {
		t.Helper()
		waitFor("the page's script", `document.body.dataset.ready === "true"`)
	}

	// The catalogue.
	do("load the catalogue", chromedp.Navigate(st.URL+"/_ferry/"), chromedp.WaitVisible(sel("service-greeter")),
		chromedp.WaitVisible(sel("endpoint-greeter-Hello")), chromedp.WaitVisible(sel("endpoint-greeter-Fail")))
	b.Screenshot("catalogue")

	// The endpoint page.
	do("open greeter.Hello", chromedp.Click(sel("endpoint-greeter-Hello")), chromedp.WaitVisible(sel("endpoint-title")),
		chromedp.WaitVisible(sel("field-name")))
	ready()
	if got := text("endpoint-title"); !strings.Contains(got, "greeter.Hello") {
		t.Errorf("endpoint title = %q", got)
	}
	if got := text("field-name"); !strings.Contains(got, "required,max=100") {
		t.Errorf("field row = %q, want the validator rules", got)
	}

	// The explorer: a call over NATS through the gateway.
	do("send Hello", chromedp.SetValue(sel("explorer-request"), `{"name": "Browser"}`),
		chromedp.SetValue(sel("explorer-transport"), "nats"), chromedp.Click(sel("explorer-send")))
	waitFor("the reply", `document.querySelector('[data-testid="explorer-status"]').textContent.startsWith("200")`)
	if got := text("explorer-body"); !strings.Contains(got, `"message": "Hello, Browser!"`) {
		t.Errorf("explorer body = %q", got)
	}
	traceID, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="explorer-trace"]').dataset.traceId`))
	if err != nil || len(traceID) != 32 {
		t.Fatalf("trace link: %q %v", traceID, err)
	}
	// The live figures count the call (the page polls api/figures).
	waitFor("the live figures", `document.querySelector('[data-testid="fig-total"]').textContent === "1"`)
	b.Screenshot("explorer-reply")

	// A failing call shows its problem+json.
	do("send an empty name", chromedp.SetValue(sel("explorer-request"), `{"name": ""}`), chromedp.Click(sel("explorer-send")))
	waitFor("the error", `document.querySelector('[data-testid="explorer-status"]').textContent.startsWith("400")`)
	do("see the problem", chromedp.WaitVisible(sel("explorer-error")))
	if got := text("explorer-error"); !strings.Contains(got, "invalid_argument") || !strings.Contains(got, "name is required") {
		t.Errorf("explorer error = %q", got)
	}
	b.Screenshot("explorer-error")

	// The catalogue's live figures: a rate from $SRV.STATS, p50 from the
	// spans of the last minute (the window's counts depend on timing, which
	// api/figures' own test checks).
	do("back to the catalogue", chromedp.Click(sel("nav-catalog")), chromedp.WaitVisible(sel("service-greeter")))
	waitFor("live figures in the catalogue", `(function () {
		const row = document.querySelector('[data-fig-key="greeter/Hello"]');
		return row.querySelector('[data-fig="calls_per_s"]').textContent !== "–" && row.querySelector('[data-fig="p50_ms"]').textContent !== "–";
	})()`)
	b.Screenshot("catalogue-live")

	// The explorer page, with its picker (it opens on the first endpoint,
	// Fail; the page for Hello is a new document).
	do("open the explorer", chromedp.Click(sel("nav-explorer")), chromedp.WaitVisible(sel("explorer-endpoint")))
	ready()
	// Choosing an endpoint opens its page (the script submits the picker).
	do("pick Hello", chromedp.SetValue(sel("explorer-endpoint"), "greeter/Hello"),
		chromedp.WaitVisible(chromedp.CSS(`[data-call-url="/greeter/Hello"]`)))
	ready()
	do("send Hello from the explorer page", chromedp.SetValue(sel("explorer-request"), `{"name": "picker"}`),
		chromedp.SetValue(sel("explorer-transport"), "http"), chromedp.Click(sel("explorer-send")))
	waitFor("the reply on the explorer page", `document.querySelector('[data-testid="explorer-status"]').textContent.startsWith("200")`)
	if got := text("explorer-body"); !strings.Contains(got, "Hello, picker!") {
		t.Errorf("explorer page body = %q", got)
	}
	b.Screenshot("explorer-page")

	// The trace of the first call: in the list (refreshed live), then its
	// waterfall with spans of the gateway and of the greeter.
	row := `[data-testid="trace-row"][data-trace-id="` + traceID + `"]`
	do("open the traces", chromedp.Click(sel("nav-traces")), chromedp.WaitVisible(chromedp.CSS(row)))
	b.Screenshot("traces")
	do("open the trace", chromedp.Click(chromedp.CSS(row+" a")), chromedp.WaitVisible(sel("waterfall")),
		chromedp.WaitVisible(sel("span-gateway")), chromedp.WaitVisible(sel("span-greeter")))
	do("open a greeter span", chromedp.Click(chromedp.CSS(`[data-testid="span-greeter"] > summary`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="span-greeter"] [data-testid="span-detail"]`)))
	if got := text("span-greeter"); !strings.Contains(got, "ferry.endpoint") || !strings.Contains(got, "greeter/Hello") {
		t.Errorf("greeter span details = %q", got)
	}
	b.Screenshot("trace")

	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("the pages reported errors (a CSP violation?):\n%s", strings.Join(errs, "\n"))
	}
}
