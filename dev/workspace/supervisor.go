package workspace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultDebounce   = 300 * time.Millisecond
	DefaultGrace      = 5 * time.Second
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 30 * time.Second
	DefaultLogLines   = 1000
)

// Options configure a Supervisor. The zero value works.
type Options struct {
	// Output receives every service's output and the supervisor's notes,
	// a whole line at a time, each prefixed "<name> | " (names padded to
	// one width). Nil discards it (Logs still keeps the recent lines).
	Output io.Writer
	// Color colours the prefixes; zero means ColorAuto.
	Color ColorMode
	// Env is added to every service's environment ("KEY=value"), over
	// the supervisor's own environment and OTEL_SERVICE_NAME=<name>, under
	// the workspace file's env: typically NATS_URL and
	// OTEL_EXPORTER_OTLP_ENDPOINT of the dev environment.
	Env []string
	// BinDir is where binaries are built. Empty: a temporary directory,
	// removed by Stop. Either way Stop removes the binaries it built.
	BinDir string
	// Debounce is how long the sources must stay quiet after a change
	// before the service is rebuilt, so that a burst of saves (a branch
	// switch, a formatter) is one rebuild. Default 300ms.
	Debounce time.Duration
	// Grace is how long a stopping service has between SIGINT and SIGKILL.
	// Default 5s.
	Grace time.Duration
	// MinBackoff and MaxBackoff bound the wait before a crashed service is
	// started again: MinBackoff after the first crash, doubling with every
	// crash in a row, at most MaxBackoff. Defaults 1s and 30s. A service
	// that ran at least 10s (or MaxBackoff, if longer) before crashing
	// starts from MinBackoff again, and so does one whose sources change.
	MinBackoff, MaxBackoff time.Duration
	// LogLines is how many recent lines Logs keeps per service. Default
	// 1000.
	LogLines int
	// NoWatch turns watching off: services are built and started once
	// (and restarted after a crash, or by Restart).
	NoWatch bool
	// OnEvent, if set, is called after every change of a service's status,
	// from the supervisor's goroutines (several at once for different
	// services, in order for one service). It must return quickly.
	OnEvent func(Event)
}

// State is where a service is in its life.
type State int

const (
	// Building: the service is being built (its previous process, if
	// any, still runs: PID is set).
	Building State = iota + 1
	// Running: the process runs. If BuildError is set it is the previous
	// build's process, the last build having failed.
	Running
	// Exited: the process exited with status 0 by itself; it is started
	// again when its sources change (or by Restart).
	Exited
	// FailedBuild: the build failed and no process runs; it is built
	// again when its sources change.
	FailedBuild
	// Restarting: the process failed (non-zero status, a signal, or it
	// could not be started) and will be started again after a back-off.
	Restarting
	// Stopped: the supervisor stopped it.
	Stopped
)

func (s State) String() string {
	switch s {
	case Building:
		return "building"
	case Running:
		return "running"
	case Exited:
		return "exited"
	case FailedBuild:
		return "failed-build"
	case Restarting:
		return "restarting"
	case Stopped:
		return "stopped"
	}
	return "unknown"
}

// MarshalText writes the state's name, so that JSON shows "running".
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ServiceStatus is a service's state, for a dashboard.
type ServiceStatus struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	// PID is the running process's, 0 when none runs.
	PID int `json:"pid,omitempty"`
	// Started is when the running (or last) process started.
	Started time.Time `json:"started,omitzero"`
	// Restarts counts the starts after the first: after a change, a crash
	// or Restart.
	Restarts int `json:"restarts"`
	// Exited is when the last process ended; ExitCode its exit status (-1
	// for a signal), ExitError how it ended when that was not status 0.
	// A process the supervisor stopped counts too.
	Exited    time.Time `json:"exited,omitzero"`
	ExitCode  int       `json:"exit_code"`
	ExitError string    `json:"exit_error,omitempty"`
	// Built is when the last successful build finished.
	Built time.Time `json:"built,omitzero"`
	// BuildError is the compiler's output of the last build if it failed,
	// "" once a build succeeds.
	BuildError string `json:"build_error,omitempty"`
	// NextStart is when a Restarting service is started again.
	NextStart time.Time `json:"next_start,omitzero"`
}

// Event is a change of a service's status.
type Event struct {
	Time time.Time
	// Status is the service's status after the change.
	Status ServiceStatus
	// Message says what happened, as written to Output ("started, pid
	// 1234", "build failed", …).
	Message string
}

// Supervisor builds, runs, watches and restarts the services of a
// Workspace. Make one with New; Start it once and Stop it once.
type Supervisor struct {
	ws      *Workspace
	opts    Options
	out     *output
	runners []*runner
	byName  map[string]*runner
	builds  chan struct{} // semaphore: builds at once

	mu       sync.Mutex
	started  bool
	stopped  bool
	cancel   context.CancelFunc
	stopCtx  context.Context // for the runners' last stop; set by Stop
	binDir   string
	ownedDir bool
	watch    *watcher
	wg       sync.WaitGroup
}

