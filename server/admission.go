package server

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/ferry-go/ferry/errs"
)

// Admission bounds the calls a Server decodes and runs at once, across all
// its transports, before any request is decoded: decoding is where a
// hostile request costs memory (a 4 MiB message of empty repeated strings
// becomes over 100 MB of Go values), and middleware such as a bulkhead or a
// rate limit runs only after it. A call past a bound waits for room until
// its deadline; one that cannot get room in time fails with
// ResourceExhausted.
type Admission struct {
	// MaxCalls bounds the calls admitted at once (default
	// DefaultMaxCalls; negative: no bound).
	MaxCalls int
	// MaxBytes bounds the request bytes admitted at once (default
	// DefaultMaxBytes; negative: no bound). Requests of up to SmallRequest
	// bytes do not count against it — they cannot amplify much, and so
	// normal calls are not held up behind large ones. One request larger
	// than MaxBytes is admitted when nothing else is in flight, so a bound
	// below the transports' message limit never makes a request impossible.
	MaxBytes int64
}

// Defaults of Admission.
const (
	DefaultMaxCalls = 4096
	DefaultMaxBytes = 16 << 20
	// SmallRequest is the size up to which a request is not weighed.
	SmallRequest = 64 << 10
)

// WithAdmission sets the server's admission bounds (see Admission).
func WithAdmission(a Admission) Option {
	return func(s *Server) { s.adm.configure(a) }
}

// Admit waits until a call of size request bytes may be decoded and run,
// or ctx ends. Transports call it before decoding and call Release with
// the same size once the call has returned. A refusal is ResourceExhausted
// (DeadlineExceeded or Canceled when ctx ended that way).
func (s *Server) Admit(ctx context.Context, size int64) error {
	return s.adm.admit(ctx, weight(size))
}

// Release returns what Admit took for a call of size bytes.
func (s *Server) Release(size int64) { s.adm.release(weight(size)) }

func weight(size int64) int64 {
	if size <= SmallRequest {
		return 0
	}
	return size
}

// InFlight returns the calls and request bytes admitted now.
func (s *Server) InFlight() (calls int, bytes int64) {
	return int(s.adm.calls.Load()), s.adm.bytes.Load()
}

// admission is a counting and weighing semaphore with a lock-free fast
// path: admitting and releasing a call costs four atomic additions when
// there is room and nobody waits.
type admission struct {
	maxCalls, maxBytes int64
	calls, bytes       atomic.Int64
	waiters            atomic.Int32

	mu   sync.Mutex
	wake chan struct{} // closed when room is made while someone waits
}

func (a *admission) configure(c Admission) {
	a.maxCalls, a.maxBytes = int64(c.MaxCalls), c.MaxBytes
	if a.maxCalls == 0 {
		a.maxCalls = DefaultMaxCalls
	}
	if a.maxBytes == 0 {
		a.maxBytes = DefaultMaxBytes
	}
}

func (a *admission) try(n int64) bool {
	if c := a.calls.Add(1); a.maxCalls > 0 && c > a.maxCalls {
		a.calls.Add(-1)
		return false
	}
	if n == 0 {
		return true
	}
	if b := a.bytes.Add(n); a.maxBytes > 0 && b > a.maxBytes && b != n {
		a.bytes.Add(-n)
		a.calls.Add(-1)
		return false
	}
	return true
}

func (a *admission) admit(ctx context.Context, n int64) error {
	if a.try(n) {
		return nil
	}
	for {
		a.mu.Lock()
		if a.wake == nil {
			a.wake = make(chan struct{})
		}
		ch := a.wake
		a.waiters.Add(1)
		a.mu.Unlock()
		if a.try(n) { // room made before we registered
			a.waiters.Add(-1)
			return nil
		}
		select {
		case <-ch:
			a.waiters.Add(-1)
			if a.try(n) {
				return nil
			}
		case <-ctx.Done():
			a.waiters.Add(-1)
			code := errs.CodeOf(ctx.Err())
			if code == errs.DeadlineExceeded {
				code = errs.ResourceExhausted
			}
			calls, bytes := a.calls.Load(), a.bytes.Load()
			return errs.Newf(code, "server overloaded: no room for a %d-byte request before its deadline (%d calls, %d request bytes in flight)", n, calls, bytes)
		}
	}
}

func (a *admission) release(n int64) {
	a.bytes.Add(-n)
	a.calls.Add(-1)
	if a.waiters.Load() > 0 {
		a.mu.Lock()
		if a.wake != nil {
			close(a.wake)
			a.wake = nil
		}
		a.mu.Unlock()
	}
}
