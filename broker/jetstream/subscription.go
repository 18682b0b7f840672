package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
	"github.com/nats-io/nats.go/jetstream"
)

// ephemeralInactivity is how long the server keeps a fan-out
// subscription's consumer after its subscriber went away.
const ephemeralInactivity = 30 * time.Second

// pullExpiry is how long one pull request lives; heart-beats come every
// half of it.
const pullExpiry = 5 * time.Second

// minPrefetch is the smallest client buffer a subscription uses.
const minPrefetch = 8

// subscription is one running subscription: a loop fetching messages and
// handing them to Concurrency workers, or, with a Concurrency of 1,
// handling them itself.
type subscription struct {
	b     *Broker
	topic string
	name  string
	h     broker.Handler
	cfg   broker.SubscribeConfig
	it    jetstream.MessagesContext

	work     chan jetstream.Msg // unbuffered: fetched messages wait for a free worker
	base     context.Context    // parent of the handlers' contexts
	cancel   context.CancelFunc // cancels them when a drain runs out of time
	stopping chan struct{}      // closed when Drain starts
	loopDone chan struct{}      // closed when the fetch loop returned
	workers  sync.WaitGroup     // the Concurrency workers; inline, Drain's hand-back
	inline   bool               // Concurrency 1: the loop runs the handler

	mu        sync.Mutex
	running   map[jetstream.Msg]struct{} // messages whose handlers run
	beatsStop chan struct{}              // closed at the end of Drain
	beatsDone chan struct{}              // closed when beats returned

	drainOnce sync.Once
	drainErr  error
}

// durableName is the consumer name of a queue subscription: one per queue
// and topic, as core NATS queue groups are per subject.
func durableName(queue, topic string) string {
	r := strings.NewReplacer(".", "_", "*", "star", ">", "all")
	return queue + "__" + r.Replace(topic)
}

func (b *Broker) subscribe(ctx context.Context, topic string, h broker.Handler, cfg broker.SubscribeConfig) (*subscription, error) {
	stream, err := b.js.StreamNameBySubject(ctx, topic)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, errs.Newf(errs.FailedPrecondition, "broker/jetstream: subscribe %q: no stream captures the topic; provision one with jetstream.WithStream", topic)
		}
		return nil, failure(ctx, fmt.Sprintf("subscribe %q: find its stream", topic), err)
	}
	cc := jetstream.ConsumerConfig{
		FilterSubject: topic,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    -1, // Ferry counts deliveries: see the package doc
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if cfg.Queue != "" {
		cc.Durable = durableName(cfg.Queue, topic)
		cc.Description = fmt.Sprintf("Ferry queue %s on %s", cfg.Queue, topic)
		if cfg.DeliverNew {
			cc.DeliverPolicy = jetstream.DeliverNewPolicy
		}
	} else {
		cc.DeliverPolicy = jetstream.DeliverNewPolicy
		cc.InactiveThreshold = ephemeralInactivity
	}
	if cfg.Ordered {
		cc.MaxAckPending = 1
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, stream, cc)
	if err != nil {
		return nil, failure(ctx, fmt.Sprintf("subscribe %q: create consumer on stream %s", topic, stream), err)
	}
	// Prefetch keeps pull requests few: with a buffer of n, nats.go asks
	// for more every n/2 messages. It is never below minPrefetch: with
	// very small buffers nats.go 1.55 sometimes skips a refill (a new pull
	// is not sent while the previous one counts as in progress) and waits
	// for its missed-heart-beat timer; pull requests expire after
	// pullExpiry instead of nats.go's 30s, so such a stall lasts seconds
	// at most.
	it, err := cons.Messages(jetstream.PullMaxMessages(max(b.prefetch, 2*cfg.Concurrency, minPrefetch)), jetstream.PullExpiry(pullExpiry))
	if err != nil {
		return nil, failure(ctx, fmt.Sprintf("subscribe %q: start fetching", topic), err)
	}
	s := &subscription{
		b:         b,
		topic:     topic,
		name:      cfg.Name(topic),
		h:         h,
		cfg:       cfg,
		it:        it,
		work:      make(chan jetstream.Msg),
		stopping:  make(chan struct{}),
		loopDone:  make(chan struct{}),
		running:   make(map[jetstream.Msg]struct{}),
		beatsStop: make(chan struct{}),
		beatsDone: make(chan struct{}),
	}
	// Handlers outlive the Subscribe call; they keep ctx's values only.
	s.base, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	// With one handler at a time the loop is the worker: no hand-off, no
	// goroutine switch per message.
	s.inline = cfg.Concurrency == 1
	if !s.inline {
		s.workers.Add(cfg.Concurrency)
		for range cfg.Concurrency {
			go s.worker()
		}
	}
	go s.loop()
	go s.beats()
	return s, nil
}