// New returns a supervisor of ws's services. It fails if ws has no
// services, two of one name, or opts are out of range (negative durations,
// MinBackoff over MaxBackoff).
func New(ws *Workspace, opts Options) (*Supervisor, error) {
	if ws == nil || len(ws.Services) == 0 {
		return nil, errors.New("workspace: no services")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Debounce", opts.Debounce}, {"Grace", opts.Grace}, {"MinBackoff", opts.MinBackoff}, {"MaxBackoff", opts.MaxBackoff}} {
		if d.v < 0 {
			return nil, fmt.Errorf("workspace: Options.%s %v is negative", d.name, d.v)
		}
	}
	if opts.LogLines < 0 {
		return nil, fmt.Errorf("workspace: Options.LogLines %d is negative", opts.LogLines)
	}
	for _, kv := range opts.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("workspace: Options.Env %q: want KEY=value", kv)
		}
	}
	opts.Debounce = cmp(opts.Debounce, DefaultDebounce)
	opts.Grace = cmp(opts.Grace, DefaultGrace)
	opts.MinBackoff = cmp(opts.MinBackoff, DefaultMinBackoff)
	opts.MaxBackoff = cmp(opts.MaxBackoff, max(DefaultMaxBackoff, opts.MinBackoff))
	if opts.MinBackoff > opts.MaxBackoff {
		return nil, fmt.Errorf("workspace: Options.MinBackoff %v is over MaxBackoff %v", opts.MinBackoff, opts.MaxBackoff)
	}
	if opts.LogLines == 0 {
		opts.LogLines = DefaultLogLines
	}
	s := &Supervisor{ws: ws, opts: opts, byName: map[string]*runner{}, builds: make(chan struct{}, runtime.GOMAXPROCS(0))}
	names := make([]string, len(ws.Services))
	for i, svc := range ws.Services {
		if svc.Name == "" || svc.Dir == "" {
			return nil, fmt.Errorf("workspace: service %d has no name or no directory", i)
		}
		if _, dup := s.byName[svc.Name]; dup {
			return nil, fmt.Errorf("workspace: two services named %q", svc.Name)
		}
		names[i] = svc.Name
		r := newRunner(s, i, svc)
		s.runners = append(s.runners, r)
		s.byName[svc.Name] = r
	}
	s.out = newOutput(opts.Output, opts.Color, names)
	for _, r := range s.runners {
		r.initOutput()
	}
	return s, nil
}

func cmp(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// Start starts building every service, and starts each as its build
// succeeds; it returns at once. The supervisor runs until Stop, not until
// ctx ends: ctx only bounds Start. Start fails if Start or Stop was called
// before, or the build directory or the file watcher cannot be made.
func (s *Supervisor) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return errors.New("workspace: Supervisor already started or stopped")
	}
	s.started = true
	s.binDir = s.opts.BinDir
	if s.binDir == "" {
		dir, err := os.MkdirTemp("", "ferry-dev-")
		if err != nil {
			return fmt.Errorf("workspace: %w", err)
		}
		s.binDir, s.ownedDir = dir, true
	} else if err := os.MkdirAll(s.binDir, 0o755); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	if !s.opts.NoWatch {
		w, err := newWatcher()
		if err != nil {
			if s.ownedDir {
				_ = os.RemoveAll(s.binDir)
			}
			return fmt.Errorf("workspace: watching sources: %w", err)
		}
		s.watch = w
	}
	// The runners live until Stop, not until Start's ctx ends.
	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	for _, r := range s.runners {
		s.wg.Go(func() { r.run(life) })
	}
	return nil
}

// Stop stops every service — SIGINT to its process group, SIGKILL after
// Options.Grace or when ctx ends, whichever is first — waits for them,
// stops watching and removes the binaries it built. It is safe to call
// more than once, and before Start.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	if !s.started || s.stopped {
		s.stopped = true
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.stopCtx = ctx
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	if s.watch != nil {
		s.watch.close()
	}
	var err error
	if s.ownedDir {
		err = os.RemoveAll(s.binDir)
	}
	if err != nil {
		return fmt.Errorf("workspace: removing binaries: %w", err)
	}
	return nil
}

func (s *Supervisor) lastStopCtx() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopCtx == nil {
		return context.Background()
	}
	return s.stopCtx
}

// Status returns every service's status, in the workspace's order.
func (s *Supervisor) Status() []ServiceStatus {
	out := make([]ServiceStatus, len(s.runners))
	for i, r := range s.runners {
		out[i] = r.status()
	}
	return out
}

// Logs returns the recent lines of the named service, oldest first (at
// most Options.LogLines), or nil for a name not in the workspace.
func (s *Supervisor) Logs(name string) []Line {
	r, ok := s.byName[name]
	if !ok {
		return nil
	}
	return r.ring.snapshot()
}

// Services returns the names of the services, in the workspace's order.
func (s *Supervisor) Services() []string {
	names := make([]string, len(s.runners))
	for i, r := range s.runners {
		names[i] = r.svc.Name
	}
	return names
}

// Restart rebuilds the named service and, if the build succeeds, starts it
// again, as a change of its sources would (without the debounce).
func (s *Supervisor) Restart(name string) error {
	r, ok := s.byName[name]
	if !ok {
		return fmt.Errorf("workspace: no service %q", name)
	}
	select {
	case r.restart <- struct{}{}:
	default: // one is pending already
	}
	return nil
}

// Run starts a supervisor of ws's services, and stops it when ctx ends
// (giving the services Options.Grace to stop).
func Run(ctx context.Context, ws *Workspace, opts Options) error {
	s, err := New(ws, opts)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Stop(context.WithoutCancel(ctx))
}
