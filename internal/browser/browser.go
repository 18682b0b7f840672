// Package browser starts headless Chromium for Ferry's browser tests,
// driven from Go with chromedp: finding the binary (or skipping the test
// with a message that says how to install it), launching it with settings
// that work as root and in containers, collecting the page's console
// errors, and writing screenshots as test artefacts.
//
// The binary is $FERRY_CHROMIUM when set, else the first of chromium,
// chromium-browser, google-chrome, google-chrome-stable and headless-shell
// on PATH. scripts/install-chromium installs Debian's chromium; .ci/run
// calls it.
//
// Screenshots go to $FERRY_ARTIFACTS/<test name>/ when FERRY_ARTIFACTS is
// set (CI keeps that directory), else to a temporary directory of the test,
// removed with it; the path of each is logged.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Candidates are the binary names Path looks for on PATH, in order.
var candidates = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}

// Path returns the Chromium binary to use: $FERRY_CHROMIUM, else the first
// candidate found on PATH; false if there is none.
func Path() (string, bool) {
	if p := os.Getenv("FERRY_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
		return "", false
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p, true
		}
	}
	return "", false
}

// SkipMessage is what a test says when it skips for lack of Chromium.
const SkipMessage = "no Chromium binary found (looked for $FERRY_CHROMIUM, then chromium, chromium-browser, google-chrome, headless-shell on PATH): run scripts/install-chromium (Debian: apt-get install chromium) to run the browser tests"

// Browser is one headless Chromium with one tab, for one test.
type Browser struct {
	// Ctx is the chromedp context of the tab: pass it to chromedp.Do and
	// chromedp.Run. It ends at the test's end, or after the timeout given
	// to Start.
	Ctx context.Context

	t       testing.TB
	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	shots   int
	dir     string
}

// Start launches headless Chromium for the rest of the test, or skips the
// test when there is none (SkipMessage). timeout bounds everything the test
// does with it; the browser is stopped, and waited for, at the test's end.
func Start(t testing.TB, timeout time.Duration) *Browser {
	t.Helper()
	path, ok := Path()
	if !ok {
		t.Skip(SkipMessage)
	}
	// A launch can fail for reasons of the machine, not of the test: on a
	// busy CI box Chromium's zygote has been seen failing to fork its GPU
	// process ("Zygote could not fork"). Such a start is tried again, a
	// bounded number of times, each failure logged.
	const attempts = 3
	var (
		ctx     context.Context
		cleanup func()
		err     error
	)
	for i := 1; i <= attempts; i++ {
		ctx, cleanup, err = launch(path, timeout)
		if err == nil {
			break
		}
		if i < attempts {
			t.Logf("browser: start %s (attempt %d of %d): %v", path, i, attempts, err)
		}
	}
	if err != nil {
		t.Fatalf("browser: start %s: %v", path, err)
	}
	b := &Browser{Ctx: ctx, t: t}
	var wg sync.WaitGroup
	wg.Go(func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		cleanup()
		wg.Wait()
	})
	return b
}

// launch starts one headless Chromium with one tab; cleanup stops it and
// waits for its process to end.
func launch(path string, timeout time.Duration) (ctx context.Context, cleanup func(), err error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // root in a container has no user namespace sandbox
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-component-update", true), // the network is closed: no background fetches
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 900),
	)
	// The timeout bounds the allocator's context: chromedp says not to put
	// a deadline on the first Run's context alone, as it stops the browser.
	base, cancelBase := context.WithTimeout(context.Background(), timeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	cleanup = func() {
		cancelTab()
		cancelAlloc() // waits for the browser process to end
		cancelBase()
	}
	if err := chromedp.Do(ctx); err != nil { // start the browser now
		cleanup()
		return nil, nil, err
	}
	return ctx, cleanup, nil
}

// Errors returns the console errors and uncaught exceptions the pages
// have reported so far — Content-Security-Policy violations among them —
// but not the browser's network log ("Failed to load resource: … 400"),
// which a test of error answers causes on purpose.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if (m.Type == chromedp.ConsoleError && m.Source != "network") || m.IsException() {
			out = append(out, m.String())
		}
	}
	return out
}

// Dir is where the test's artefacts go: $FERRY_ARTIFACTS/<test name> when
// FERRY_ARTIFACTS is set, else a temporary directory of the test.
func Dir(t testing.TB) string {
	t.Helper()
	root := os.Getenv("FERRY_ARTIFACTS")
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, unsafeChars.ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browser: artefacts: %v", err)
	}
	return dir
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot writes a PNG of the whole page as name.png (numbered in the
// order taken: 01-name.png) into Dir, and logs its path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	b.mu.Lock()
	b.shots++
	n := b.shots
	if b.dir == "" {
		b.dir = Dir(b.t)
	}
	dir := b.dir
	b.mu.Unlock()
	path := filepath.Join(dir, fmt.Sprintf("%02d-%s.png", n, unsafeChars.ReplaceAllString(name, "_")))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	b.t.Logf("browser: screenshot %s", path)
	return path
}

// TestID is the CSS selector of the element whose data-testid is id.
func TestID(id string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + id + `"]`) }

// Do runs steps in the tab and fails the test, naming what, if one fails.
func (b *Browser) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Text is the text content of the element whose data-testid is id.
func (b *Browser) Text(id string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.TextContent(TestID(id)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", id, err)
	}
	return s
}

// WaitFor polls a JavaScript predicate every 50 ms (the page's own
// timing, never a sleep) and fails the test, naming what, if it is not
// true within 90 s, well inside a browser timeout of a few minutes.
func (b *Browser) WaitFor(what, predicate string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.Ctx, chromedp.Poll[bool](predicate, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		b.t.Fatalf("waiting for %s: %v", what, err)
	}
}
