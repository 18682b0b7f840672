package nats

import (
	"context"
	"sync"
	"time"
)

// callCtx is the context of one request: the server's base context (which
// Stop cancels) with the request's deadline.
//
// context.WithDeadline would arm a timer and register with the base context
// for every request, and undo both when it ends; that was a tenth of the
// server's CPU per request. callCtx does that work only once someone asks
// for Done, or derives a context from it (through AfterFunc), which fast
// handlers rarely do; Err checks the clock and the base context directly.
type callCtx struct {
	parent   context.Context
	deadline time.Time

	mu         sync.Mutex
	err        error
	done       chan struct{}  // made by the first Done
	timer      *time.Timer    // closes done at the deadline, once armed
	stopParent func() bool    // stops watching parent, once armed
	funcs      map[int]func() // AfterFunc callbacks
	nextFunc   int
}

var _ context.Context = (*callCtx)(nil)

// closedDone is returned by Done once the context has ended before any
// Done channel was made.
var closedDone = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *callCtx) Value(key any) any { return c.parent.Value(key) }

func (c *callCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkLocked()
	return c.err
}

func (c *callCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkLocked()
	if c.done == nil {
		if c.err != nil {
			return closedDone
		}
		c.done = make(chan struct{})
		c.armLocked()
	}
	return c.done
}

// AfterFunc lets context.WithCancel and friends derive from c without a
// goroutine per derived context (the context package looks for it).
func (c *callCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	c.checkLocked()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	if c.done == nil {
		c.done = make(chan struct{})
		c.armLocked()
	}
	if c.funcs == nil {
		c.funcs = make(map[int]func())
	}
	c.nextFunc++
	id := c.nextFunc
	c.funcs[id] = f
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.funcs[id]
		delete(c.funcs, id)
		return ok
	}
}

// checkLocked ends c if the parent has ended or the deadline has passed.
func (c *callCtx) checkLocked() {
	if c.err != nil {
		return
	}
	if err := c.parent.Err(); err != nil {
		c.endLocked(err)
	} else if !time.Now().Before(c.deadline) {
		c.endLocked(context.DeadlineExceeded)
	}
}

// armLocked starts watching the deadline and the parent so that Done
// closes on time.
func (c *callCtx) armLocked() {
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
	c.stopParent = context.AfterFunc(c.parent, func() { c.end(c.parent.Err()) })
}

func (c *callCtx) end(err error) {
	c.mu.Lock()
	c.endLocked(err)
	c.mu.Unlock()
}

func (c *callCtx) endLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
		c.stopParent()
	}
	for _, f := range c.funcs {
		go f()
	}
	c.funcs = nil
}

// release ends c once its request is answered, as the cancel function of
// context.WithDeadline would, freeing the timer if one was armed.
func (c *callCtx) release() { c.end(context.Canceled) }
