package nats

import (
	"context"
	"errors"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
	"github.com/nats-io/nats.go"
)

// subscription is a NATS subscription whose callback hands messages to a
// pool of workers.
type subscription struct {
	b     *Broker
	topic string
	h     broker.Handler
	cfg   broker.SubscribeConfig
	name  string
	sub   *nats.Subscription

	ctx      context.Context // the handlers', cancelled when Drain cuts them off
	cancel   context.CancelFunc
	work     chan *nats.Msg // unbuffered: the callback waits for a free worker
	quit     chan struct{}  // closed when no more work will come
	workers  sync.WaitGroup
	natsDone chan struct{} // closed once nats.go calls the callback no more
	natsOnce sync.Once
	inline   bool         // Concurrency 1: handlers run in the NATS callback
	dropped  atomic.Int64 // slow-consumer drops already logged

	mu       sync.Mutex
	draining bool
	drained  chan struct{} // closed when Drain has finished
}

var _ broker.Subscription = (*subscription)(nil)

// subscribe creates the NATS subscription and starts its workers.
func (b *Broker) subscribe(ctx context.Context, topic string, h broker.Handler, cfg broker.SubscribeConfig) (*subscription, error) {
	s := &subscription{
		b:        b,
		topic:    topic,
		h:        h,
		cfg:      cfg,
		name:     cfg.Name(topic),
		work:     make(chan *nats.Msg),
		quit:     make(chan struct{}),
		natsDone: make(chan struct{}),
		drained:  make(chan struct{}),
	}
	// Handlers outlive Subscribe's context but keep its values.
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	// With one handler at a time, nats.go's delivery goroutine is the
	// worker: no hand-off, no context switch per message.
	s.inline = cfg.Concurrency == 1
	if !s.inline {
		for range cfg.Concurrency {
			s.workers.Go(s.run)
		}
	}
	var (
		sub *nats.Subscription
		err error
	)
	if cfg.Queue != "" {
		sub, err = b.nc.QueueSubscribe(topic, cfg.Queue, s.onMsg)
	} else {
		sub, err = b.nc.Subscribe(topic, s.onMsg)
	}
	if err == nil {
		// nats.go calls the closed handler when its delivery goroutine
		// ends; if the connection closed before it was set, it never will.
		sub.SetClosedHandler(func(string) { s.natsFinished() })
		if !sub.IsValid() {
			s.natsFinished()
		}
		err = sub.SetPendingLimits(b.opts.pendingMsgs, b.opts.pendingBytes)
		if err != nil {
			_ = sub.Unsubscribe()
		}
	}
	if err != nil {
		s.cancel()
		close(s.quit)
		s.workers.Wait()
		code := errs.Unavailable
		if errors.Is(err, nats.ErrBadSubject) || errors.Is(err, nats.ErrBadQueueName) {
			code = errs.InvalidArgument
		}
		return nil, errs.Newf(code, "broker/nats: subscribe %q: %w", topic, err)
	}
	s.sub = sub
	return s, nil
}

func (s *subscription) natsFinished() { s.natsOnce.Do(func() { close(s.natsDone) }) }

// Topic implements broker.Subscription.
func (s *subscription) Topic() string { return s.topic }

// onMsg is the NATS callback, which nats.go calls on one goroutine per
// subscription: it waits for a free worker, so that messages queue in the
// subscription's pending buffer, within its limits.
func (s *subscription) onMsg(m *nats.Msg) {
	s.logDropped(m.Sub)
	if s.inline {
		if s.ctx.Err() == nil { // else cut off by Drain: dropped
			s.handle(m)
		}
		return
	}
	select {
	case s.work <- m:
	case <-s.ctx.Done(): // cut off by Drain: dropped
	}
}

// logDropped logs the messages nats.go dropped for this subscription
// since the last call.
func (s *subscription) logDropped(sub *nats.Subscription) {
	n, err := sub.Dropped()
	if err != nil {
		return
	}
	last := s.dropped.Load()
	if int64(n) > last && s.dropped.CompareAndSwap(last, int64(n)) {
		limMsgs, limBytes, _ := sub.PendingLimits()
		s.cfg.Logger.Warn("broker/nats: slow consumer: messages dropped",
			"subscription", s.name, "topic", s.topic, "dropped", int64(n)-last, "dropped_total", n,
			"pending_msgs_limit", limMsgs, "pending_bytes_limit", limBytes)
	}
}

