package rabbitmq

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	amqp "github.com/rabbitmq/amqp091-go"
)

// fanoutExpiry is how long the server keeps a fan-out subscription's
// queue after its consumer went away (a reconnect within it loses
// nothing).
const fanoutExpiry = 30 * time.Second

// subscription is one running subscription: a loop taking deliveries from
// the consumer and Concurrency workers running them.
type subscription struct {
	b      *Broker
	topic  string
	name   string
	h      broker.Handler
	cfg    broker.SubscribeConfig
	queue  string          // the queue consumed
	group  bool            // a durable queue group, else fan-out
	local  bool            // retries wait in the process (fan-out, ordered)
	delays []time.Duration // back-off delays with a retry queue each
	tag    string          // consumer tag

	work       chan amqp.Delivery // unbuffered: deliveries wait for a free worker
	base       context.Context    // parent of the handlers' contexts
	cancel     context.CancelFunc // cancels them when a drain runs out of time
	stopping   chan struct{}      // closed when Drain starts
	stopCtx    context.Context    // ends when Drain starts
	stopCancel context.CancelFunc
	loopDone   chan struct{} // closed when the loop returned
	workers    sync.WaitGroup

	mu         sync.Mutex
	ch         *amqp.Channel // the consumer's channel
	deliveries <-chan amqp.Delivery

	drainOnce sync.Once
	drainErr  error
}

