package memory

import (
	"bytes"
	"context"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
)

// groupKey identifies a queue group: the same queue on the same topic.
type groupKey struct {
	queue, pattern string
}

// group is what a message is delivered to: a queue group, or one fan-out
// subscription. Its members' workers compete for its queue. Every field
// is guarded by the broker's mutex.
type group struct {
	key     groupKey
	pattern string
	name    string // the subscription name, for errors and logs
	ordered bool
	buffer  int

	members int
	removed bool // the last member left: nothing more is delivered
	queue   []*entry
	cond    *sync.Cond    // signalled when a worker may have something to take
	room    chan struct{} // closed when the queue shrinks, for a waiting Publish
	busy    bool          // ordered: a message is being handled or awaits redelivery

	retries map[*retry]struct{}
	timers  sync.WaitGroup // redelivery timers not yet stopped or run
}

// entry is one message on its way through one group.
type entry struct {
	*stored
	attempt int // of the next delivery
}

// retry is a message waiting for its back-off delay.
type retry struct {
	e *entry
	t *time.Timer
}

func newGroup(mu *sync.Mutex, key groupKey, name string, ordered bool, buffer int) *group {
	return &group{
		key:     key,
		pattern: key.pattern,
		name:    name,
		ordered: ordered,
		buffer:  buffer,
		cond:    sync.NewCond(mu),
		retries: make(map[*retry]struct{}),
	}
}

// push appends a newly published message.
func (g *group) push(e *entry) {
	g.queue = append(g.queue, e)
	g.cond.Signal()
}

// pushFront puts back a message taken earlier, ahead of the rest: it was
// published before them. An ordered group may go on.
func (g *group) pushFront(e *entry) {
	g.queue = append(g.queue, nil)
	copy(g.queue[1:], g.queue)
	g.queue[0] = e
	g.busy = false
	g.cond.Signal()
}

// take returns the next message to handle, or nil if there is none or an
// ordered group is busy.
func (g *group) take() *entry {
	if len(g.queue) == 0 || (g.ordered && g.busy) {
		return nil
	}
	e := g.queue[0]
	g.queue[0] = nil
	g.queue = g.queue[1:]
	if g.ordered {
		g.busy = true
	}
	if g.room != nil && len(g.queue) < g.buffer {
		close(g.room)
		g.room = nil
	}
	return e
}

// finish ends the handling of a message that is done or dead-lettered.
func (g *group) finish() {
	if g.ordered {
		g.busy = false
		g.cond.Signal()
	}
}

// redeliver puts e back after delay, unless the group is gone by then.
func (g *group) redeliver(e *entry, delay time.Duration) {
	r := &retry{e: e}
	g.retries[r] = struct{}{}
	g.timers.Add(1)
	mu := g.cond.L
	r.t = time.AfterFunc(delay, func() {
		defer g.timers.Done()
		mu.Lock()
		defer mu.Unlock()
		if g.removed {
			return
		}
		delete(g.retries, r)
		if g.ordered {
			g.pushFront(e)
		} else {
			g.queue = append(g.queue, e)
			g.cond.Signal()
		}
	})
}

// remove marks the group gone, drops its queue and stops its timers. It
// returns how many messages it dropped. The caller waits for g.timers
// after unlocking.
func (g *group) remove() int {
	g.removed = true
	n := len(g.queue) + len(g.retries)
	g.queue = nil
	for r := range g.retries {
		if r.t.Stop() {
			g.timers.Done()
		}
	}
	clear(g.retries)
	if g.room != nil {
		close(g.room)
		g.room = nil
	}
	g.cond.Broadcast()
	return n
}

// subscription is one member of a group, with its workers.
type subscription struct {
	b     *Broker
	g     *group
	topic string
	h     broker.Handler
	cfg   broker.SubscribeConfig
	name  string

	ctx     context.Context // the handlers', cancelled when Drain cuts them off
	cancel  context.CancelFunc
	workers sync.WaitGroup

	stopping bool          // guarded by b.mu
	drained  chan struct{} // closed when Drain has finished
}

var _ broker.Subscription = (*subscription)(nil)

func newSubscription(ctx context.Context, b *Broker, g *group, topic string, h broker.Handler, cfg broker.SubscribeConfig) *subscription {
	s := &subscription{b: b, g: g, topic: topic, h: h, cfg: cfg, name: cfg.Name(topic), drained: make(chan struct{})}
	// Handlers outlive Subscribe's context but keep its values.
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return s
}

// start starts the workers. b.mu is held.
func (s *subscription) start() {
	for range s.cfg.Concurrency {
		s.workers.Go(s.work)
	}
}

// Topic implements broker.Subscription.
func (s *subscription) Topic() string { return s.topic }

// work takes messages from the group and handles them until Drain.
func (s *subscription) work() {
	mu := &s.b.mu
	for {
		mu.Lock()
		var e *entry
		for e == nil {
			if s.stopping {
				// A signal meant for anyone may have woken this worker.
				s.g.cond.Signal()
				mu.Unlock()
				return
			}
			if e = s.g.take(); e == nil {
				s.g.cond.Wait()
			}
		}
		mu.Unlock()
		s.handle(e)
	}
}

