package workspace_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-go/ferry/dev/workspace"
	"github.com/ferry-go/ferry/ferrytest"
)

// syncBuffer is an io.Writer safe for concurrent use that records each
// Write separately.
type syncBuffer struct {
	mu     sync.Mutex
	writes [][]byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes = append(b.writes, bytes.Clone(p))
	return len(p), nil
}

func (b *syncBuffer) snapshot() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.writes)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(bytes.Join(b.writes, nil))
}

// events records a supervisor's events.
type events struct {
	mu  sync.Mutex
	all []workspace.Event
}

func (e *events) add(ev workspace.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) count(f func(workspace.Event) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if f(ev) {
			n++
		}
	}
	return n
}

// start starts a supervisor of ws and stops it when the test ends.
func start(t *testing.T, ws *workspace.Workspace, opts workspace.Options) *workspace.Supervisor {
	t.Helper()
	s, err := workspace.New(ws, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

func status(t *testing.T, s *workspace.Supervisor, name string) workspace.ServiceStatus {
	t.Helper()
	for _, st := range s.Status() {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no service %q in Status", name)
	return workspace.ServiceStatus{}
}

// logged reports whether the service logged a line containing text.
func logged(s *workspace.Supervisor, name, text string) bool {
	for _, l := range s.Logs(name) {
		if strings.Contains(l.Text, text) {
			return true
		}
	}
	return false
}

// alive reports whether pid is a live process (a zombie is not).
func alive(t *testing.T, pid int) bool {
	t.Helper()
	if runtime.GOOS == "linux" {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// pid (comm) S …: the state follows the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
	}
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(syscall.Signal(0)) == nil
}

func oneService(t *testing.T, dir, name string) *workspace.Workspace {
	t.Helper()
	return &workspace.Workspace{Dir: dir, Services: []workspace.Service{{Name: name, Dir: filepath.Join(dir, name)}}}
}

func skipWithoutUnix(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("needs process groups and signals")
	}
}

// chatty prints 200 long lines of its own, in two goroutines writing to
// stdout and stderr, in pieces so that lines reach the pipe split.
const chatty = `package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	tag := os.Args[1]
	var wg sync.WaitGroup
	for _, f := range []*os.File{os.Stdout, os.Stderr} {
		wg.Go(func() {
			for i := range 100 {
				line := fmt.Sprintf("%s %s %d %s.", tag, f.Name(), i, strings.Repeat(tag, 50+i*40))
				half := len(line) / 2
				f.WriteString(line[:half])
				f.WriteString(line[half:] + "\n")
			}
		})
	}
	wg.Wait()
	os.Stdout.WriteString(tag + " no newline at the end")
	time.Sleep(time.Hour)
}
`

func TestLogsPrefixedLineAtomic(t *testing.T) {
	skipWithoutUnix(t)
	dir := module(t, map[string]string{"chatty/main.go": chatty})
	ws := &workspace.Workspace{Dir: dir, Services: []workspace.Service{
		{Name: "a", Dir: filepath.Join(dir, "chatty"), Args: []string{"A"}},
		{Name: "bee", Dir: filepath.Join(dir, "chatty"), Args: []string{"B"}},
	}}
	var out syncBuffer
	s := start(t, ws, workspace.Options{Output: &out, Color: workspace.ColorNever})
	ferrytest.Eventually(t, "both services' last lines", func() bool {
		return logged(s, "a", "A /dev/stderr 99") && logged(s, "a", "A /dev/stdout 99") &&
			logged(s, "bee", "B /dev/stderr 99") && logged(s, "bee", "B /dev/stdout 99")
	})
	lineRE := regexp.MustCompile(`^(a  |bee) \| (.*)$`)
	svcLine := regexp.MustCompile(`^([AB]) /dev/std(out|err) (\d+) ([AB]+)\.$`)
	count := map[string]int{}
	for _, w := range out.snapshot() {
		if !bytes.HasSuffix(w, []byte("\n")) || bytes.Count(w, []byte("\n")) != 1 {
			t.Fatalf("a Write of %q: want exactly one whole line", w)
		}
		m := lineRE.FindStringSubmatch(strings.TrimSuffix(string(w), "\n"))
		if m == nil {
			t.Fatalf("line %q: want a padded prefix \"a   | \" or \"bee | \"", w)
		}
		sl := svcLine.FindStringSubmatch(m[2])
		if sl == nil {
			continue // the supervisor's own lines
		}
		tag := map[string]string{"a  ": "A", "bee": "B"}[m[1]]
		i, _ := strconv.Atoi(sl[3])
		if sl[1] != tag || sl[4] != strings.Repeat(tag, 50+i*40) {
			t.Fatalf("line %q of %q: mixed or cut", m[2][:min(len(m[2]), 80)], m[1])
		}
		count[m[1]]++
	}
	if count["a  "] != 200 || count["bee"] != 200 {
		t.Errorf("whole lines: %v, want 200 of each", count)
	}
	for _, name := range []string{"a", "bee"} {
		var std, sys int
		for _, l := range s.Logs(name) {
			switch l.Stream {
			case workspace.Stdout, workspace.Stderr:
				std++
			case workspace.System:
				sys++
			}
		}
		if std != 200 || sys == 0 {
			t.Errorf("Logs(%q): %d output lines, %d system lines; want 200 and some", name, std, sys)
		}
	}
	if s.Logs("nobody") != nil {
		t.Error("Logs(unknown) != nil")
	}
	// The unterminated last line comes out once the process ends.
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !logged(s, "a", "A no newline at the end") {
		t.Error("the last line without a newline was lost")
	}
}

func TestLogsBounded(t *testing.T) {
	skipWithoutUnix(t)
	dir := module(t, map[string]string{"chatty/main.go": chatty})
	ws := &workspace.Workspace{Dir: dir, Services: []workspace.Service{{Name: "a", Dir: filepath.Join(dir, "chatty"), Args: []string{"A"}}}}
	var out syncBuffer
	s := start(t, ws, workspace.Options{LogLines: 10, Output: &out})
	ferrytest.Eventually(t, "the last lines", func() bool {
		o := out.String()
		return strings.Contains(o, "A /dev/stderr 99") && strings.Contains(o, "A /dev/stdout 99")
	})
	logs := s.Logs("a")
	if len(logs) != 10 {
		t.Fatalf("len(Logs) = %d, want 10", len(logs))
	}
	writes := out.snapshot()
	for i, l := range logs { // the last ten written, in order
		if w := string(writes[len(writes)-10+i]); w != "a | "+l.Text+"\n" {
			t.Errorf("Logs[%d] = %.40q, want %.40q", i, l.Text, w)
		}
	}
}

const printEnv = `package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	wd, _ := os.Getwd()
	fmt.Printf("GREETING=%s OTEL_SERVICE_NAME=%s COMMON=%s NATS_URL=%s\n", os.Getenv("GREETING"), os.Getenv("OTEL_SERVICE_NAME"), os.Getenv("COMMON"), os.Getenv("NATS_URL"))
	fmt.Printf("args=%s\n", strings.Join(os.Args[1:], ","))
	fmt.Printf("wd=%s PWD=%s\n", wd, os.Getenv("PWD"))
	time.Sleep(time.Hour)
}
`

func TestEnvArgsAndDir(t *testing.T) {
	skipWithoutUnix(t)
	dir := module(t, map[string]string{"envy/main.go": printEnv})
	ws := &workspace.Workspace{
		Dir: dir,
		Env: map[string]string{"COMMON": "from-ws"},
		Services: []workspace.Service{{
			Name: "envy", Dir: filepath.Join(dir, "envy"),
			Args: []string{"-nats", "${NATS_URL}", "$$literal"},
			Env:  map[string]string{"GREETING": "hello ${COMMON}"},
		}},
	}
	s := start(t, ws, workspace.Options{Env: []string{"NATS_URL=nats://127.0.0.1:1234", "COMMON=from-caller"}})
	ferrytest.Eventually(t, "the environment printed", func() bool { return logged(s, "envy", "wd=") })
	for _, want := range []string{
		"GREETING=hello from-ws OTEL_SERVICE_NAME=envy COMMON=from-ws NATS_URL=nats://127.0.0.1:1234",
		"args=-nats,nats://127.0.0.1:1234,$literal",
		"wd=" + dir + " PWD=" + dir,
	} {
		if !logged(s, "envy", want) {
			t.Errorf("Logs = %v, want a line with %q", s.Logs("envy"), want)
		}
	}
}

// version prints its version, its pid and sleeps.
func version(v string) string {
	return `package main

import (
	"fmt"
	"os"
	"time"

	"example.com/ws/lib"
)

func main() {
	fmt.Printf("version ` + v + ` %s pid %d\n", lib.Word, os.Getpid())
	time.Sleep(time.Hour)
}
`
}

func TestRestartOnChange(t *testing.T) {
	skipWithoutUnix(t)
	dir := module(t, map[string]string{
		"svc/main.go":      version("1"),
		"lib/lib.go":       "package lib\n\nconst Word = \"one\"\n",
		"lib/lib_test.go":  "package lib\n",
		"unrelated/x.go":   "package unrelated\n",
		"svc/notes.txt":    "not a source",
		"assets/style.css": "body {}",
	})
	ws := oneService(t, dir, "svc")
	ws.Services[0].Watch = []string{filepath.Join(dir, "assets")}
	var ev events
	s := start(t, ws, workspace.Options{OnEvent: ev.add})
	ferrytest.Eventually(t, "version 1 running", func() bool { return logged(s, "svc", "version 1 one") })
	first := status(t, s, "svc")
	if first.State != workspace.Running || first.PID == 0 || first.Restarts != 0 || first.Built.IsZero() {
		t.Fatalf("status = %+v, want running, a pid, no restarts, built", first)
	}

	// The main package changes.
	writeFiles(t, dir, map[string]string{"svc/main.go": version("2")})
	ferrytest.Eventually(t, "version 2 running", func() bool { return logged(s, "svc", "version 2 one") })
	ferrytest.Eventually(t, "the old process gone", func() bool { return !alive(t, first.PID) })
	st := status(t, s, "svc")
	if st.State != workspace.Running || st.PID == first.PID || st.Restarts != 1 {
		t.Errorf("status = %+v, want running, a new pid, 1 restart", st)
	}

	// A package it imports changes.
	writeFiles(t, dir, map[string]string{"lib/lib.go": "package lib\n\nconst Word = \"two\"\n"})
	ferrytest.Eventually(t, "the new lib running", func() bool { return logged(s, "svc", "version 2 two") })
	ferrytest.Eventually(t, "2 restarts", func() bool { return status(t, s, "svc").Restarts == 2 })

	// A watched file changes.
	writeFiles(t, dir, map[string]string{"assets/style.css": "body {color: red}"})
	ferrytest.Eventually(t, "3 restarts", func() bool { return status(t, s, "svc").Restarts == 3 })

	// (Which changes count is TestSourcesMatch's.)
	writeFiles(t, dir, map[string]string{"svc/main.go": version("3")})
	ferrytest.Eventually(t, "version 3 running", func() bool { return logged(s, "svc", "version 3 two") })
	ferrytest.Eventually(t, "running after 4 restarts", func() bool {
		st := status(t, s, "svc")
		return st.State == workspace.Running && st.Restarts == 4
	})
	if n := ev.count(func(e workspace.Event) bool { return e.Status.State == workspace.Building }); n < 5 {
		t.Errorf("%d building events, want at least 5", n)
	}
}

func TestBuildFailureKeepsOldProcess(t *testing.T) {
	skipWithoutUnix(t)
	dir := module(t, map[string]string{"svc/main.go": version("1"), "lib/lib.go": "package lib\n\nconst Word = \"one\"\n"})
	var out syncBuffer
	s := start(t, oneService(t, dir, "svc"), workspace.Options{Output: &out})
	ferrytest.Eventually(t, "version 1 running", func() bool { return logged(s, "svc", "version 1 one") })
	first := status(t, s, "svc")

	writeFiles(t, dir, map[string]string{"svc/main.go": version("2") + "\nfunc broken() { undefinedThing() }\n"})
	ferrytest.Eventually(t, "the build error reported", func() bool { return status(t, s, "svc").BuildError != "" })
	st := status(t, s, "svc")
	if st.State != workspace.Running || st.PID != first.PID || !alive(t, first.PID) || st.Restarts != 0 {
		t.Errorf("after a failed build: %+v, want the old process (pid %d) running", st, first.PID)
	}
	if !strings.Contains(st.BuildError, "undefinedThing") {
		t.Errorf("BuildError = %q, want the compiler's message", st.BuildError)
	}
	if !strings.Contains(out.String(), "svc | ") || !strings.Contains(out.String(), "undefined: undefinedThing") {
		t.Errorf("output = %q, want the compiler's message prefixed", out.String())
	}

	writeFiles(t, dir, map[string]string{"svc/main.go": version("3")})
	ferrytest.Eventually(t, "version 3 running", func() bool { return logged(s, "svc", "version 3 one") })
	ferrytest.Eventually(t, "the build error cleared", func() bool {
		st := status(t, s, "svc")
		return st.BuildError == "" && st.State == workspace.Running && st.Restarts == 1
	})
	ferrytest.Eventually(t, "the old process gone", func() bool { return !alive(t, first.PID) })
}

func TestFailedFirstBuild(t *testing.T) {
	skipWithoutUnix(t)
	dir := module(t, map[string]string{"svc/main.go": "package main\n\nfunc main() { nope() }\n", "lib/lib.go": "package lib\n\nconst Word = \"one\"\n"})
	s := start(t, oneService(t, dir, "svc"), workspace.Options{})
	ferrytest.Eventually(t, "failed-build", func() bool { return status(t, s, "svc").State == workspace.FailedBuild })
	if st := status(t, s, "svc"); st.PID != 0 || !strings.Contains(st.BuildError, "nope") {
		t.Errorf("status = %+v, want no process and the error", st)
	}
	writeFiles(t, dir, map[string]string{"svc/main.go": version("1")})
	ferrytest.Eventually(t, "running once fixed", func() bool { return logged(s, "svc", "version 1 one") })
	if st := status(t, s, "svc"); st.Restarts != 0 || st.State != workspace.Running {
		t.Errorf("status = %+v, want running, the first start", st)
	}
}

const crasher = `package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("crashing")
	os.Exit(3)
}
`

func TestCrashRestartsWithBackoff(t *testing.T) {
	skipWithoutUnix(t)
	dir := module(t, map[string]string{"svc/main.go": crasher})
	var ev events
	s := start(t, oneService(t, dir, "svc"), workspace.Options{
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, OnEvent: ev.add,
	})
	ferrytest.Eventually(t, "5 restarts", func() bool { return status(t, s, "svc").Restarts >= 5 })
	st := status(t, s, "svc")
	if st.ExitCode != 3 || !strings.Contains(st.ExitError, "status 3") {
		t.Errorf("status = %+v, want exit code 3", st)
	}
	// The waits announced: 10ms, 20ms, 40ms, then capped at 40ms.
	var waits []string
	ev.mu.Lock()
	for _, e := range ev.all {
		if e.Status.State == workspace.Restarting {
			waits = append(waits, e.Message[strings.LastIndex(e.Message, " ")+1:])
		}
	}
	ev.mu.Unlock()
	if len(waits) < 5 || strings.Join(waits[:5], ",") != "10ms,20ms,40ms,40ms,40ms" {
		t.Errorf("back-offs = %v, want 10ms,20ms,40ms,40ms,40ms…", waits)
	}
}

func TestExitZeroNotRestarted(t *testing.T) {
	skipWithoutUnix(t)
	dir := module(t, map[string]string{"svc/main.go": "package main\n\nfunc main() { println(\"done\") }\n"})
	s := start(t, oneService(t, dir, "svc"), workspace.Options{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	ferrytest.Eventually(t, "exited", func() bool { return status(t, s, "svc").State == workspace.Exited })
	if st := status(t, s, "svc"); st.Restarts != 0 || st.ExitCode != 0 || st.PID != 0 {
		t.Errorf("status = %+v, want exited 0, no restarts", st)
	}
	// Restart starts it again.
	if err := s.Restart("svc"); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, "restarted", func() bool {
		st := status(t, s, "svc")
		return st.Restarts == 1 && st.State == workspace.Exited
	})
	if err := s.Restart("nobody"); err == nil {
		t.Error("Restart(unknown) = nil")
	}
}

// stubborn ignores SIGINT and SIGTERM, and so does the grandchild it starts.
const stubborn = `package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	cmd := exec.Command("sh", "-c", "trap '' INT TERM; exec sleep 1000")
	if err := cmd.Start(); err != nil {
		fmt.Println("cannot start sleep:", err)
		os.Exit(1)
	}
	fmt.Printf("grandchild %d\n", cmd.Process.Pid)
	time.Sleep(time.Hour)
}
`

func TestStopKillsProcessGroup(t *testing.T) {
	skipWithoutUnix(t)
	dir := module(t, map[string]string{"svc/main.go": stubborn, "polite/main.go": version("1"), "lib/lib.go": "package lib\n\nconst Word = \"one\"\n"})
	ws := &workspace.Workspace{Dir: dir, Services: []workspace.Service{
		{Name: "svc", Dir: filepath.Join(dir, "svc")},
		{Name: "polite", Dir: filepath.Join(dir, "polite")},
	}}
	binDir := t.TempDir()
	s, err := workspace.New(ws, workspace.Options{Grace: 100 * time.Millisecond, BinDir: binDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	var grandchild int
	ferrytest.Eventually(t, "the grandchild's pid", func() bool {
		for _, l := range s.Logs("svc") {
			if n, err := fmt.Sscanf(l.Text, "grandchild %d", &grandchild); n == 1 && err == nil {
				return true
			}
		}
		return false
	})
	ferrytest.Eventually(t, "polite running", func() bool { return logged(s, "polite", "version 1") })
	child, polite := status(t, s, "svc").PID, status(t, s, "polite").PID
	if !alive(t, grandchild) || !alive(t, child) {
		t.Fatal("not running before Stop")
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	for name, pid := range map[string]int{"child": child, "grandchild": grandchild, "polite": polite} {
		// Killed processes are reaped by init, which may take a moment.
		ferrytest.Eventually(t, name+" gone", func() bool { return !alive(t, pid) })
	}
	for _, st := range s.Status() {
		if st.State != workspace.Stopped || st.PID != 0 {
			t.Errorf("after Stop: %+v, want stopped", st)
		}
	}
	left, _ := os.ReadDir(binDir)
	if len(left) != 0 {
		t.Errorf("after Stop the build directory holds %d entries, want none", len(left))
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("second Stop = %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	dir := t.TempDir()
	ok := &workspace.Workspace{Dir: dir, Services: []workspace.Service{{Name: "a", Dir: dir}}}
	for _, tc := range []struct {
		name string
		ws   *workspace.Workspace
		opts workspace.Options
	}{
		{"nil", nil, workspace.Options{}},
		{"no services", &workspace.Workspace{Dir: dir}, workspace.Options{}},
		{"duplicate", &workspace.Workspace{Dir: dir, Services: []workspace.Service{{Name: "a", Dir: dir}, {Name: "a", Dir: dir}}}, workspace.Options{}},
		{"negative grace", ok, workspace.Options{Grace: -1}},
		{"min over max", ok, workspace.Options{MinBackoff: time.Minute, MaxBackoff: time.Second}},
		{"bad env", ok, workspace.Options{Env: []string{"NOEQUALS"}}},
	} {
		if _, err := workspace.New(tc.ws, tc.opts); err == nil {
			t.Errorf("New(%s) = nil error", tc.name)
		}
	}
	s, err := workspace.New(ok, workspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("Stop before Start = %v", err)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("Start after Stop = nil")
	}
}

func TestRestartOnEmbedChange(t *testing.T) {
	skipWithoutUnix(t)
	dir := module(t, map[string]string{
		"svc/msg.txt": "first",
		"svc/main.go": `package main

import (
	_ "embed"
	"fmt"
	"time"
)

//go:embed msg.txt
var msg string

func main() {
	fmt.Println("message", msg)
	time.Sleep(time.Hour)
}
`,
	})
	s := start(t, oneService(t, dir, "svc"), workspace.Options{})
	ferrytest.Eventually(t, "first message", func() bool { return logged(s, "svc", "message first") })
	writeFiles(t, dir, map[string]string{"svc/msg.txt": "second"})
	ferrytest.Eventually(t, "second message", func() bool { return logged(s, "svc", "message second") })
}

// helperEnv makes the test binary a supervisor of the service in the
// directory it names, for TestPdeathsig.
const helperEnv = "WORKSPACE_TEST_SUPERVISE"

func superviseForever(dir string) {
	ws := &workspace.Workspace{Dir: dir, Services: []workspace.Service{{Name: "svc", Dir: filepath.Join(dir, "svc")}}}
	// A supervisor killed with SIGKILL cannot remove its binaries: they go
	// where the test's cleanup removes them.
	s, err := workspace.New(ws, workspace.Options{Output: os.Stdout, BinDir: filepath.Join(dir, "_bin")})
	if err == nil {
		err = s.Start(context.Background())
	}
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	select {} // until killed
}

// TestPdeathsig kills a supervisor with SIGKILL: its service must die too.
func TestPdeathsig(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux's")
	}
	dir := module(t, map[string]string{"svc/main.go": version("1"), "lib/lib.go": "package lib\n\nconst Word = \"one\"\n"})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var pid int
	ctx := ferrytest.Context(t)
	for pid == 0 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the supervisor ended before starting the service")
			}
			if _, after, found := strings.Cut(l, "svc | version 1 one pid "); found {
				pid, _ = strconv.Atoi(after)
			}
		case <-ctx.Done():
			t.Fatal("the service did not start")
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for range lines { // the service's output ends with it
	}
	ferrytest.Eventually(t, "the service gone with its supervisor", func() bool { return !alive(t, pid) })
}

func TestCannotStart(t *testing.T) {
	skipWithoutUnix(t)
	dir := module(t, map[string]string{"svc/main.go": crasher})
	ws := oneService(t, dir, "svc")
	ws.Dir = filepath.Join(dir, "missing") // the working directory
	s := start(t, ws, workspace.Options{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	ferrytest.Eventually(t, "three attempts", func() bool {
		n := 0
		for _, l := range s.Logs("svc") {
			if strings.HasPrefix(l.Text, "cannot start") {
				n++
			}
		}
		return n >= 3
	})
	if st := status(t, s, "svc"); st.State != workspace.Restarting || st.PID != 0 || !strings.Contains(st.ExitError, "no such file") {
		t.Errorf("status = %+v, want restarting, no pid, the error", st)
	}
}
