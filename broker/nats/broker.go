package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/nats-io/nats.go"
)

// Defaults of the broker options.
const (
	// DefaultPendingMsgs is how many received messages a subscription
	// holds waiting for a handler before nats.go drops more.
	DefaultPendingMsgs = 65536
	// DefaultPendingBytes is how many bytes of received messages a
	// subscription holds waiting for a handler before nats.go drops more.
	DefaultPendingBytes = 64 << 20
)

// flushTimeout bounds the wait for the server to confirm a subscription
// (or, with WithFlush, a publish) when the context has no deadline.
const flushTimeout = 5 * time.Second

// Option configures a Broker.
type Option func(*options)

type options struct {
	errs []error // invalid options, reported by the constructor

	pendingMsgs, pendingBytes int
	flush                     bool
}

// fail records an invalid option for the constructor to report.
func (o *options) fail(err error) { o.errs = append(o.errs, err) }

// WithFlush makes Publish wait until the server has received each message:
// one round trip (a PING/PONG on the connection) per publish, within
// Publish's ctx, or 5 seconds if ctx has no deadline. It closes the window
// in which a message published just as the server goes away is lost
// without an error; delivery stays at most once. Off by default.
func WithFlush() Option {
	return func(o *options) { o.flush = true }
}

// WithPendingLimits sets how many messages and bytes each subscription
// holds waiting for a handler; nats.go drops what arrives beyond either
// (defaults DefaultPendingMsgs and DefaultPendingBytes). A negative value
// means no limit; 0 is an error.
func WithPendingLimits(msgs, bytes int) Option {
	return func(o *options) {
		if msgs == 0 || bytes == 0 {
			o.fail(fmt.Errorf("WithPendingLimits(%d, %d): want limits other than 0 (negative for none)", msgs, bytes))
			return
		}
		o.pendingMsgs, o.pendingBytes = msgs, bytes
	}
}

// Broker is a broker.Broker on core NATS; see the package documentation
// for its guarantees. Create it with New; its methods are safe for
// concurrent use.
type Broker struct {
	nc   *nats.Conn
	opts options

	mu     sync.Mutex
	closed bool
	done   chan struct{} // closed when Close has finished
	subs   map[*subscription]struct{}
	// closing is closed, readable without mu: every publish reads it,
	// from as many goroutines as publish at once.
	closing atomic.Bool
}

var _ broker.Broker = (*Broker)(nil)

// New returns a broker publishing and subscribing on nc, which stays the
// caller's to close. A nil nc or an invalid option is an InvalidArgument
// error.
func New(nc *nats.Conn, opts ...Option) (*Broker, error) {
	o := options{pendingMsgs: DefaultPendingMsgs, pendingBytes: DefaultPendingBytes}
	var problems []error
	if nc == nil {
		problems = append(problems, errors.New("nil connection"))
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		opt(&o)
	}
	problems = append(problems, o.errs...)
	if err := errors.Join(problems...); err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker/nats: %w", err)
	}
	return &Broker{nc: nc, opts: o, done: make(chan struct{}), subs: make(map[*subscription]struct{})}, nil
}

