package dashboard_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ferry-go/ferry/internal/browser"
)

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
	do, text, waitFor := b.Do, b.Text, b.WaitFor

	// ready waits for the page's script to have run: call it once an
	// element only the new page has is visible.
	ready := func() {
		t.Helper()
		waitFor("the page's script", `document.body.dataset.ready === "true"`)
	}

	// The catalogue.
	do("load the catalogue", chromedp.Navigate(st.URL+"/_ferry/"), chromedp.WaitVisible(browser.TestID("service-greeter")),
		chromedp.WaitVisible(browser.TestID("endpoint-greeter-Hello")), chromedp.WaitVisible(browser.TestID("endpoint-greeter-Fail")))
	b.Screenshot("catalogue")

	// The endpoint page.
	do("open greeter.Hello", chromedp.Click(browser.TestID("endpoint-greeter-Hello")), chromedp.WaitVisible(browser.TestID("endpoint-title")),
		chromedp.WaitVisible(browser.TestID("field-name")))
	ready()
	if got := text("endpoint-title"); !strings.Contains(got, "greeter.Hello") {
		t.Errorf("endpoint title = %q", got)
	}
	if got := text("field-name"); !strings.Contains(got, "required,max=100") {
		t.Errorf("field row = %q, want the validator rules", got)
	}

	// The explorer: a call over NATS through the gateway.
	do("send Hello", chromedp.SetValue(browser.TestID("explorer-request"), `{"name": "Browser"}`),
		chromedp.SetValue(browser.TestID("explorer-transport"), "nats"), chromedp.Click(browser.TestID("explorer-send")))
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
	do("send an empty name", chromedp.SetValue(browser.TestID("explorer-request"), `{"name": ""}`), chromedp.Click(browser.TestID("explorer-send")))
	waitFor("the error", `document.querySelector('[data-testid="explorer-status"]').textContent.startsWith("400")`)
	do("see the problem", chromedp.WaitVisible(browser.TestID("explorer-error")))
	if got := text("explorer-error"); !strings.Contains(got, "invalid_argument") || !strings.Contains(got, "name is required") {
		t.Errorf("explorer error = %q", got)
	}
	b.Screenshot("explorer-error")

	// The catalogue's live figures: a rate from $SRV.STATS, p50 from the
	// spans of the last minute (the window's counts depend on timing, which
	// api/figures' own test checks).
	do("back to the catalogue", chromedp.Click(browser.TestID("nav-catalog")), chromedp.WaitVisible(browser.TestID("service-greeter")))
	waitFor("live figures in the catalogue", `(function () {
		const row = document.querySelector('[data-fig-key="greeter/Hello"]');
		return row.querySelector('[data-fig="calls_per_s"]').textContent !== "–" && row.querySelector('[data-fig="p50_ms"]').textContent !== "–";
	})()`)
	b.Screenshot("catalogue-live")

	// The explorer page, with its picker (it opens on the first endpoint,
	// Fail; the page for Hello is a new document).
	do("open the explorer", chromedp.Click(browser.TestID("nav-explorer")), chromedp.WaitVisible(browser.TestID("explorer-endpoint")))
	ready()
	// Choosing an endpoint opens its page (the script submits the picker).
	do("pick Hello", chromedp.SetValue(browser.TestID("explorer-endpoint"), "greeter/Hello"),
		chromedp.WaitVisible(chromedp.CSS(`[data-call-url="/greeter/Hello"]`)))
	ready()
	do("send Hello from the explorer page", chromedp.SetValue(browser.TestID("explorer-request"), `{"name": "picker"}`),
		chromedp.SetValue(browser.TestID("explorer-transport"), "http"), chromedp.Click(browser.TestID("explorer-send")))
	waitFor("the reply on the explorer page", `document.querySelector('[data-testid="explorer-status"]').textContent.startsWith("200")`)
	if got := text("explorer-body"); !strings.Contains(got, "Hello, picker!") {
		t.Errorf("explorer page body = %q", got)
	}
	b.Screenshot("explorer-page")

	// The trace of the first call: in the list (refreshed live), then its
	// waterfall with spans of the gateway and of the greeter.
	row := `[data-testid="trace-row"][data-trace-id="` + traceID + `"]`
	do("open the traces", chromedp.Click(browser.TestID("nav-traces")), chromedp.WaitVisible(chromedp.CSS(row)))
	b.Screenshot("traces")
	do("open the trace", chromedp.Click(chromedp.CSS(row+" a")), chromedp.WaitVisible(browser.TestID("waterfall")),
		chromedp.WaitVisible(browser.TestID("span-gateway")), chromedp.WaitVisible(browser.TestID("span-greeter")))
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
