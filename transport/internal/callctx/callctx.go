// Package callctx is the context of one served call: the transport's
// context with the call's deadline, which costs nothing until someone asks
// for Done. Every transport server uses it for the deadline it gives a call.
package callctx

import (
	"github.com/ferry-go/ferry/transport"

	"context"
	"sync"
	"time"
)

// Ctx is the context of one call: a parent (the server's base context,
// which Stop cancels, or the request's) with the call's deadline. Init it,
// and Release it once the call is answered.
//
// context.WithDeadline would arm a timer and register with the base context
// for every request, and undo both when it ends; that was a tenth of the
// server's CPU per request. Ctx does that work only once someone asks
// for Done, or derives a context from it (through AfterFunc), which fast
// handlers rarely do; Err checks the clock and the base context directly.
type Ctx struct {
	parent   context.Context
	deadline time.Time

	mu  sync.Mutex
	err error
	w   *watch // made by the first Done or AfterFunc
}

// watch is what a Ctx needs once someone waits for it to end; most calls
// never get one, and their Ctx is smaller without it.
type watch struct {
	done       chan struct{}
	timer      *time.Timer    // closes done at the deadline
	stopParent func() bool    // stops watching parent
	funcs      map[int]func() // AfterFunc callbacks
	nextFunc   int
}

var _ context.Context = (*Ctx)(nil)

// closedDone is returned by Done once the context has ended before any
// Done channel was made.
var closedDone = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

func (c *Ctx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *Ctx) Value(key any) any { return c.parent.Value(key) }

func (c *Ctx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkLocked()
	return c.err
}

func (c *Ctx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkLocked()
	if c.w == nil {
		if c.err != nil {
			return closedDone
		}
		c.armLocked()
	}
	return c.w.done
}

// AfterFunc lets context.WithCancel and friends derive from c without a
// goroutine per derived context (the context package looks for it).
func (c *Ctx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	c.checkLocked()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	if c.w == nil {
		c.armLocked()
	}
	w := c.w
	if w.funcs == nil {
		w.funcs = make(map[int]func())
	}
	w.nextFunc++
	id := w.nextFunc
	w.funcs[id] = f
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := w.funcs[id]
		delete(w.funcs, id)
		return ok
	}
}

// checkLocked ends c if the parent has ended or the deadline has passed.
func (c *Ctx) checkLocked() {
	if c.err != nil {
		return
	}
	if err := c.parent.Err(); err != nil {
		c.endLocked(err)
	} else if !time.Now().Before(c.deadline) {
		c.endLocked(context.DeadlineExceeded)
	}
}

// armLocked makes the done channel and starts watching the deadline and
// the parent so that it closes on time. c has not ended.
func (c *Ctx) armLocked() {
	w := &watch{done: make(chan struct{})}
	c.w = w
	w.timer = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
	w.stopParent = context.AfterFunc(c.parent, func() { c.end(c.parent.Err()) })
}

func (c *Ctx) end(err error) {
	c.mu.Lock()
	c.endLocked(err)
	c.mu.Unlock()
}

func (c *Ctx) endLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	w := c.w
	if w == nil {
		return
	}
	close(w.done)
	w.timer.Stop()
	w.stopParent()
	for _, f := range w.funcs {
		go f()
	}
	w.funcs = nil
}

// Release ends c once its request is answered, as the cancel function of
// context.WithDeadline would, freeing the timer if one was armed.
func (c *Ctx) Release() { c.end(context.Canceled) }

// Init sets c's parent and deadline; c must not be in use.
func (c *Ctx) Init(parent context.Context, deadline time.Time) {
	c.parent, c.deadline = parent, deadline
}

// Served is a served call's context and its Call in one allocation: Value
// answers transport.CallFromContext with Call (transport.IsCallKey), so
// the handler's context needs no context.WithValue of its own. Set Call
// before handing the context to anything that looks for it.
type Served struct {
	Ctx
	Call transport.Call
}

// Value returns &s.Call for transport's Call key, else the parent's value.
func (s *Served) Value(key any) any {
	if transport.IsCallKey(key) {
		return &s.Call
	}
	return s.Ctx.Value(key)
}

// Carrier is a context carrying a Call over any parent, what
// transport.NewCallContext makes, for a call state that holds it in an
// allocation made anyway (a served gRPC call, whose parent may be an
// interceptor's context).
type Carrier struct {
	context.Context
	Call *transport.Call
}

// Value returns Call for transport's Call key, else the parent's value.
func (c *Carrier) Value(key any) any {
	if transport.IsCallKey(key) {
		return c.Call
	}
	return c.Context.Value(key)
}