// run is one worker.
func (s *subscription) run() {
	for {
		select {
		case m := <-s.work:
			if s.ctx.Err() != nil {
				continue // cut off by Drain: dropped
			}
			s.handle(m)
		case <-s.quit:
			return
		}
	}
}

func (s *subscription) handle(m *nats.Msg) {
	ctx, d := s.cfg.NewDelivery(s.ctx)
	fillDelivery(d, m, s.name)
	if err := s.call(ctx, d); err != nil {
		s.cfg.Logger.Warn("broker/nats: handler failed; message dropped (at most once)",
			"topic", d.Topic, "id", d.ID, "subscription", s.name, "error", err)
	}
}

// call runs the handler, turning a panic into an Internal error.
func (s *subscription) call(ctx context.Context, d *broker.Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logger.Error("broker/nats: handler panicked", "topic", d.Topic, "id", d.ID,
				"subscription", s.name, "panic", p, "stack", string(debug.Stack()))
			err = errs.Newf(errs.Internal, "broker/nats: handler for %q panicked: %v", d.Topic, p)
		}
	}()
	return s.h(ctx, d)
}

// fillDelivery describes a NATS message in d, a zero Delivery: the ID
// from Nats-Msg-Id, the other headers with lower-case keys.
func fillDelivery(d *broker.Delivery, m *nats.Msg, name string) {
	h := make(transport.Metadata, len(m.Header))
	var id string
	exact := false
	for k, vs := range m.Header {
		if strings.EqualFold(k, nats.MsgIdHdr) {
			if len(vs) > 0 && !exact {
				id, exact = vs[0], k == nats.MsgIdHdr
			}
			continue
		}
		lk := strings.ToLower(k)
		h[lk] = append(h[lk], vs...)
	}
	*d = broker.Delivery{
		Message:      broker.Message{Topic: m.Subject, ID: id, Header: h, Data: m.Data},
		Attempt:      1,
		Subscription: name,
		Kind:         transport.NATS,
	}
}

// Drain implements broker.Subscription: it removes the interest, lets the
// messages received and the handlers running finish until ctx ends, then
// cancels the handlers, drops what is left and waits for the handlers to
// return. It returns an error carrying ctx's code if it had to cut them
// off. A second Drain waits for the first, cancelling the handlers if its
// own ctx ends first.
func (s *subscription) Drain(ctx context.Context) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		select {
		case <-s.drained:
			return nil
		case <-ctx.Done():
			s.cancel()
			<-s.drained
			return errs.Newf(errs.CodeOf(ctx.Err()), "broker/nats: drain %q: %w", s.name, ctx.Err())
		}
	}
	s.draining = true
	s.mu.Unlock()
	s.b.mu.Lock()
	delete(s.b.subs, s)
	s.b.mu.Unlock()
	defer close(s.drained)
	defer s.cancel()

	var errList []error
	s.logDropped(s.sub)
	if err := s.sub.Drain(); err != nil && !connGone(err) {
		errList = append(errList, errs.Newf(errs.Unavailable, "broker/nats: drain %q: %w", s.name, err))
		_ = s.sub.Unsubscribe()
	}

	cut := false
	select {
	case <-s.natsDone: // every received message is with a worker
		close(s.quit)
		done := make(chan struct{})
		go func() {
			s.workers.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			cut = true
			s.cancel()
			<-done
		}
	case <-ctx.Done():
		cut = true
		s.cancel() // the callback drops what is left
		_ = s.sub.Unsubscribe()
		close(s.quit)
		s.workers.Wait()
		if s.inline {
			<-s.natsDone // the handler running in the callback has returned
		}
	}
	if cut {
		errList = append(errList, errs.Newf(errs.CodeOf(ctx.Err()), "broker/nats: drain %q: handlers cancelled: %w", s.name, ctx.Err()))
	}
	return errors.Join(errList...)
}

// connGone reports whether err says the subscription or its connection is
// already closed, so there is nothing left to drain on the server.
func connGone(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription) ||
		errors.Is(err, nats.ErrConnectionDraining)
}