// Publish sends m on its topic. It returns once nats.go has buffered it:
// at most once, see the package documentation. An invalid topic is
// InvalidArgument; a connection that is not connected is Unavailable; a
// done ctx fails with ctx's code; after Close it fails with an error
// wrapping broker.ErrClosed.
func (b *Broker) Publish(ctx context.Context, m *broker.Message) error {
	if m == nil {
		return errs.New(errs.InvalidArgument, "broker/nats: nil message")
	}
	if err := broker.ValidTopic(m.Topic, false); err != nil {
		return err
	}
	if b.closing.Load() {
		return errs.Newf(errs.FailedPrecondition, "broker/nats: publish %q: %w", m.Topic, broker.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return errs.Newf(errs.CodeOf(err), "broker/nats: publish %q: %w", m.Topic, err)
	}
	// nats.go would keep the message in its reconnect buffer, and lose it
	// if the reconnection fails: say so now instead.
	if st := b.nc.Status(); st != nats.CONNECTED {
		return errs.Newf(errs.Unavailable, "broker/nats: publish %q: connection is %s", m.Topic, st)
	}
	msg := &nats.Msg{Subject: m.Topic, Data: m.Data}
	if len(m.Header) > 0 || m.ID != "" {
		// No headers at all otherwise: nats.go and the server parse them
		// as MIME headers on every hop.
		msg.Header = make(nats.Header, len(m.Header)+1)
		for k, vs := range m.Header {
			if strings.EqualFold(k, nats.MsgIdHdr) {
				continue // the ID is m.ID
			}
			lk := strings.ToLower(k)
			msg.Header[lk] = append(msg.Header[lk], vs...)
		}
		if m.ID != "" {
			msg.Header[nats.MsgIdHdr] = []string{m.ID} // exactly as JetStream reads it
		}
	}
	if err := b.nc.PublishMsg(msg); err != nil {
		return publishError(b.nc, m, err)
	}
	if b.opts.flush {
		return b.flush(ctx, m.Topic)
	}
	return nil
}

// flush waits for the server to have received what was published.
func (b *Broker) flush(ctx context.Context, topic string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, flushTimeout)
		defer cancel()
	}
	// A PING sent after nats.go noticed a lost connection would wait for a
	// reconnection: stop waiting as soon as the status changes. The
	// listener is registered before the status is checked, so no change
	// falls in between.
	lost := b.nc.StatusChanged(nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED)
	fctx, cancel := context.WithCancelCause(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case st, ok := <-lost:
			if ok {
				cancel(fmt.Errorf("connection %s", st))
			}
		case <-fctx.Done():
		}
	}()
	err := errConnectionLost
	if b.nc.Status() == nats.CONNECTED {
		err = b.nc.FlushWithContext(fctx)
	}
	cancel(nil)
	b.nc.RemoveStatusListener(lost)
	<-watched
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && b.nc.Status() == nats.CONNECTED:
		return errs.Newf(errs.CodeOf(ctx.Err()), "broker/nats: publish %q: not confirmed by the server before the context ended: %w", topic, err)
	}
	if cause := context.Cause(fctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		err = cause // the status change
	}
	return errs.Newf(errs.Unavailable, "broker/nats: publish %q: not confirmed by the server: %w", topic, err)
}

var errConnectionLost = errors.New("connection lost")

func publishError(nc *nats.Conn, m *broker.Message, err error) error {
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return errs.Newf(errs.ResourceExhausted, "broker/nats: publish %q: %d bytes exceed the NATS max payload of %d bytes: %w",
			m.Topic, len(m.Data), nc.MaxPayload(), err)
	case errors.Is(err, nats.ErrBadSubject):
		return errs.Newf(errs.InvalidArgument, "broker/nats: publish %q: %w", m.Topic, err)
	case errors.Is(err, nats.ErrHeadersNotSupported):
		return errs.Newf(errs.FailedPrecondition, "broker/nats: publish %q: %w", m.Topic, err)
	}
	return errs.Newf(errs.Unavailable, "broker/nats: publish %q: %w", m.Topic, err)
}

// Subscribe starts delivering messages on topic (wildcards allowed) to h
// as cfg says; cfg comes from broker.NewSubscribeConfig. It returns once
// the server has registered the interest, or, while the connection is
// reconnecting, once nats.go will register it on reconnection. ctx bounds
// the set-up only.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, cfg broker.SubscribeConfig) (broker.Subscription, error) {
	if err := broker.ValidTopic(topic, true); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker/nats: subscribe %q: nil handler", topic)
	}
	if err := cfg.Check("broker/nats", topic); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, errs.Newf(errs.CodeOf(err), "broker/nats: subscribe %q: %w", topic, err)
	}
	if cfg.Ordered {
		cfg.Concurrency = 1
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errs.Newf(errs.FailedPrecondition, "broker/nats: subscribe %q: %w", topic, broker.ErrClosed)
	}
	s, err := b.subscribe(ctx, topic, h, cfg)
	if err != nil {
		b.mu.Unlock()
		return nil, err
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()

	if b.nc.Status() != nats.CONNECTED {
		return s, nil // nats.go sends the interest when it reconnects
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, flushTimeout)
		defer cancel()
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = s.Drain(dctx) // nothing can have run long yet
		return nil, errs.Newf(errs.Unavailable, "broker/nats: subscribe %q: the server did not confirm the subscription: %w", topic, err)
	}
	return s, nil
}

// Close drains every open subscription (as Subscription.Drain does, all at
// once, within ctx) and makes later Publish and Subscribe calls fail. It
// does not close the connection. A second Close waits for the first to
// finish, until ctx ends.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		select {
		case <-b.done:
			return nil
		case <-ctx.Done():
			return errs.Newf(errs.CodeOf(ctx.Err()), "broker/nats: close: %w", ctx.Err())
		}
	}
	b.closed = true
	b.closing.Store(true)
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	defer close(b.done)

	return broker.DrainAll(ctx, subs)
}