// Topic returns the subscribed topic.
func (s *subscription) Topic() string { return s.topic }

func (s *subscription) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// loop hands fetched messages to the workers (inline, handles them
// itself), and once Drain starts, hands what is still buffered back to the
// stream. It closes work when it returns, so the workers finish.
func (s *subscription) loop() {
	defer close(s.loopDone)
	defer close(s.work)
	for {
		msg, err := s.it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			// Missed heart-beats and reconnects: the iterator recovers.
			s.cfg.Logger.Warn("broker/jetstream: fetching", "topic", s.topic, "subscription", s.name, "error", err)
			continue
		}
		if s.isStopping() {
			s.handBack(msg)
			s.handBackBuffered()
			return
		}
		if s.inline {
			s.handle(msg)
			continue
		}
		select {
		case s.work <- msg:
		case <-s.stopping:
			s.handBack(msg)
			s.handBackBuffered()
			return
		}
	}
}

// worker handles messages until the loop closes work. Workers live as
// long as the subscription: a goroutine per message would grow a fresh
// stack for every decode.
func (s *subscription) worker() {
	defer s.workers.Done()
	for msg := range s.work {
		s.handle(msg)
	}
}

// handBackBuffered returns what the iterator still buffers, after Drain.
func (s *subscription) handBackBuffered() {
	for {
		msg, err := s.it.Next()
		if err != nil {
			return
		}
		s.handBack(msg)
	}
}

// handBack returns an unstarted message for immediate redelivery.
func (s *subscription) handBack(msg jetstream.Msg) {
	if err := msg.Nak(); err != nil {
		s.cfg.Logger.Warn("broker/jetstream: handing back a message", "topic", msg.Subject(), "subscription", s.name, "error", err)
	}
}

// handle runs one message to its outcome.
func (s *subscription) handle(msg jetstream.Msg) {
	ctx, d := s.cfg.NewDelivery(s.base)
	s.describe(d, msg)
	s.mu.Lock()
	s.running[msg] = struct{}{}
	s.mu.Unlock()
	err := s.run(ctx, d)
	s.mu.Lock()
	delete(s.running, msg)
	s.mu.Unlock()
	switch {
	case err == nil:
		if aerr := msg.Ack(); aerr != nil {
			s.cfg.Logger.Warn("broker/jetstream: acknowledging; the message will be redelivered", "topic", d.Topic, "sequence", d.Sequence, "error", aerr)
		}
	case s.base.Err() != nil:
		// Cut short by a drain: not the handler's failure.
		s.handBack(msg)
	case broker.IsPermanent(err) || d.Attempt >= s.cfg.MaxDeliver:
		s.deadLetter(msg, d, err)
	default:
		if nerr := msg.NakWithDelay(s.cfg.Delay(d.Attempt)); nerr != nil {
			s.cfg.Logger.Warn("broker/jetstream: negative acknowledgement; redelivery after the ack wait", "topic", d.Topic, "sequence", d.Sequence, "error", nerr)
		}
	}
}

// run calls the handler, turning a panic into an error.
func (s *subscription) run(ctx context.Context, d *broker.Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errs.Newf(errs.Internal, "broker/jetstream: handler panic on %s: %v", d.Topic, r)
		}
	}()
	return s.h(ctx, d)
}

// beats heart-beats the messages whose handlers run: every AckWait/3 it
// tells the server that each one is still in progress, so a handler's first
// beat comes at most AckWait/3 after it started and each later one
// AckWait/3 after the last: two thirds of AckWait to spare for a busy
// machine. One goroutine per subscription, not per message.
func (s *subscription) beats() {
	defer close(s.beatsDone)
	t := time.NewTicker(s.cfg.AckWait / 3)
	defer t.Stop()
	var due []jetstream.Msg
	for {
		select {
		case <-s.beatsStop:
			return
		case <-s.base.Done():
			return // a drain gave up on the handlers: let the stream redeliver
		case <-t.C:
			due = due[:0]
			s.mu.Lock()
			for msg := range s.running {
				due = append(due, msg)
			}
			s.mu.Unlock()
			for _, msg := range due {
				_ = msg.InProgress()
			}
		}
	}
}