func (b *Broker) subscribe(ctx context.Context, topic string, h broker.Handler, cfg broker.SubscribeConfig) (*subscription, error) {
	s := &subscription{
		b:        b,
		topic:    topic,
		name:     cfg.Name(topic),
		h:        h,
		cfg:      cfg,
		group:    cfg.Queue != "",
		tag:      "ferry-" + rand.Text(),
		work:     make(chan amqp.Delivery),
		stopping: make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	if s.group {
		s.queue = GroupQueue(b.o.exchange, cfg.Queue, topic)
	} else {
		s.queue = fanoutQueue(b.o.exchange, topic, strings.ToLower(rand.Text()[:12]))
	}
	s.local = !s.group || cfg.Ordered
	s.delays = retryDelays(cfg)
	sess, err := b.session(ctx)
	if err != nil {
		return nil, wrap(fmt.Sprintf("subscribe %q", topic), err)
	}
	ch, dels, err := s.setup(ctx, sess)
	if err != nil {
		return nil, err
	}
	s.ch, s.deliveries = ch, dels
	// Handlers outlive the Subscribe call; they keep ctx's values only.
	s.base, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.stopCtx, s.stopCancel = context.WithCancel(context.Background())
	s.workers.Add(cfg.Concurrency)
	for range cfg.Concurrency {
		go s.worker()
	}
	go s.loop()
	return s, nil
}

// setup opens a channel, declares the subscription's queues and binding,
// and starts consuming.
func (s *subscription) setup(ctx context.Context, sess *session) (*amqp.Channel, <-chan amqp.Delivery, error) {
	what := fmt.Sprintf("subscribe %q", s.topic)
	ch, err := sess.conn.Channel()
	if err != nil {
		return nil, nil, failure(ctx, what+": open a channel", err)
	}
	fail := func(step string, err error) (*amqp.Channel, <-chan amqp.Delivery, error) {
		_ = ch.Close()
		err = failure(ctx, what+": "+step, err)
		if errs.CodeOf(err) == errs.FailedPrecondition {
			err = fmt.Errorf("%w (a queue of that name exists with other arguments: another queue type, or ordered and unordered subscriptions sharing a queue group; delete it or use another group)", err)
		}
		return nil, nil, err
	}
	// Prefetch = Concurrency: the server hands out no more than the
	// workers can run, so nothing waits unstarted in the client.
	if err := ch.Qos(s.cfg.Concurrency, 0, false); err != nil {
		return fail("set the prefetch", err)
	}
	qtype := s.b.o.queueType
	if s.group {
		args := amqp.Table{amqp.QueueTypeArg: qtype}
		if s.cfg.Ordered {
			args[amqp.SingleActiveConsumerArg] = true
		}
		if _, err := ch.QueueDeclare(s.queue, true, false, false, false, args); err != nil {
			return fail(fmt.Sprintf("declare queue %q", s.queue), err)
		}
		s.b.declared(s.queue)
		for _, d := range s.delays {
			rq := RetryQueue(s.queue, d)
			rargs := amqp.Table{
				amqp.QueueTypeArg:           qtype,
				amqp.QueueMessageTTLArg:     d.Milliseconds(),
				"x-dead-letter-exchange":    "", // the default exchange: straight to
				"x-dead-letter-routing-key": s.queue,
			}
			if qtype == Quorum {
				// Expired messages move with publisher-confirm semantics.
				rargs["x-dead-letter-strategy"] = "at-least-once"
				rargs[amqp.QueueOverflowArg] = amqp.QueueOverflowRejectPublish
			}
			if _, err := ch.QueueDeclare(rq, true, false, false, false, rargs); err != nil {
				return fail(fmt.Sprintf("declare retry queue %q", rq), err)
			}
			s.b.declared(rq)
		}
	} else {
		args := amqp.Table{amqp.QueueTypeArg: Classic, amqp.QueueTTLArg: fanoutExpiry.Milliseconds()}
		if _, err := ch.QueueDeclare(s.queue, false, false, false, false, args); err != nil {
			return fail(fmt.Sprintf("declare queue %q", s.queue), err)
		}
	}
	if err := ch.QueueBind(s.queue, BindingKey(s.topic), s.b.o.exchange, false, nil); err != nil {
		return fail(fmt.Sprintf("bind queue %q to %q", s.queue, BindingKey(s.topic)), err)
	}
	dels, err := ch.Consume(s.queue, s.tag, false, false, false, false, nil)
	if err != nil {
		return fail(fmt.Sprintf("consume queue %q", s.queue), err)
	}
	return ch, dels, nil
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

// loop hands deliveries to the workers; when the channel closes (the
// connection was lost) it sets the consumer up again on the next
// connection. Once Drain starts it cancels the consumer and hands back
// what was delivered but not started. It closes work when it returns.
func (s *subscription) loop() {
	defer close(s.loopDone)
	defer close(s.work)
	for {
		s.mu.Lock()
		dels := s.deliveries
		s.mu.Unlock()
		select {
		case <-s.stopping:
			s.stopConsuming()
			return
		case d, ok := <-dels:
			if !ok {
				if s.isStopping() {
					return
				}
				s.cfg.Logger.Warn("broker/rabbitmq: consumer channel closed; resuming on the next connection", "topic", s.topic, "subscription", s.name)
				if !s.resume() {
					return
				}
				continue
			}
			select {
			case s.work <- d:
			case <-s.stopping:
				s.handBack(d)
				s.stopConsuming()
				return
			}
		}
	}
}

// resume sets the consumer up again, with back-off, until it works or
// Drain starts.
func (s *subscription) resume() bool {
	wait := minBackoff
	for {
		sess, err := s.b.session(s.stopCtx)
		if err != nil {
			return false
		}
		ch, dels, err := s.setup(s.stopCtx, sess)
		if err == nil {
			s.mu.Lock()
			s.ch, s.deliveries = ch, dels
			s.mu.Unlock()
			s.cfg.Logger.Info("broker/rabbitmq: consumer resumed", "topic", s.topic, "subscription", s.name, "queue", s.queue)
			return true
		}
		s.cfg.Logger.Debug("broker/rabbitmq: resuming the consumer", "topic", s.topic, "subscription", s.name, "error", err, "retry_in", wait)
		select {
		case <-s.stopping:
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, maxBackoff)
	}
}

// stopConsuming cancels the consumer and hands back what it still
// delivers.
func (s *subscription) stopConsuming() {
	s.mu.Lock()
	ch, dels := s.ch, s.deliveries
	s.mu.Unlock()
	if err := ch.Cancel(s.tag, false); err != nil && !ch.IsClosed() {
		_ = ch.Close() // the server hands back everything unacknowledged
	}
	for d := range dels {
		s.handBack(d)
	}
}

// worker handles deliveries until the loop closes work.
func (s *subscription) worker() {
	defer s.workers.Done()
	for d := range s.work {
		s.handle(d)
	}
}

// handBack returns an unfinished message to its queue at once.
func (s *subscription) handBack(d amqp.Delivery) {
	if err := d.Nack(false, true); err != nil {
		// The channel is gone: the server requeued it already.
		s.cfg.Logger.Debug("broker/rabbitmq: handing back a message", "topic", s.topic, "subscription", s.name, "error", err)
	}
}

func (s *subscription) ack(d amqp.Delivery, del *broker.Delivery) {
	if err := d.Ack(false); err != nil {
		s.cfg.Logger.Warn("broker/rabbitmq: acknowledging failed (connection lost?); the message will be redelivered", "topic", del.Topic, "id", del.ID, "subscription", s.name, "error", err)
	}
}

// handle runs one delivery to its outcome.
func (s *subscription) handle(d amqp.Delivery) {
	del := s.delivery(d)
	for {
		err := s.run(broker.NewDeliveryContext(s.base, del), del)
		switch {
		case err == nil:
			s.ack(d, del)
			return
		case s.base.Err() != nil:
			// Cut short by a drain: not the handler's failure.
			s.handBack(d)
			return
		case broker.IsPermanent(err) || del.Attempt >= s.cfg.MaxDeliver:
			s.deadLetter(d, del, err)
			return
		case s.local:
			if !s.sleep(s.cfg.Delay(del.Attempt)) {
				s.handBack(d)
				return
			}
			next := *del
			next.Header = del.Header.Clone()
			next.Attempt++
			del = &next
		default:
			s.later(d, del)
			return
		}
	}
}

// sleep waits d, or until a drain gives up on the handlers.
func (s *subscription) sleep(d time.Duration) bool {
	if d <= 0 {
		return s.base.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.base.Done():
		return false
	}
}

// later has the message delivered again after the back-off of its
// attempt: a queue group parks it in the retry queue of that delay (whose
// expired messages go back to this group's queue only) with the next
// attempt number, confirmed, and only then acknowledges the original — a
// crash in between leaves a duplicate, never a loss. Where parking fails,
// and for fan-out and ordered subscriptions, the message waits in the
// process and is handed back.
func (s *subscription) later(d amqp.Delivery, del *broker.Delivery) {
	delay := s.cfg.Delay(del.Attempt)
	if !s.local {
		key := s.queue
		if delay > 0 {
			key = RetryQueue(s.queue, delay)
		}
		p := publishing(del.ID, del.Header, del.Data, del.Published)
		if p.Headers == nil {
			p.Headers = amqp.Table{}
		}
		p.Headers[attemptHeader] = int64(del.Attempt + 1)
		p.Headers[topicHeader] = del.Topic
		ctx, cancel := context.WithTimeout(s.base, s.b.o.publishTimeout)
		err := s.b.publishMandatory(ctx, "", key, p)
		cancel()
		if err == nil {
			s.ack(d, del)
			return
		}
		s.cfg.Logger.Warn("broker/rabbitmq: parking a message for redelivery failed; it waits here instead", "topic", del.Topic, "id", del.ID, "subscription", s.name, "retry_queue", key, "error", err)
	}
	s.sleep(delay)
	s.handBack(d)
}

// run calls the handler, turning a panic into an error.
func (s *subscription) run(ctx context.Context, d *broker.Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errs.Newf(errs.Internal, "broker/rabbitmq: handler panic on %s: %v", d.Topic, r)
		}
	}()
	return s.h(ctx, d)
}

