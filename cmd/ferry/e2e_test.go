package main

import (
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

// TestNewProjectBuildsAndAnswers is the end-to-end check: ferry new
// writes a project against this checkout, the project builds and its tests
// pass, and the built service answers ferry call over HTTP, gRPC and NATS.
func TestNewProjectBuildsAndAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a generated project")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	// The budget is the test binary's deadline: on a cold build cache the
	// builds below take minutes on a small machine.
	ctx := ferrytest.Context(t)
	work := t.TempDir()
	dir := filepath.Join(work, "demo")

	// ferry new runs go mod tidy with this test's environment: the same
	// build and module caches.
	ferryCmd(t, "new", "demo", "--dir", dir, "--ferry-replace", repoRoot(t)).want(t, exitOK)
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	goCmd := func(verb string, args ...string) {
		t.Helper()
		start := time.Now()
		args = append(append([]string{verb}, ferrytest.BuildFlags...), args...)
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in the generated project: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("go %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	}
	goCmd("build", "./...")
	goCmd("test", "-count=1", "./...")
	bin := filepath.Join(work, "demo-server")
	goCmd("build", "-o", bin, ".")

	// Run it on loopback ports, with an embedded NATS server (JetStream, for
	// the NATS registry) on a free port.
	ports := freePorts(t, 3)
	httpAddr, grpcAddr := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", ports[2])
	cfg := filepath.Join(work, "test.yaml")
	err = os.WriteFile(cfg, fmt.Appendf(nil, `service: {name: demo, version: 0.1.0}
transports:
  http: {enabled: true, addr: "%s"}
  grpc: {enabled: true, addr: "%s"}
  nats: {enabled: true}
nats:
  url: ""
  embedded: {host: 127.0.0.1, port: %d, jetstream: true, store_dir: %q}
registry: {kind: nats}
advertise_host: 127.0.0.1
admin: {addr: "127.0.0.1:0"}
shutdown_timeout: 5s
`, httpAddr, grpcAddr, ports[2], filepath.Join(work, "jetstream")), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	logs := startProcess(t, dir, bin, "--config", cfg)

	// Ready once it answers over NATS; the registry entry is written last.
	for {
		r := ferryCmd(t, "call", "demo", "Hello", `{"name":"Ada"}`, "--nats-url", natsURL, "--registry", "nats", "--transport", "http", "--timeout", "1s")
		if r.code == exitOK {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the generated service did not answer: %s\nits log:\n%s", r.stderr, logs)
		}
		time.Sleep(50 * time.Millisecond) // polling a process we cannot be told about
	}

	const want = "{\n  \"message\": \"Hello, Ada!\"\n}\n"
	for name, args := range map[string][]string{
		"http":          {"--addr", "http://" + httpAddr},
		"grpc":          {"--addr", grpcAddr},
		"nats":          {"--nats-url", natsURL},
		"registry grpc": {"--registry", "nats", "--transport", "grpc", "--nats-url", natsURL},
	} {
		r := ferryCmd(t, append([]string{"call", "demo", "Hello", `{"name":"Ada"}`}, args...)...)
		if r.code != exitOK || r.stdout != want {
			t.Errorf("%s: ferry call demo Hello = %q (exit %d, stderr %q), want %q", name, r.stdout, r.code, r.stderr, want)
		}
		ferryCmd(t, append([]string{"call", "demo", "Hello", `{"name":""}`}, args...)...).
			want(t, exitFailure, "invalid_argument: name is required", "  name: must not be empty")
	}

	r := ferryCmd(t, "services", "--nats-url", natsURL)
	for _, re := range []string{`(?m)^demo\s+0\.1\.0\s+\w+\s+registry\s+http=http://` + regexp.QuoteMeta(httpAddr), `(?m)^demo\s+0\.1\.0\s+\w+\s+\$SRV\s+nats$`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("ferry services =\n%s%s\nwant a line matching %s", r.stdout, r.stderr, re)
		}
	}
	if r := ferryCmd(t, "describe", "demo", "--grpc", grpcAddr); !strings.Contains(r.stdout, "rpc Hello(demo.HelloRequest) returns (demo.HelloReply);") {
		t.Errorf("ferry describe demo --grpc =\n%s%s", r.stdout, r.stderr)
	}
}

// repoRoot finds the checkout of Ferry this test runs in.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && regexp.MustCompile(`(?m)^module github\.com/ferry-go/ferry$`).Match(b) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod of github.com/ferry-go/ferry above the working directory")
		}
		dir = parent
	}
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// startProcess starts bin in dir until the end of the test, then stops it
// with SIGTERM (a SIGKILL after 15s) and fails the test unless it exited
// cleanly. It returns the process's output, safe to read at any time.
func startProcess(t *testing.T, dir, bin string, args ...string) *ferrytest.Buffer {
	t.Helper()
	logs := new(ferrytest.Buffer)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the generated service exited with %v after SIGTERM; its log:\n%s", err, logs)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("the generated service did not stop within 15s of SIGTERM; its log:\n%s", logs)
		}
	})
	return logs
}
