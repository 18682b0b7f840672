package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ioDelay is how long a process's output may still be read after it exited
// and its group was killed; only a descendant that left the group can keep
// the pipes open that long.
const ioDelay = 2 * time.Second

// runner supervises one service. Its run goroutine owns the process, the
// binary and the timers; mu guards only st, for Status.
type runner struct {
	s      *Supervisor
	idx    int
	svc    Service
	env    []string
	args   []string
	ring   *ring
	prefix string

	changed chan struct{} // sources changed (from the watcher)
	restart chan struct{} // Restart

	mu sync.Mutex
	st ServiceStatus

	// Owned by run.
	proc    *proc
	bin     string // the binary of the last good build
	builds  int
	backoff time.Duration
	// retry, when set, is the wait before starting r.bin again: a
	// process crashed or could not be started. run turns it into a timer.
	retry    time.Duration
	retrySet bool
}

// proc is one run of a service's binary.
type proc struct {
	cmd     *exec.Cmd
	bin     string
	started time.Time
	done    chan struct{} // closed once it exited and its output is read
	err     error         // from Wait; set before done closes
	stopped bool          // the supervisor stopped it
}

func newRunner(s *Supervisor, idx int, svc Service) *runner {
	r := &runner{
		s: s, idx: idx, svc: svc,
		ring:    &ring{max: s.opts.LogLines},
		changed: make(chan struct{}, 1),
		restart: make(chan struct{}, 1),
		backoff: s.opts.MinBackoff,
		st:      ServiceStatus{Name: svc.Name, State: Building},
	}
	r.env, r.args = environment(os.Environ(), s.ws.Dir, s.opts.Env, s.ws.Env, svc)
	return r
}

func (r *runner) initOutput() { r.prefix = r.s.out.prefix(r.idx, r.svc.Name) }

// environment builds a service's environment, each layer over the one
// before: the supervisor's (with PWD the working directory),
// OTEL_SERVICE_NAME, the caller's, the workspace file's, the service's.
// ${NAME} in the file's values and in the args is replaced by NAME's value
// in the layers below (empty if unset), $$ by $.
func environment(base []string, dir string, common []string, wsEnv map[string]string, svc Service) (env, args []string) {
	vals := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	for _, kv := range base {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			set(k, v)
		}
	}
	set("PWD", dir)
	set("OTEL_SERVICE_NAME", svc.Name)
	for _, kv := range common {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	expand := func(s string) string {
		return os.Expand(s, func(k string) string {
			if k == "$" {
				return "$"
			}
			return vals[k]
		})
	}
	layer := func(m map[string]string) {
		expanded := make(map[string]string, len(m))
		for k, v := range m {
			expanded[k] = expand(v) // all against the layers below
		}
		for _, k := range sortedKeys(expanded) {
			set(k, expanded[k])
		}
	}
	layer(wsEnv)
	layer(svc.Env)
	for _, a := range svc.Args {
		args = append(args, expand(a))
	}
	for _, k := range order {
		env = append(env, k+"="+vals[k])
	}
	return env, args
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// notify tells the runner its sources changed; it never blocks.
func (r *runner) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *runner) status() ServiceStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// update changes the status, writes msg (if any) as a system line and
// reports the change.
func (r *runner) update(msg string, f func(*ServiceStatus)) {
	r.mu.Lock()
	f(&r.st)
	st := r.st
	r.mu.Unlock()
	if msg != "" {
		r.system(msg)
	}
	if r.s.opts.OnEvent != nil {
		r.s.opts.OnEvent(Event{Time: time.Now(), Status: st, Message: msg})
	}
}

// system writes a line of the supervisor's about this service.
func (r *runner) system(msg string) {
	lw := &lineWriter{out: r.s.out, ring: r.ring, prefix: r.prefix, stream: System}
	_, _ = lw.Write([]byte(msg + "\n"))
}

