package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/nats-io/nuid"
)

// Defaults of the broker options.
const (
	// DefaultDedupeWindow is how long a message ID is remembered for
	// de-duplication, as JetStream's default duplicate window.
	DefaultDedupeWindow = 2 * time.Minute
	// DefaultBuffer is how many messages one subscription group holds
	// waiting for a handler before Publish waits for room.
	DefaultBuffer = 10000
)

// Option configures a Broker.
type Option func(*options)

type options struct {
	errs []error // invalid options, reported by the constructor

	dedupeWindow time.Duration
	buffer       int
}

// fail records an invalid option for the constructor to report.
func (o *options) fail(err error) { o.errs = append(o.errs, err) }

// WithDedupeWindow sets how long a message ID is remembered: a message
// whose ID was published within d is not delivered again (default
// DefaultDedupeWindow). 0 turns de-duplication off; a negative d is an
// error.
func WithDedupeWindow(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.fail(fmt.Errorf("WithDedupeWindow(%v): want ≥ 0", d))
			return
		}
		o.dedupeWindow = d
	}
}

// WithBuffer sets how many messages each subscription group (a fan-out
// subscription, or a queue group) holds waiting for a handler; Publish
// waits for room beyond that (default DefaultBuffer). n must be at least 1.
// Redeliveries do not count against it.
func WithBuffer(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.fail(fmt.Errorf("WithBuffer(%d): want at least 1", n))
			return
		}
		o.buffer = n
	}
}

// Broker is an in-process broker.Broker; see the package documentation
// for its guarantees. Create it with New; its methods are safe for
// concurrent use.
type Broker struct {
	dedupeWindow time.Duration
	buffer       int

	mu     sync.Mutex
	closed bool
	done   chan struct{} // closed when Close has finished
	seq    uint64
	groups map[*group]struct{}
	queues map[groupKey]*group
	subs   map[*subscription]struct{}
	seen   map[string]time.Time // message ID → when first published
	ids    []seenID             // the keys of seen, oldest first
}

type seenID struct {
	id string
	at time.Time
}

var _ broker.Broker = (*Broker)(nil)

// New returns a broker configured by opts. Invalid options are an
// InvalidArgument error naming each one.
func New(opts ...Option) (*Broker, error) {
	o := options{dedupeWindow: DefaultDedupeWindow, buffer: DefaultBuffer}
	var problems []error
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		opt(&o)
	}
	problems = append(problems, o.errs...)
	if err := errors.Join(problems...); err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker/memory: %w", err)
	}
	return &Broker{
		dedupeWindow: o.dedupeWindow,
		buffer:       o.buffer,
		done:         make(chan struct{}),
		groups:       make(map[*group]struct{}),
		queues:       make(map[groupKey]*group),
		subs:         make(map[*subscription]struct{}),
		seen:         make(map[string]time.Time),
	}, nil
}

// stored is a published message, shared by the groups it went to; nobody
// modifies it.
type stored struct {
	msg       broker.Message
	seq       uint64
	published time.Time
}

// Publish hands m to every matching subscription (see the package
// documentation). An invalid topic is InvalidArgument; a full group makes
// it wait until ctx ends, then fail with ResourceExhausted; after Close it
// fails with an error wrapping broker.ErrClosed. m is copied: the caller
// may reuse it once Publish returns.
func (b *Broker) Publish(ctx context.Context, m *broker.Message) error {
	if m == nil {
		return errs.New(errs.InvalidArgument, "broker/memory: nil message")
	}
	if err := broker.ValidTopic(m.Topic, false); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return errs.Newf(errs.CodeOf(err), "broker/memory: publish %q: %w", m.Topic, err)
	}
	return b.publish(ctx, m)
}