// deadLetter stores the dead letter, then terminates the original; if the
// letter cannot be stored the original comes back to try again.
func (s *subscription) deadLetter(msg jetstream.Msg, d *broker.Delivery, cause error) {
	log := s.cfg.Logger.With("topic", d.Topic, "id", d.ID, "sequence", d.Sequence, "deliveries", d.Attempt, "subscription", s.name, "error", cause)
	if s.cfg.DeadLetter == "" {
		log.Error("broker/jetstream: dropping a message that failed for good (no dead-letter subject)")
		_ = msg.TermWithReason("failed for good")
		return
	}
	ctx, cancel := context.WithTimeout(s.base, s.cfg.AckWait/3)
	defer cancel()
	if err := s.b.Publish(ctx, broker.DeadLetterMessage(d, s.cfg.DeadLetter, cause)); err != nil {
		log.Error("broker/jetstream: storing a dead letter failed; the message will be retried", "dead_letter", s.cfg.DeadLetter, "publish_error", err)
		_ = msg.NakWithDelay(s.cfg.Delay(d.Attempt))
		return
	}
	log.Warn("broker/jetstream: dead-lettered", "dead_letter", s.cfg.DeadLetter)
	if err := msg.TermWithReason("dead-lettered to " + s.cfg.DeadLetter); err != nil {
		log.Warn("broker/jetstream: terminating a dead-lettered message; its dead letter is de-duplicated if it comes back", "term_error", err)
	}
}

// describe describes msg to the handler in d, a zero Delivery.
func (s *subscription) describe(d *broker.Delivery, msg jetstream.Msg) {
	*d = broker.Delivery{
		Message:      broker.Message{Topic: msg.Subject(), Data: msg.Data()},
		Attempt:      1,
		Subscription: s.name,
		Kind:         transport.NATS,
	}
	if h := msg.Headers(); len(h) > 0 {
		d.Header = make(transport.Metadata, len(h))
		for k, vs := range h {
			if strings.EqualFold(k, jetstream.MsgIDHeader) {
				d.ID = firstOf(vs)
				continue
			}
			d.Header[strings.ToLower(k)] = vs
		}
	} else {
		d.Header = transport.Metadata{}
	}
	// The delivery count, the stream sequence and the time stored, read from
	// the ack subject as Metadata reads them, without its allocation.
	if md, ok := ackMetadata(msg.Reply()); ok {
		d.Attempt = int(md.delivered)
		d.Sequence = md.streamSeq
		d.Published = time.Unix(0, int64(md.timestamp))
	} else if md, err := msg.Metadata(); err == nil {
		d.Attempt = int(md.NumDelivered)
		d.Sequence = md.Sequence.Stream
		d.Published = md.Timestamp
	}
}

func firstOf(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// Drain stops fetching and hands buffered messages back, waits for the
// handlers in flight until ctx ends, then cancels them; their messages are
// handed back. It returns ctx's error when handlers had to be cancelled.
func (s *subscription) Drain(ctx context.Context) error {
	s.drainOnce.Do(func() {
		close(s.stopping)
		s.it.Drain()
		if s.inline {
			// The loop may be running a handler: what is buffered goes
			// back now, not when it returns.
			s.workers.Go(s.handBackBuffered)
		}
		_, finished := broker.AwaitHandlers(ctx, s.loopDone, &s.workers)
		if !finished {
			// Like http.Server.Shutdown, do not wait on handlers that
			// ignore their context: they stop heart-beating now, so the
			// stream redelivers their messages after the ack wait.
			s.cancel()
			s.drainErr = errs.Newf(errs.CodeOf(ctx.Err()), "broker/jetstream: drain %q: handlers still running when the context ended; their messages are handed back: %v", s.topic, ctx.Err())
		}
		s.cancel()
		close(s.beatsStop)
		<-s.beatsDone
		s.b.forget(s)
	})
	return s.drainErr
}