func (r *runner) run(ctx context.Context) {
	defer r.shutdown()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop() // since Go 1.23 a stopped timer's channel stays empty
	var backoff *time.Timer
	var backoffC <-chan time.Time
	stopBackoff := func() {
		if backoff != nil {
			backoff.Stop()
			backoff, backoffC = nil, nil
		}
	}
	defer stopBackoff()
	defer debounce.Stop()

	r.rebuild(ctx)
	for {
		if r.retrySet {
			stopBackoff()
			backoff = time.NewTimer(r.retry)
			backoffC = backoff.C
			r.retrySet = false
		}
		var exited <-chan struct{}
		if r.proc != nil {
			exited = r.proc.done
		}
		select {
		case <-ctx.Done():
			return
		case <-r.changed:
			debounce.Reset(r.s.opts.Debounce)
		case <-debounce.C:
			stopBackoff()
			r.backoff = r.s.opts.MinBackoff // the code changed: try at once
			r.rebuild(ctx)
		case <-r.restart:
			stopBackoff()
			r.backoff = r.s.opts.MinBackoff
			r.rebuild(ctx)
		case <-exited:
			r.exited()
		case <-backoffC:
			backoff, backoffC = nil, nil
			r.start(r.bin)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// rebuild lists the sources, builds, and on success replaces the running
// process with one of the new binary.
func (r *runner) rebuild(ctx context.Context) {
	r.update("building", func(st *ServiceStatus) { st.State = Building; st.NextStart = time.Time{} })
	if r.s.watch != nil {
		src, err := listSources(ctx, r.svc.Dir, r.svc.Watch)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.system("listing sources: " + err.Error())
		} else {
			r.s.watch.set(r, src)
		}
	}
	bin, out, err := r.build(ctx)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		for line := range strings.Lines(strings.TrimRight(out, "\n")) {
			r.system(strings.TrimRight(line, "\n"))
		}
		r.update("build failed: "+err.Error(), func(st *ServiceStatus) {
			st.BuildError = strings.TrimSpace(out)
			if st.BuildError == "" {
				st.BuildError = err.Error()
			}
			if r.proc != nil {
				st.State = Running // the old process serves on
			} else {
				st.State = FailedBuild // until the next change: no crash loop of old code
			}
		})
		return
	}
	r.update("", func(st *ServiceStatus) { st.Built = time.Now(); st.BuildError = "" })
	old := r.bin
	r.bin = bin
	if r.proc != nil {
		r.stopProc(ctx, r.proc)
	}
	if old != "" {
		_ = os.RemoveAll(filepath.Dir(old))
	}
	r.start(bin)
}

// build builds the service into a new directory and returns the binary.
func (r *runner) build(ctx context.Context) (bin, output string, err error) {
	select {
	case r.s.builds <- struct{}{}:
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
	defer func() { <-r.s.builds }()
	r.builds++
	dir := filepath.Join(r.s.binDir, r.svc.Name, strconv.Itoa(r.builds))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, r.svc.Name)
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = r.svc.Dir
	// Stopped, the go command is interrupted rather than killed, so that
	// it stops the compiler and linker it runs too.
	cmd.Cancel = func() error {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			return cmd.Process.Kill() // no SIGINT on Windows
		}
		return nil
	}
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(dir)
		return "", out.String(), err
	}
	return bin, out.String(), nil
}

// start starts a process of bin; if it cannot, that counts as a crash.
func (r *runner) start(bin string) {
	cmd := exec.Command(bin, r.args...)
	cmd.Dir = r.s.ws.Dir
	cmd.Env = r.env
	cmd.SysProcAttr = sysProcAttr()
	outR, outW, err := os.Pipe()
	if err != nil {
		r.failedStart(err)
		return
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		r.failedStart(err)
		return
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		r.failedStart(err)
		return
	}
	p := &proc{cmd: cmd, bin: bin, started: time.Now(), done: make(chan struct{})}
	r.proc = p
	// The pipes are read here rather than by os/exec, so that Wait
	// returns when the service exits even if something it started still
	// holds them: the group is killed then, and the reading ends soon.
	var reading sync.WaitGroup
	for _, in := range []struct {
		f      *os.File
		stream Stream
	}{{outR, Stdout}, {errR, Stderr}} {
		lw := &lineWriter{out: r.s.out, ring: r.ring, prefix: r.prefix, stream: in.stream}
		reading.Go(func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := in.f.Read(buf)
				_, _ = lw.Write(buf[:n])
				if err != nil {
					break
				}
			}
			lw.Close()
		})
	}
	go func() {
		p.err = cmd.Wait()
		kill(cmd.Process) // whatever it left behind in its group
		read := make(chan struct{})
		go func() { reading.Wait(); close(read) }()
		select {
		case <-read:
		case <-time.After(ioDelay):
			outR.Close()
			errR.Close()
			<-read
		}
		outR.Close()
		errR.Close()
		close(p.done)
	}()
	first := false
	r.update(fmt.Sprintf("started, pid %d", cmd.Process.Pid), func(st *ServiceStatus) {
		first = st.Started.IsZero()
		if !first {
			st.Restarts++
		}
		st.State, st.PID, st.Started, st.NextStart = Running, cmd.Process.Pid, p.started, time.Time{}
	})
}

