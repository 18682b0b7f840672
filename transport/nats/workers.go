package nats

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// rescueAfter is how long a request may run on the goroutine that took it
// from the subscription before another worker takes over waiting for the
// next request. Shorter requests run one after another, as in a plain
// nats.go subscription; longer ones run concurrently.
const rescueAfter = 50 * time.Microsecond

// pool serves the requests of a synchronous subscription on worker
// goroutines, leader/follower style: one worker (the leader) waits for the
// next request and serves it itself, so a stream of fast requests runs on
// one goroutine with no hand-over and the replies leave in batches, like
// a plain nats.go subscription. If a request is still running after
// rescueAfter, the leader passes the lead to an idle worker (or starts one,
// up to max), so slow and blocking handlers do not hold up the requests
// behind them. When all max workers are busy, requests wait in the
// subscription.
//
// A goroutine per request would hand every request over to a new goroutine
// and grow its stack anew; measured against a plain subscription that
// doubled the CPU per request and halved throughput at 64 callers, mostly
// from scheduler wake-ups and replies flushed one by one.
type pool struct {
	sub    *nats.Subscription
	ctx    context.Context // cancelled when Stop gives up waiting
	max    int
	serve  func(*nats.Msg)
	reject func(*nats.Msg) // answers a request taken after ctx was cancelled
	// maxQueued bounds the requests waiting in the subscription: above it
	// the leader answers each request it takes with shed at once, instead
	// of serving it, until the backlog is back under the bound. 0: never.
	maxQueued int
	shed      func(*nats.Msg)
	// dropped is told when nats.go reports that it dropped requests (its
	// queue was full: a slow consumer). The pool goes on serving.
	dropped func(error)
	// seen counts requests taken; shedding is set while over maxQueued.
	seen     atomic.Uint64
	shedding atomic.Bool

	mu      sync.Mutex
	workers int
	idle    []*worker // followers waiting to lead, last in first out
	free    bool      // nobody leads: the next worker to finish takes the lead
	closed  bool      // Stop began: start no more workers
	done    bool      // the subscription ended: workers exit
	endErr  error     // why it ended
	wg      sync.WaitGroup
}

type worker struct {
	p     *pool
	state atomic.Int32 // idle, serving or rescued
	wake  chan bool    // to a parked follower: true to lead, false to exit
	timer *time.Timer  // runs rescue
	wait  waitCtx      // what the worker waits for requests with
}

// waitCtx is the pool's context as a worker waits for the next request
// with it. nats.go asks for Done only when no request is there and it is
// about to block: the worker is going idle, so its rescue timer, pushed
// back by every request, is stopped rather than left to fire for
// nothing. Whenever Done is asked for, stopping the timer is right: the
// worker serves nothing while it waits.
type waitCtx struct {
	context.Context
	timer *time.Timer
}

func (c *waitCtx) Done() <-chan struct{} {
	c.timer.Stop()
	return c.Context.Done()
}

// A worker's state. The leader is serving while it runs a request; rescue
// moves it to rescued, once, and then hands the lead on.
const (
	idle int32 = iota
	serving
	rescued
)

// start starts the first worker, which leads.
func (p *pool) start() {
	p.mu.Lock()
	p.startLocked()
	p.mu.Unlock()
}

func (p *pool) startLocked() {
	w := &worker{p: p, wake: make(chan bool, 1)}
	w.timer = time.AfterFunc(time.Hour, w.rescue)
	w.timer.Stop()
	w.wait = waitCtx{Context: p.ctx, timer: w.timer}
	p.workers++
	p.wg.Add(1)
	go w.run()
}

// close makes the pool start no more workers; running ones finish once the
// subscription ends.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}

// wait waits until every worker has exited.
func (p *pool) wait() { p.wg.Wait() }