func (b *Broker) publish(ctx context.Context, m *broker.Message) error {
	id := m.ID
	generated := id == ""
	if generated {
		id = nuid.Next()
	}
	b.mu.Lock()
	var groups []*group
	for {
		if b.closed {
			b.mu.Unlock()
			return errs.Newf(errs.FailedPrecondition, "broker/memory: publish %q: %w", m.Topic, broker.ErrClosed)
		}
		now := time.Now()
		b.forget(now)
		if _, dup := b.seen[id]; dup && !generated {
			b.mu.Unlock()
			return nil // accepted, and already delivered once
		}
		groups = groups[:0]
		var full *group
		for g := range b.groups {
			if !broker.Match(g.pattern, m.Topic) {
				continue
			}
			groups = append(groups, g)
			if full == nil && len(g.queue) >= b.buffer {
				full = g
			}
		}
		if full == nil {
			break
		}
		if full.room == nil {
			full.room = make(chan struct{})
		}
		room := full.room
		b.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return errs.Newf(errs.ResourceExhausted,
				"broker/memory: publish %q: subscription %q has %d messages waiting (WithBuffer): %w",
				m.Topic, full.name, b.buffer, ctx.Err())
		}
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	b.seq++
	s := &stored{
		msg:       broker.Message{Topic: m.Topic, ID: id, Header: m.Header.Clone(), Data: bytes.Clone(m.Data)},
		seq:       b.seq,
		published: time.Now(),
	}
	if !generated && b.dedupeWindow > 0 {
		b.seen[id] = s.published
		b.ids = append(b.ids, seenID{id: id, at: s.published})
	}
	for _, g := range groups {
		g.push(&entry{stored: s, attempt: 1})
	}
	return nil
}

// forget drops the IDs older than the de-duplication window. b.mu is held.
func (b *Broker) forget(now time.Time) {
	n := 0
	for n < len(b.ids) && now.Sub(b.ids[n].at) >= b.dedupeWindow {
		delete(b.seen, b.ids[n].id)
		n++
	}
	if n > 0 {
		clear(b.ids[:n])
		b.ids = b.ids[n:]
	}
}

// Subscribe starts delivering messages on topic (wildcards allowed) to h
// as cfg says; cfg comes from broker.NewSubscribeConfig. A subscription
// with cfg.Queue joins the queue group of that name on that topic. ctx
// bounds the set-up only.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, cfg broker.SubscribeConfig) (broker.Subscription, error) {
	if err := broker.ValidTopic(topic, true); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker/memory: subscribe %q: nil handler", topic)
	}
	if err := cfg.Check("broker/memory", topic); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, errs.Newf(errs.CodeOf(err), "broker/memory: subscribe %q: %w", topic, err)
	}
	if cfg.Ordered {
		cfg.Concurrency = 1
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errs.Newf(errs.FailedPrecondition, "broker/memory: subscribe %q: %w", topic, broker.ErrClosed)
	}
	key := groupKey{queue: cfg.Queue, pattern: topic}
	var g *group
	if cfg.Queue != "" {
		g = b.queues[key]
	}
	if g != nil && g.ordered != cfg.Ordered {
		return nil, errs.Newf(errs.FailedPrecondition,
			"broker/memory: subscribe %q: queue group %q is ordered=%t, this subscription ordered=%t; all members must agree",
			topic, cfg.Queue, g.ordered, cfg.Ordered)
	}
	if g == nil {
		g = newGroup(&b.mu, key, cfg.Name(topic), cfg.Ordered, b.buffer)
		b.groups[g] = struct{}{}
		if cfg.Queue != "" {
			b.queues[key] = g
		}
	}
	g.members++
	s := newSubscription(ctx, b, g, topic, h, cfg)
	b.subs[s] = struct{}{}
	s.start()
	return s, nil
}

// removeGroup forgets g, whose last member is leaving, and stops its
// redelivery timers. It returns how many messages were dropped with it.
// b.mu is held.
func (b *Broker) removeGroup(g *group) int {
	delete(b.groups, g)
	if b.queues[g.key] == g {
		delete(b.queues, g.key)
	}
	return g.remove()
}

// Close drains every open subscription (as Subscription.Drain does, all at
// once, within ctx) and makes later Publish and Subscribe calls fail. A
// second Close waits for the first to finish, until ctx ends.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		select {
		case <-b.done:
			return nil
		case <-ctx.Done():
			return errs.Newf(errs.CodeOf(ctx.Err()), "broker/memory: close: %w", ctx.Err())
		}
	}
	b.closed = true
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	defer close(b.done)

	err := broker.DrainAll(ctx, subs)

	b.mu.Lock()
	clear(b.seen)
	b.ids = nil
	b.mu.Unlock()
	return err
}