func (r *runner) failedStart(err error) {
	wait := r.nextBackoff(0)
	r.update(fmt.Sprintf("cannot start: %v; again in %v", err, wait), func(st *ServiceStatus) {
		st.State, st.PID, st.ExitError, st.NextStart = Restarting, 0, err.Error(), time.Now().Add(wait)
	})
	r.retry, r.retrySet = wait, true
}

// stableRun is how long a process must have run for its crash to count as
// the first of a series (or MaxBackoff, if longer).
const stableRun = 10 * time.Second

// nextBackoff returns the wait before the next start after a process that
// ran for ran, and doubles the next one.
func (r *runner) nextBackoff(ran time.Duration) time.Duration {
	if ran >= max(stableRun, r.s.opts.MaxBackoff) {
		r.backoff = r.s.opts.MinBackoff
	}
	wait := r.backoff
	r.backoff = min(2*r.backoff, r.s.opts.MaxBackoff)
	return wait
}

// exited handles a process that ended by itself: unless it exited with
// status 0, it is started again after a back-off.
func (r *runner) exited() {
	p := r.proc
	r.proc = nil
	code, how := exitOf(p.err)
	if code == 0 {
		r.update("exited with status 0; it starts again when its sources change", func(st *ServiceStatus) {
			st.State, st.PID, st.Exited, st.ExitCode, st.ExitError = Exited, 0, time.Now(), 0, ""
		})
		return
	}
	wait := r.nextBackoff(time.Since(p.started))
	r.update(fmt.Sprintf("%s; starting again in %v", how, wait), func(st *ServiceStatus) {
		st.State, st.PID, st.Exited, st.ExitCode, st.ExitError = Restarting, 0, time.Now(), code, how
		st.NextStart = time.Now().Add(wait)
	})
	r.retry, r.retrySet = wait, true
}

func exitOf(err error) (code int, how string) {
	if err == nil {
		return 0, ""
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		if code < 0 {
			return -1, "killed: " + ee.String()
		}
		return code, fmt.Sprintf("exited with status %d", code)
	}
	return -1, err.Error()
}

// stopProc stops p: SIGINT to its group, SIGKILL after the grace period
// or when ctx ends; it returns once p exited and its output is read.
func (r *runner) stopProc(ctx context.Context, p *proc) {
	r.proc = nil
	select {
	case <-p.done: // it had exited already
	default:
		p.stopped = true
		interrupt(p.cmd.Process)
		grace := time.NewTimer(r.s.opts.Grace)
		select {
		case <-p.done:
		case <-grace.C:
			r.system(fmt.Sprintf("still running %v after SIGINT: SIGKILL", r.s.opts.Grace))
			kill(p.cmd.Process)
		case <-ctx.Done():
			kill(p.cmd.Process)
		}
		grace.Stop()
		<-p.done
	}
	code, how := exitOf(p.err)
	msg := "stopped"
	if how != "" && !p.stopped {
		msg = "stopped (" + how + ")"
	}
	r.update(msg, func(st *ServiceStatus) {
		st.PID, st.Exited, st.ExitCode, st.ExitError = 0, time.Now(), code, how
	})
}

// shutdown stops the process for good and removes the binaries.
func (r *runner) shutdown() {
	if r.proc != nil {
		r.stopProc(r.s.lastStopCtx(), r.proc)
	}
	if r.s.watch != nil {
		r.s.watch.set(r, &sources{})
	}
	_ = os.RemoveAll(filepath.Join(r.s.binDir, r.svc.Name))
	r.update("", func(st *ServiceStatus) { st.State, st.PID, st.NextStart = Stopped, 0, time.Time{} })
}