func (w *worker) run() {
	p := w.p
	defer p.wg.Done()
	defer w.timer.Stop() // a rescue still to fire finds the worker idle
	for {
		msg, err := p.sub.NextMsgWithContext(&w.wait)
		if errors.Is(err, nats.ErrSlowConsumer) {
			// nats.go's queue overflowed and it dropped requests; it says
			// so once and goes on delivering. So does the pool.
			p.dropped(err)
			continue
		}
		if err != nil {
			// Drained and closed, connection closed, or cut off by Stop.
			p.end(err)
			return
		}
		switch {
		case msg.Reply == "":
			continue // a publish, not a request: nobody to answer
		case p.ctx.Err() != nil:
			p.reject(msg)
			continue
		case p.maxQueued > 0 && p.overloaded():
			p.shed(msg)
			continue
		}
		// The timer is pushed back for each request rather than stopped
		// after it: while requests come one after another it never fires,
		// and a Reset of a running timer costs about half a Stop and a
		// Reset. It is stopped when the worker waits for a request
		// (waitCtx); should it fire while the worker is between two, rescue
		// finds it idle and does nothing.
		w.state.Store(serving)
		w.timer.Reset(rescueAfter)
		p.serve(msg)
		if !w.state.CompareAndSwap(serving, idle) {
			// Rescued: the lead has gone, or is going, to another worker.
			w.state.Store(idle)
			if !w.follow() {
				return
			}
		}
	}
}

// rescue runs rescueAfter after w began its latest request: if w is still
// serving, it gives up the lead so that the next request need not wait for
// this one. (A rescue that fires just as w begins a new request hands that
// one's lead on early; no harm is done.)
func (w *worker) rescue() {
	if !w.state.CompareAndSwap(serving, rescued) {
		return
	}
	p := w.p
	p.mu.Lock()
	p.handoffLocked()
	p.mu.Unlock()
}

// follow is called by a worker that lost the lead, once its request is
// done: it takes the lead back if nobody has it, else parks until handed
// the lead. It reports false if the worker should exit. The rescue that
// took the lead may hand it over before or after: if after, it finds this
// worker parked and hands the lead back to it.
func (w *worker) follow() bool {
	p := w.p
	p.mu.Lock()
	switch {
	case p.done:
		p.mu.Unlock()
		return false
	case p.free:
		p.free = false
		p.mu.Unlock()
		return true
	}
	p.idle = append(p.idle, w)
	p.mu.Unlock()
	return <-w.wake
}

// handoffLocked gives the lead to a parked follower, or a new worker, or
// marks it free when max workers are busy. p.mu is held.
func (p *pool) handoffLocked() {
	if n := len(p.idle); n > 0 {
		f := p.idle[n-1]
		p.idle = p.idle[:n-1]
		f.wake <- true // buffered, and a parked worker has no other wake pending
		return
	}
	if !p.closed && !p.done && p.workers < p.max {
		p.startLocked()
		return
	}
	p.free = true
}

// overloaded reports whether more than maxQueued requests wait. Counting
// them takes the subscription's lock, which nats.go's reader also takes for
// every message, so while the pool is not shedding it looks only at every
// checkEvery-th request; once shedding, at every one.
func (p *pool) overloaded() bool {
	if !p.shedding.Load() && p.seen.Add(1)%checkEvery != 0 {
		return false
	}
	over := p.queued() > p.maxQueued
	p.shedding.Store(over)
	return over
}

// checkEvery is how often overloaded counts the queue while not shedding:
// a backlog grows by at most this many requests before it is noticed.
const checkEvery = 16

// queued returns the number of requests waiting in the subscription.
func (p *pool) queued() int {
	n, _, err := p.sub.Pending()
	if err != nil {
		return 0
	}
	return n
}

// ended returns why the workers stopped taking requests, or nil while
// they take them.
func (p *pool) ended() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done {
		return nil
	}
	return p.endErr
}

// end records that the subscription has ended and releases the followers.
func (p *pool) end(err error) {
	p.mu.Lock()
	if !p.done {
		p.endErr = err
	}
	p.done = true
	for _, f := range p.idle {
		f.wake <- false
	}
	p.idle = nil
	p.mu.Unlock()
}
