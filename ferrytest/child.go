package ferrytest

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Child is a process of a fault test: the test binary re-executed with an
// environment variable set, which its TestMain turns into a server — so
// that killing it is a real SIGKILL (no deregistration, no drain, no
// goodbye to NATS), not a polite in-process stop:
//
//	func TestMain(m *testing.M) {
//		if spec := os.Getenv(childEnv); spec != "" {
//			os.Exit(runChild(spec)) // prints "ready …" once serving, stops when stdin closes
//		}
//		goleak.VerifyTestMain(m)
//	}
type Child struct {
	// Cmd is the process; Cmd.Process.Kill sends SIGKILL.
	Cmd *exec.Cmd
	// Ready is what followed "ready " on the line the child printed once
	// serving (its ID and address, say).
	Ready string

	stdin  io.Closer
	stderr *Buffer
	done   chan struct{} // closed once the process is gone
}

// StartChild starts the test binary with env=value in its environment and
// waits (at most WaitBound) for it to print a line "ready …" on stdout. At
// the end of the test it closes the child's stdin — the child's cue to stop
// cleanly — and waits for it, killing it after 10 s; a failed test logs its
// stderr.
func StartChild(t testing.TB, env, value string) *Child {
	t.Helper()
	return startChild(t, "^$", env, value)
}

// StartChildTest is StartChild for a child that runs one test of the
// binary instead of a TestMain hook: test is that test's name (a t.Name(),
// subtests included), and the test itself serves when it finds env set —
// so that a suite living in another package can start its own children
// (GatewayConformance does). Everything else is as StartChild.
func StartChildTest(t testing.TB, test, env, value string) *Child {
	t.Helper()
	return startChild(t, childPattern(test), env, value)
}

func startChild(t testing.TB, run, env, value string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run="+run)
	cmd.Env = append(os.Environ(), env+"="+value)
	c := &Child{Cmd: cmd, stderr: &Buffer{}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.stdin = stdin
	done := c.done
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("child %s=%s stderr:\n%s", env, value, c.Stderr())
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text()+" ", "ready "); ok {
				ready <- strings.TrimSpace(line)
				break
			}
		}
		close(ready)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-ready:
		if !ok {
			<-done
			t.Fatalf("child %s=%s exited before ready: %s", env, value, c.Stderr())
		}
		c.Ready = line
	case <-time.After(WaitBound):
		t.Fatalf("child %s=%s not ready within %v: %s", env, value, WaitBound, c.Stderr())
	}
	return c
}

// Kill sends SIGKILL and waits until the child is gone.
func (c *Child) Kill() error {
	if err := c.Cmd.Process.Kill(); err != nil {
		return err
	}
	<-c.done
	return nil
}

// Wait waits until the child is gone (after Cmd.Process.Kill, say).
func (c *Child) Wait() { <-c.done }

// Stderr returns what the child wrote to stderr so far.
func (c *Child) Stderr() string { return c.stderr.String() }

// childPattern is the -test.run pattern that selects exactly the test
// named name (a t.Name()).
func childPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}
