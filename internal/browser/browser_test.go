package browser

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A Chromium that fails to start once (as a zygote that cannot fork does
// on a busy machine) is started again, and the failure logged.
func TestStartRetriesAFailedLaunch(t *testing.T) {
	real, ok := Path()
	if !ok {
		t.Skip(SkipMessage)
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "failed-once")
	script := filepath.Join(dir, "chromium")
	body := "#!/bin/sh\n" +
		"if [ ! -e '" + marker + "' ]; then touch '" + marker + "'; echo 'Zygote could not fork' >&2; exit 1; fi\n" +
		"exec '" + real + "' \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRY_CHROMIUM", script)
	rec := &recorder{TB: t}
	b := Start(rec, 2*time.Minute)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the first launch did not run: %v", err)
	}
	if !strings.Contains(strings.Join(rec.logs, "\n"), "attempt 1 of 3") {
		t.Fatalf("the failed attempt was not logged: %q", rec.logs)
	}
	b.Do("load a page", chromedp.Navigate("data:text/html,<p data-testid=x>ok</p>"))
	if got := b.Text("x"); got != "ok" {
		t.Fatalf("page text = %q, want ok", got)
	}
}

type recorder struct {
	testing.TB
	logs []string
}

func (r *recorder) Logf(format string, args ...any) {
	r.TB.Helper()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
	r.TB.Logf(format, args...)
}