// deadLetter publishes the dead letter with a confirm, then acknowledges
// the original; if the letter cannot be stored the original comes back
// after the back-off to try again.
func (s *subscription) deadLetter(d amqp.Delivery, del *broker.Delivery, cause error) {
	log := s.cfg.Logger.With("topic", del.Topic, "id", del.ID, "deliveries", del.Attempt, "subscription", s.name, "error", cause)
	if s.cfg.DeadLetter == "" {
		log.Error("broker/rabbitmq: dropping a message that failed for good (no dead-letter subject)")
		s.ack(d, del)
		return
	}
	dl := broker.DeadLetterMessage(del, s.cfg.DeadLetter, cause)
	ctx, cancel := context.WithTimeout(s.base, s.b.o.publishTimeout)
	defer cancel()
	if err := s.b.publishMandatory(ctx, s.b.o.exchange, dl.Topic, publishing(dl.ID, dl.Header, dl.Data, time.Now())); err != nil {
		log.Error("broker/rabbitmq: storing a dead letter failed; the message will be retried", "dead_letter", s.cfg.DeadLetter, "publish_error", err)
		s.later(d, del)
		return
	}
	log.Warn("broker/rabbitmq: dead-lettered", "dead_letter", s.cfg.DeadLetter)
	s.ack(d, del)
}

// delivery describes d to the handler. Attempt is the attempt a retry
// queue carried (1 when none) plus the server's count of hand-backs
// (x-delivery-count on quorum queues; the redelivered flag on classic
// ones).
func (s *subscription) delivery(d amqp.Delivery) *broker.Delivery {
	attempt := 1
	if n, ok := intHeader(d.Headers, attemptHeader); ok && n >= 1 {
		attempt = int(n)
	}
	if n, ok := intHeader(d.Headers, "x-delivery-count"); ok && n > 0 {
		attempt += int(n)
	} else if d.Redelivered {
		attempt++
	}
	topic := d.RoutingKey
	if t, ok := d.Headers[topicHeader].(string); ok && t != "" {
		topic = t
	}
	return &broker.Delivery{
		Message:      broker.Message{Topic: topic, ID: d.MessageId, Header: fromTable(d.Headers), Data: d.Body},
		Attempt:      attempt,
		Published:    d.Timestamp,
		Subscription: s.name,
		Kind:         Kind,
	}
}

// Drain cancels the consumer and hands back what was delivered but not
// started, waits for the handlers in flight until ctx ends, then cancels
// them; their messages are handed back. It returns ctx's error when
// handlers had to be cancelled. A fan-out subscription's queue is deleted.
func (s *subscription) Drain(ctx context.Context) error {
	s.drainOnce.Do(func() {
		close(s.stopping)
		s.stopCancel()
		inFlight, finished := broker.AwaitHandlers(ctx, s.loopDone, &s.workers)
		if !finished {
			// Like http.Server.Shutdown, do not wait on handlers that
			// ignore their context: closing the channel below hands
			// their messages back.
			s.cancel()
			s.drainErr = errs.Newf(errs.CodeOf(ctx.Err()), "broker/rabbitmq: drain %q: handlers still running when the context ended; their messages are handed back: %v", s.topic, ctx.Err())
			// Handlers that heed the cancel hand back on their own; give
			// them the moment that takes.
			select {
			case <-inFlight:
			case <-time.After(100 * time.Millisecond):
			}
		}
		s.cancel()
		s.mu.Lock()
		ch := s.ch
		s.mu.Unlock()
		if !s.group {
			_, _ = ch.QueueDelete(s.queue, false, false, false)
		}
		_ = ch.Close()
		s.b.forget(s)
	})
	return s.drainErr
}