// handle delivers e once and acts on the outcome.
func (s *subscription) handle(e *entry) {
	d := &broker.Delivery{
		Message: broker.Message{
			Topic:  e.msg.Topic,
			ID:     e.msg.ID,
			Header: e.msg.Header.Clone(),
			Data:   bytes.Clone(e.msg.Data),
		},
		Attempt:      e.attempt,
		Sequence:     e.seq,
		Published:    e.published,
		Subscription: s.name,
	}
	err := s.call(d)
	g, mu, log := s.g, &s.b.mu, s.cfg.Logger
	switch {
	case err == nil:
		mu.Lock()
		g.finish()
		mu.Unlock()

	case s.ctx.Err() != nil:
		// Cut off by Drain: not finished, so not a failure of the message.
		mu.Lock()
		gone := g.removed
		if !gone {
			e.attempt++
			g.pushFront(e)
		}
		mu.Unlock()
		if gone {
			log.Warn("broker/memory: message dropped: its subscription was drained before the handler finished and has no other member",
				"topic", d.Topic, "id", d.ID, "subscription", s.name, "attempts", d.Attempt, "error", err)
		}

	case broker.IsPermanent(err) || d.Attempt >= s.cfg.MaxDeliver:
		s.deadLetter(e, d, err)
		mu.Lock()
		g.finish()
		mu.Unlock()

	default:
		mu.Lock()
		gone := g.removed
		if !gone {
			e.attempt++
			g.redeliver(e, s.cfg.Delay(d.Attempt))
		}
		mu.Unlock()
		if gone {
			log.Warn("broker/memory: message dropped: its handler failed after the subscription was drained",
				"topic", d.Topic, "id", d.ID, "subscription", s.name, "attempts", d.Attempt, "error", err)
		}
	}
}

// call runs the handler, turning a panic into an Internal error.
func (s *subscription) call(d *broker.Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logger.Error("broker/memory: handler panicked", "topic", d.Topic, "id", d.ID,
				"subscription", s.name, "panic", p, "stack", string(debug.Stack()))
			err = errs.Newf(errs.Internal, "broker/memory: handler for %q panicked: %v", d.Topic, p)
		}
	}()
	return s.h(broker.NewDeliveryContext(s.ctx, d), d)
}

// deadLetter publishes the dead letter of d, which failed with err, or
// only logs it when the subscription has no dead-letter subject.
func (s *subscription) deadLetter(e *entry, d *broker.Delivery, err error) {
	log := s.cfg.Logger
	if s.cfg.DeadLetter == "" {
		log.Warn("broker/memory: message dropped after its last delivery (no dead-letter subject)",
			"topic", d.Topic, "id", d.ID, "subscription", s.name, "attempts", d.Attempt, "error", err)
		return
	}
	// From the message as published: the handler may have changed d.
	orig := *d
	orig.Message = e.msg
	if perr := s.b.publish(s.ctx, broker.DeadLetterMessage(&orig, s.cfg.DeadLetter, err)); perr != nil {
		log.Error("broker/memory: dead letter lost",
			"topic", d.Topic, "id", d.ID, "subscription", s.name, "attempts", d.Attempt, "error", err,
			"dead_letter", s.cfg.DeadLetter, "publish_error", perr)
		return
	}
	log.Warn("broker/memory: message dead-lettered",
		"topic", d.Topic, "id", d.ID, "subscription", s.name, "attempts", d.Attempt, "error", err,
		"dead_letter", s.cfg.DeadLetter)
}

// Drain implements broker.Subscription: see the package documentation. It
// returns an error carrying ctx's code if handlers had to be cancelled. A
// second Drain waits for the first, cancelling the handlers if its own
// ctx ends first.
func (s *subscription) Drain(ctx context.Context) error {
	b := s.b
	b.mu.Lock()
	if s.stopping {
		b.mu.Unlock()
		select {
		case <-s.drained:
			return nil
		case <-ctx.Done():
			s.cancel()
			<-s.drained
			return errs.Newf(errs.CodeOf(ctx.Err()), "broker/memory: drain %q: %w", s.name, ctx.Err())
		}
	}
	s.stopping = true
	delete(b.subs, s)
	g := s.g
	g.members--
	dropped, last := 0, g.members == 0
	if last {
		dropped = b.removeGroup(g)
	}
	g.cond.Broadcast() // idle workers of s exit
	b.mu.Unlock()
	defer close(s.drained)
	defer s.cancel()
	if dropped > 0 {
		s.cfg.Logger.Warn("broker/memory: messages dropped: the last member of their subscription was drained",
			"subscription", s.name, "topic", s.topic, "dropped", dropped)
	}

	done := make(chan struct{})
	go func() {
		s.workers.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel()
		<-done
		err = errs.Newf(errs.CodeOf(ctx.Err()), "broker/memory: drain %q: handlers cancelled: %w", s.name, ctx.Err())
	}
	if last {
		g.timers.Wait()
	}
	return err
}
