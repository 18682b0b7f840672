//go:build unix

// Package examples_test checks that the README tells the truth: every
// console block in README.md is run as written, against the examples
// started as a newcomer starts them, and must print what the README shows.
package examples_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-go/ferry/ferrytest"
)

// The README's conventions, which this test reads:
//
//   - a ```console block is a terminal session: "$ " starts a command (run
//     with bash from the repository root), the lines up to the next
//     command are what it prints (stdout and stderr), "…" standing for any
//     text; trace IDs (32 hex digits) and NUIDs (22 letters and digits)
//     match any other of their kind;
//   - an HTML comment "<!-- readme-test: with `CMD` once "TEXT" -->" before
//     a block starts CMD (an example) first, waits until it logs TEXT, and
//     stops it with SIGINT after the block, which it must survive cleanly;
//   - a command whose comment says "until Ctrl-C" is a server: its lines
//     must appear in its log, then it gets SIGINT and must exit 0;
//   - a command whose comment says "a moment later" is retried until it
//     prints what the README shows (it reads the effect of an earlier one);
//   - a command needing a tool that is not installed (grpcurl, nats) is
//     skipped, and the test says so.
//
// "go run ./examples/X" and "go build -o NAME ./examples/X" build with
// this test binary's build flags into a temporary directory, so they reuse
// the packages already compiled for the tests; "./NAME" runs what was
// built.

var (
	markerRE     = regexp.MustCompile("^<!-- readme-test: with `([^`]+)` once \"([^\"]+)\" -->$")
	goRunRE      = regexp.MustCompile(`\bgo run (\./examples/[a-z]+)`)
	goBuildRE    = regexp.MustCompile(`\bgo build -o ([a-z]+) (\./examples/[a-z]+)`)
	localBinRE   = regexp.MustCompile(`(^|[\s;&|])\./([a-z]+)\b`)
	hexIDRE      = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	nuidRE       = regexp.MustCompile(`\b[0-9A-Za-z]{22}\b`)
	assignmentRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=\S*$`)
)

type block struct {
	line        int    // README line of the opening fence
	with, ready string // server to run during the block, and its ready text
	cmds        []*command
}

type command struct {
	line int
	text string   // as written, without "$ "
	want []string // what it prints
}

func (c *command) comment() string {
	if i := strings.Index(c.text, " # "); i >= 0 {
		return c.text[i+3:]
	}
	return ""
}

func parseREADME(src []byte) ([]*block, error) {
	var (
		blocks []*block
		cur    *block
		with   []string
	)
	for i, line := range strings.Split(string(src), "\n") {
		n := i + 1
		switch {
		case cur == nil && markerRE.MatchString(line):
			with = markerRE.FindStringSubmatch(line)[1:]
		case cur == nil && line == "```console":
			cur = &block{line: n}
			if with != nil {
				cur.with, cur.ready = with[0], with[1]
				with = nil
			}
		case cur == nil && strings.HasPrefix(line, "<!-- readme-test"):
			return nil, fmt.Errorf("README.md:%d: malformed readme-test marker %q", n, line)
		case cur == nil:
		case line == "```":
			blocks = append(blocks, cur)
			cur = nil
		case strings.HasPrefix(line, "$ "):
			cur.cmds = append(cur.cmds, &command{line: n, text: strings.TrimPrefix(line, "$ ")})
		case len(cur.cmds) == 0:
			return nil, fmt.Errorf("README.md:%d: console block output before any command", n)
		default:
			c := cur.cmds[len(cur.cmds)-1]
			c.want = append(c.want, line)
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("README.md:%d: console block not closed", cur.line)
	}
	return blocks, nil
}

// normalize blanks out what differs from run to run.
func normalize(s string) string {
	return nuidRE.ReplaceAllString(hexIDRE.ReplaceAllString(s, "<trace-id>"), "<nuid>")
}

// lineMatcher compiles an expected line: "…" matches any text.
func lineMatcher(want string) *regexp.Regexp {
	parts := strings.Split(normalize(want), "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

// match reports whether got's lines are exactly want's.
func match(want []string, got string) bool {
	lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	if got == "" {
		lines = nil
	}
	for len(want) > 0 && want[len(want)-1] == "" {
		want = want[:len(want)-1]
	}
	if len(lines) != len(want) {
		return false
	}
	for i, w := range want {
		if !lineMatcher(w).MatchString(normalize(lines[i])) {
			return false
		}
	}
	return true
}

// contains reports whether every one of want's lines matches some line of
// got, in order.
func contains(want []string, got string) bool {
	lines := strings.Split(got, "\n")
	for _, w := range want {
		if w == "" {
			continue
		}
		re := lineMatcher(w)
		for {
			if len(lines) == 0 {
				return false
			}
			l := lines[0]
			lines = lines[1:]
			if re.MatchString(normalize(l)) {
				break
			}
		}
	}
	return true
}

func TestParseREADME(t *testing.T) {
	src := "text\n<!-- readme-test: with `go run ./examples/greeter` once \"ferry: started\" -->\n\n```console\n$ curl -s x # a moment later\n{\"a\":1}\n\n$ true\n```\n```console\n$ false\n```\n"
	blocks, err := parseREADME([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 || blocks[0].with != "go run ./examples/greeter" || blocks[0].ready != "ferry: started" || blocks[1].with != "" {
		t.Fatalf("blocks = %+v", blocks)
	}
	c := blocks[0].cmds
	if len(c) != 2 || c[0].text != "curl -s x # a moment later" || c[0].comment() != "a moment later" || len(c[0].want) != 2 || c[0].line != 5 {
		t.Fatalf("commands = %+v", c)
	}
	for _, bad := range []string{"```console\noutput first\n```\n", "```console\n$ x\n", "<!-- readme-test: with x -->\n"} {
		if _, err := parseREADME([]byte(bad)); err == nil {
			t.Errorf("parseREADME(%q) = nil error", bad)
		}
	}
	for _, tc := range []struct {
		want []string
		got  string
		ok   bool
	}{
		{[]string{`{"id":"o-PUd00uvj3atuIfHYVAVLHZ"}`}, `{"id":"o-AAAAAAAAAAAAAAAAAAAAAA"}` + "\n", true},
		{[]string{`trace 48b12bee5e6983c72106bc92e033df51`}, "trace 0123456789abcdef0123456789abcdef", true},
		{[]string{`a … c`}, "a b b c\n", true},
		{[]string{`a … c`}, "a b b d\n", false},
		{[]string{"x", ""}, "x\n", true},
		{nil, "", true},
		{nil, "unexpected\n", false},
		{[]string{"x"}, "x\ny\n", false},
	} {
		if got := match(tc.want, tc.got); got != tc.ok {
			t.Errorf("match(%q, %q) = %v, want %v", tc.want, tc.got, got, tc.ok)
		}
	}
	if !contains([]string{"b", "d"}, "a\nb\nc\nd\n") || contains([]string{"d", "b"}, "a\nb\nc\nd\n") {
		t.Error("contains: wrong order handling")
	}
}

// TestREADME runs README.md's console blocks.
func TestREADME(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the examples")
	}
	for _, tool := range []string{"bash", "curl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README's commands need %s, which is not installed", tool)
		}
	}
	// The examples' own ports, as the README's table gives them.
	for _, port := range []int{8080, 9090, 4222, 8081, 4223, 8082, 9092, 9465, 8083, 9093, 4224, 9466} {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			t.Skipf("port %d is taken (is an example running?): the README's commands need the examples' ports: %v", port, err)
		}
		l.Close()
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseREADME(src)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{t: t, root: root, bin: t.TempDir(), ctx: ferrytest.Context(t), built: map[string]string{}}
	for _, b := range blocks {
		t.Run(fmt.Sprintf("README.md:%d", b.line), func(t *testing.T) { r.block(t, b) })
	}
}

type runner struct {
	t     *testing.T
	root  string
	bin   string
	ctx   context.Context
	built map[string]string // ./examples/X or NAME → binary
}

// build compiles pkg into the runner's directory as name.
func (r *runner) build(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, ok := r.built[pkg+" "+name]; ok {
		return p
	}
	out := filepath.Join(r.bin, name)
	args := append(append([]string{"build"}, ferrytest.BuildFlags...), "-o", out, pkg)
	cmd := exec.CommandContext(r.ctx, "go", args...)
	cmd.Dir = r.root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	r.built[pkg+" "+name] = out
	r.built[name] = out
	return out
}

// rewrite turns a README command into what runs here, or returns a reason
// to skip it.
func (r *runner) rewrite(t *testing.T, text string) (string, string) {
	t.Helper()
	for _, m := range goRunRE.FindAllStringSubmatch(text, -1) {
		text = strings.Replace(text, m[0], r.build(t, filepath.Base(m[1]), m[1]), 1)
	}
	if m := goBuildRE.FindStringSubmatch(text); m != nil {
		r.build(t, m[1], m[2])
		return "true", "" // built; the build itself printed nothing
	}
	text = localBinRE.ReplaceAllStringFunc(text, func(s string) string {
		m := localBinRE.FindStringSubmatch(s)
		if p, ok := r.built[m[2]]; ok {
			return m[1] + p
		}
		return s
	})
	fields := strings.Fields(text)
	for len(fields) > 0 && assignmentRE.MatchString(fields[0]) {
		fields = fields[1:]
	}
	if len(fields) > 0 {
		if tool := fields[0]; tool == "grpcurl" || tool == "nats" {
			if _, err := exec.LookPath(tool); err != nil {
				return "", tool + " is not installed"
			}
		}
	}
	return text, ""
}

func (r *runner) block(t *testing.T, b *block) {
	if b.with != "" {
		text, skip := r.rewrite(t, b.with)
		if skip != "" {
			t.Fatalf("the block's server %q: %s", b.with, skip)
		}
		p := r.start(t, text)
		t.Cleanup(func() { p.interrupt(t, b.with) })
		p.waitFor(t, b.with, []string{"…" + b.ready + "…"})
	}
	for _, c := range b.cmds {
		text, skip := r.rewrite(t, c.text)
		if skip != "" {
			t.Logf("README.md:%d: skipped %q: %s", c.line, c.text, skip)
			continue
		}
		if strings.Contains(c.comment(), "until Ctrl-C") {
			p := r.start(t, text)
			p.waitFor(t, c.text, c.want)
			p.interrupt(t, c.text)
			continue
		}
		var got string
		run := func() bool {
			got = r.run(t, text)
			return match(c.want, got)
		}
		if strings.Contains(c.comment(), "a moment later") {
			if err := ferrytest.Poll(r.ctx, run); err != nil {
				t.Errorf("README.md:%d: $ %s\nprinted:\n%s\nthe README shows:\n%s", c.line, c.text, got, strings.Join(c.want, "\n"))
			}
			continue
		}
		if !run() {
			t.Errorf("README.md:%d: $ %s\nprinted:\n%s\nthe README shows:\n%s", c.line, c.text, got, strings.Join(c.want, "\n"))
		}
	}
}

// run runs a command to completion and returns what it printed.
func (r *runner) run(t *testing.T, text string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, ferrytest.WaitBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", text)
	cmd.Dir = r.root
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("$ %s: still running after %v", text, ferrytest.WaitBound)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("$ %s: %v", text, err)
	}
	return string(out)
}

// proc is a server started by the test.
type proc struct {
	cmd  *exec.Cmd
	out  *ferrytest.Buffer
	done chan struct{}
	err  error
}

func (r *runner) start(t *testing.T, text string) *proc {
	t.Helper()
	p := &proc{out: new(ferrytest.Buffer), done: make(chan struct{})}
	p.cmd = exec.Command("bash", "-c", text)
	p.cmd.Dir = r.root
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // SIGINT to the group, as Ctrl-C does
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("$ %s: %v", text, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// waitFor waits until the server has logged every one of want's lines.
func (p *proc) waitFor(t *testing.T, what string, want []string) {
	t.Helper()
	exited := false
	err := ferrytest.Poll(ferrytest.Context(t), func() bool {
		select {
		case <-p.done:
			exited = true
			return true
		default:
		}
		return contains(want, p.out.String())
	})
	if exited || err != nil {
		t.Fatalf("$ %s: never logged what the README shows (exited: %v, %v)\nits log:\n%s\nthe README shows:\n%s", what, exited, err, p.out, strings.Join(want, "\n"))
	}
}

// interrupt sends SIGINT, as Ctrl-C does, and expects a clean exit.
func (p *proc) interrupt(t *testing.T, what string) {
	t.Helper()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(ferrytest.WaitBound):
		t.Fatalf("$ %s: still running %v after SIGINT\nits log:\n%s", what, ferrytest.WaitBound, p.out)
	}
	if p.err != nil {
		t.Errorf("$ %s: exited with %v after SIGINT, want a clean exit\nits log:\n%s", what, p.err, tail(p.out.String(), 40))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
