package rabbitmq

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Kind is the transport kind of deliveries from this broker.
const Kind transport.Kind = "rabbitmq"

// Defaults.
const (
	// DefaultExchange is the topic exchange every topic is published to.
	DefaultExchange = "ferry"
	// DefaultPublishTimeout bounds a Publish whose context has no deadline:
	// how long it waits for a connection and the broker's confirm.
	DefaultPublishTimeout = 30 * time.Second
	// DefaultURL is where a local RabbitMQ listens with its default user.
	DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"
)

// Queue types for durable queues (WithQueueType).
const (
	Quorum  = "quorum"
	Classic = "classic"
)

// Reconnection back-off: it starts at minBackoff and doubles up to
// maxBackoff.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// dialTimeout bounds one connection attempt (TCP and AMQP handshake).
const dialTimeout = 10 * time.Second

// Option configures a Broker.
type Option func(*options)

type options struct {
	exchange       string
	queueType      string
	deadLetters    bool
	publishTimeout time.Duration
	amqpConfig     amqp.Config
	groups         [][2]string // queue, topic
	logger         *slog.Logger
	errs           []error
}

// WithExchange sets the topic exchange (default DefaultExchange). Queue
// names start with it, so brokers on different exchanges share nothing.
func WithExchange(name string) Option {
	return func(o *options) {
		if err := checkExchange(name); err != nil {
			o.errs = append(o.errs, fmt.Errorf("exchange %q: %w", name, err))
			return
		}
		o.exchange = name
	}
}

func checkExchange(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > 100:
		return errors.New("longer than 100 bytes")
	case strings.HasPrefix(name, "amq."):
		return errors.New(`"amq." names are reserved by RabbitMQ`)
	case strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return errors.New("spaces or control characters")
	}
	return nil
}

// WithQueueType sets the type of the durable queues (queue groups, their
// retry queues and the dead-letter queue): Quorum (default; replicated,
// RabbitMQ 3.10+) or Classic.
func WithQueueType(t string) Option {
	return func(o *options) {
		if t != Quorum && t != Classic {
			o.errs = append(o.errs, fmt.Errorf("queue type %q: want %q or %q", t, Quorum, Classic))
			return
		}
		o.queueType = t
	}
}

// WithoutDeadLetterQueue stops New from declaring the queue that keeps the
// default dead-letter subjects ("<exchange>.dead-letters", bound to
// "dlq.#"). Dead letters then need a queue of your own bound to their
// subjects, or dead-lettering fails and the message is retried.
func WithoutDeadLetterQueue() Option {
	return func(o *options) { o.deadLetters = false }
}

// WithQueueGroup makes New declare the queue of the queue group queue on
// topic (GroupQueue names it) and bind it, so that messages published
// before the group's first subscription are kept for it. Without it the
// queue comes with the first Subscribe, and what was published to the
// topic before is not routed to it — an AMQP exchange keeps nothing for
// queues that do not exist yet. Give it once per group; an Ordered
// subscription cannot share a queue declared so (its queue is declared
// single-active-consumer).
func WithQueueGroup(queue, topic string) Option {
	return func(o *options) {
		if _, err := broker.NewSubscribeConfig(topic, broker.Queue(queue)); err != nil {
			o.errs = append(o.errs, fmt.Errorf("queue group: %w", err))
			return
		}
		if err := checkSubscribeTopic(topic); err != nil {
			o.errs = append(o.errs, fmt.Errorf("queue group: %w", err))
			return
		}
		o.groups = append(o.groups, [2]string{queue, topic})
	}
}

// WithPublishTimeout bounds a Publish whose context has no deadline
// (default DefaultPublishTimeout).
func WithPublishTimeout(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.errs = append(o.errs, fmt.Errorf("publish timeout %v: want more than 0", d))
			return
		}
		o.publishTimeout = d
	}
}

// WithAMQPConfig sets the client configuration (TLS, heartbeat,
// properties, SASL); its Dial is replaced by one bounded by New's context
// and a 10s timeout.
func WithAMQPConfig(c amqp.Config) Option {
	return func(o *options) { o.amqpConfig = c }
}

// WithLogger sets the logger for connection events and subscription
// failures (default slog.Default()); a subscription's broker.WithLogger
// wins for its own.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.errs = append(o.errs, errors.New("nil logger"))
			return
		}
		o.logger = l
	}
}

// Broker is a broker.Broker on RabbitMQ. Create it with New; it is safe for
// concurrent use.
type Broker struct {
	url      string
	redacted string
	o        options

	mu      sync.Mutex
	sess    *session                            // nil while disconnected
	ready   chan struct{}                       // closed once sess is set
	subs    broker.Subscriptions[*subscription] // closed once Close started: Publish and Subscribe refuse
	closed  bool                                // Close drained the subscriptions: the connection goes
	done    chan struct{}                       // closed by Close: stops the supervisor
	superUp chan struct{}                       // closed when the supervisor returned

	sysMu sync.Mutex // one mandatory publish at a time on session.sys

	qmu    sync.Mutex
	queues map[string]struct{} // durable queues declared, for tests to clean up
}

// declared records a durable queue the broker declared.
func (b *Broker) declared(names ...string) {
	b.qmu.Lock()
	defer b.qmu.Unlock()
	if b.queues == nil {
		b.queues = map[string]struct{}{}
	}
	for _, n := range names {
		b.queues[n] = struct{}{}
	}
}

var _ broker.Broker = (*Broker)(nil)

// session is one connection and its publishing channels.
type session struct {
	conn    *amqp.Connection
	pub     *amqp.Channel    // confirm mode; every Publish shares it
	sys     *amqp.Channel    // confirm mode, mandatory publishes one at a time
	returns chan amqp.Return // sys's unroutable messages
	lost    chan *amqp.Error // the connection closed
	pubLost chan *amqp.Error // pub closed
	sysLost chan *amqp.Error // sys closed
	gen     uint64           // counts connections, for logs
}

// New connects to the RabbitMQ server at url (amqp:// or amqps://),
// declares the exchange and the dead-letter queue, and keeps the
// connection up from then on; ctx bounds the first connection. Invalid
// options are an InvalidArgument error; a server that cannot be reached,
// an Unavailable one naming the address (without the password).
func New(ctx context.Context, url string, opts ...Option) (*Broker, error) {
	o := options{exchange: DefaultExchange, queueType: Quorum, deadLetters: true, publishTimeout: DefaultPublishTimeout, logger: slog.Default()}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	uri, err := amqp.ParseURI(url)
	if err != nil {
		o.errs = append(o.errs, fmt.Errorf("url: %w", err))
	}
	if err := errors.Join(o.errs...); err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker/rabbitmq: %w", err)
	}
	b := &Broker{
		url:     url,
		o:       o,
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
		superUp: make(chan struct{}),
	}
	b.redacted = redact(uri)
	sess, err := b.connect(ctx, 1)
	if err != nil {
		return nil, err
	}
	b.sess = sess
	close(b.ready)
	go b.supervise(sess)
	return b, nil
}

// redact returns uri without its password.
func redact(u amqp.URI) string {
	u.Password = ""
	s := u.String()
	return strings.Replace(s, u.Username+":@", u.Username+"@", 1)
}

// connect dials and declares the broker's topology.
func (b *Broker) connect(ctx context.Context, gen uint64) (*session, error) {
	timeout := dialTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(dl)), time.Millisecond)
	}
	cfg := b.o.amqpConfig
	cfg.Dial = amqp.DefaultDial(timeout)
	if cfg.Properties == nil {
		cfg.Properties = amqp.NewConnectionProperties()
		cfg.Properties.SetClientConnectionName("ferry")
	}
	conn, err := amqp.DialConfig(b.url, cfg)
	if err != nil {
		return nil, errs.Newf(errs.Unavailable, "broker/rabbitmq: connect to %s: %w", b.redacted, err)
	}
	s := &session{conn: conn, gen: gen}
	fail := func(what string, err error) (*session, error) {
		_ = conn.Close()
		return nil, failure(ctx, what, err)
	}
	s.lost = conn.NotifyClose(make(chan *amqp.Error, 1))
	if s.pub, err = conn.Channel(); err != nil {
		return fail("open a channel", err)
	}
	if err := s.pub.Confirm(false); err != nil {
		return fail("turn on publisher confirms", err)
	}
	if err := s.pub.ExchangeDeclare(b.o.exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fail(fmt.Sprintf("declare exchange %q", b.o.exchange), err)
	}
	if b.o.deadLetters {
		q := b.deadLetterQueue()
		if _, err := s.pub.QueueDeclare(q, true, false, false, false, amqp.Table{amqp.QueueTypeArg: b.o.queueType}); err != nil {
			return fail(fmt.Sprintf("declare dead-letter queue %q (does it exist with another type?)", q), err)
		}
		if err := s.pub.QueueBind(q, strings.TrimSuffix(broker.DeadLetterPrefix, ".")+".#", b.o.exchange, false, nil); err != nil {
			return fail(fmt.Sprintf("bind dead-letter queue %q", q), err)
		}
		b.declared(q)
	}
	for _, g := range b.o.groups {
		q := GroupQueue(b.o.exchange, g[0], g[1])
		if _, err := s.pub.QueueDeclare(q, true, false, false, false, amqp.Table{amqp.QueueTypeArg: b.o.queueType}); err != nil {
			return fail(fmt.Sprintf("declare queue %q of group %s on %q (does it exist with other arguments?)", q, g[0], g[1]), err)
		}
		if err := s.pub.QueueBind(q, BindingKey(g[1]), b.o.exchange, false, nil); err != nil {
			return fail(fmt.Sprintf("bind queue %q", q), err)
		}
		b.declared(q)
	}
	if s.sys, err = conn.Channel(); err != nil {
		return fail("open a channel", err)
	}
	if err := s.sys.Confirm(false); err != nil {
		return fail("turn on publisher confirms", err)
	}
	s.returns = s.sys.NotifyReturn(make(chan amqp.Return, 16))
	s.pubLost = s.pub.NotifyClose(make(chan *amqp.Error, 1))
	s.sysLost = s.sys.NotifyClose(make(chan *amqp.Error, 1))
	return s, nil
}

// deadLetterQueue names the queue that keeps the default dead letters.
func (b *Broker) deadLetterQueue() string { return b.o.exchange + ".dead-letters" }

// supervise waits for the connection to fail and connects again, with
// back-off, until Close. Subscriptions resume on their own once a new
// session is there.
func (b *Broker) supervise(s *session) {
	defer close(b.superUp)
	for {
		var cause *amqp.Error
		select {
		case <-b.done:
			return
		case cause = <-s.lost:
		case cause = <-s.pubLost:
		case cause = <-s.sysLost:
		}
		_ = s.conn.Close() // a channel failed: start over with everything
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return
		}
		b.sess = nil
		b.ready = make(chan struct{})
		b.mu.Unlock()
		b.o.logger.Warn("broker/rabbitmq: connection lost; reconnecting", "server", b.redacted, "error", cause)
		next, ok := b.reconnect(s.gen + 1)
		if !ok {
			return
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			_ = next.conn.Close()
			return
		}
		b.sess = next
		close(b.ready)
		b.mu.Unlock()
		b.o.logger.Info("broker/rabbitmq: reconnected", "server", b.redacted, "connection", next.gen)
		s = next
	}
}

// reconnect dials until it succeeds or the broker closes.
func (b *Broker) reconnect(gen uint64) (*session, bool) {
	wait := minBackoff
	for {
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		s, err := b.connect(ctx, gen)
		cancel()
		if err == nil {
			return s, true
		}
		b.o.logger.Debug("broker/rabbitmq: reconnecting", "server", b.redacted, "error", err, "retry_in", wait)
		select {
		case <-b.done:
			return nil, false
		case <-time.After(wait):
		}
		wait = min(2*wait, maxBackoff)
	}
}

// session returns the current session, waiting for one until ctx ends.
func (b *Broker) session(ctx context.Context) (*session, error) {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil, broker.ErrClosed
		}
		s, ready := b.sess, b.ready
		b.mu.Unlock()
		if s != nil {
			return s, nil
		}
		select {
		case <-ready:
		case <-b.done:
		case <-ctx.Done():
			return nil, errs.Newf(errs.CodeOf(ctx.Err()), "broker/rabbitmq: no connection to %s before the context ended: %v", b.redacted, ctx.Err())
		}
	}
}

// maxRoutingKey is AMQP's limit on a routing key (a short string).
const maxRoutingKey = 255

// Publish sends m to the exchange with the topic as routing key and
// returns once the server confirmed it: stored in every queue bound to
// the topic (to disk for durable queues; by a majority for quorum
// queues). A topic no queue is bound to is confirmed and dropped, as on
// any AMQP exchange. A negative confirm, a connection lost before the
// confirm or the context ending is an error; publishing again with the
// same m.ID is then safe for consumers that de-duplicate by ID. m.ID
// (generated when empty) travels as the AMQP message-id.
func (b *Broker) Publish(ctx context.Context, m *broker.Message) error {
	if m == nil {
		return errs.New(errs.InvalidArgument, "broker/rabbitmq: nil message")
	}
	if err := broker.ValidTopic(m.Topic, false); err != nil {
		return err
	}
	if len(m.Topic) > maxRoutingKey {
		return errs.Newf(errs.InvalidArgument, "broker/rabbitmq: topic %q: longer than %d bytes, the most an AMQP routing key holds", m.Topic, maxRoutingKey)
	}
	if b.isClosed() {
		return broker.ErrClosed
	}
	id := m.ID
	if id == "" {
		id = rand.Text()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.o.publishTimeout)
		defer cancel()
	}
	p := publishing(id, m.Header, m.Data, time.Now())
	what := fmt.Sprintf("publish to %q (message %s)", m.Topic, id)
	for {
		s, err := b.session(ctx)
		if err != nil {
			return wrap(what, err)
		}
		dc, err := s.pub.PublishWithDeferredConfirmWithContext(ctx, b.o.exchange, m.Topic, false, false, p)
		if err != nil {
			if errors.Is(err, amqp.ErrClosed) && ctx.Err() == nil {
				// The channel was already gone: nothing was sent. Wait
				// for the next connection.
				b.awaitLoss(ctx, s)
				continue
			}
			return failure(ctx, what, err)
		}
		return confirmed(ctx, what, s.pub, dc)
	}
}

// awaitLoss waits until the supervisor noticed that s is gone (or ctx
// ends), so that the next session call does not return s again.
func (b *Broker) awaitLoss(ctx context.Context, s *session) {
	for {
		b.mu.Lock()
		cur := b.sess
		b.mu.Unlock()
		if cur != s {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-b.done:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// confirmed waits for dc's confirm.
func confirmed(ctx context.Context, what string, ch *amqp.Channel, dc *amqp.DeferredConfirmation) error {
	acked, err := dc.WaitContext(ctx)
	switch {
	case err != nil:
		return errs.Newf(errs.CodeOf(ctx.Err()), "broker/rabbitmq: %s: not confirmed before the context ended (it may still be stored; publish again with the same ID): %v", what, err)
	case acked:
		return nil
	case ch.IsClosed():
		return errs.Newf(errs.Unavailable, "broker/rabbitmq: %s: connection lost before the server confirmed (it may still be stored; publish again with the same ID)", what)
	default:
		return errs.Newf(errs.Unavailable, "broker/rabbitmq: %s: the server refused the message (negative confirm)", what)
	}
}

// publishMandatory publishes p on the sys channel with the mandatory flag
// and waits for the confirm: a message no queue takes is an error, not a
// silent drop. For retries and dead letters.
func (b *Broker) publishMandatory(ctx context.Context, exchange, key string, p amqp.Publishing) error {
	what := fmt.Sprintf("publish to %q on exchange %q (message %s)", key, exchange, p.MessageId)
	for {
		s, err := b.session(ctx)
		if err != nil {
			return wrap(what, err)
		}
		b.sysMu.Lock()
		err = func() error {
			for len(s.returns) > 0 { // late returns of earlier publishes
				<-s.returns
			}
			dc, err := s.sys.PublishWithDeferredConfirmWithContext(ctx, exchange, key, true, false, p)
			if err != nil {
				return err
			}
			if err := confirmed(ctx, what, s.sys, dc); err != nil {
				return err
			}
			// A return comes before its confirm, on the same reader.
			select {
			case r := <-s.returns:
				return errs.Newf(errs.FailedPrecondition, "broker/rabbitmq: %s: no queue is bound to it (%d %s)", what, r.ReplyCode, r.ReplyText)
			default:
				return nil
			}
		}()
		b.sysMu.Unlock()
		if errors.Is(err, amqp.ErrClosed) && ctx.Err() == nil {
			b.awaitLoss(ctx, s)
			continue
		}
		if err != nil {
			var e *errs.Error
			if errors.As(err, &e) {
				return err
			}
			return failure(ctx, what, err)
		}
		return nil
	}
}

// publishing builds the AMQP message.
func publishing(id string, h transport.Metadata, data []byte, now time.Time) amqp.Publishing {
	p := amqp.Publishing{
		MessageId:    id,
		DeliveryMode: amqp.Persistent,
		Timestamp:    now,
		Headers:      toTable(h),
		Body:         data,
	}
	if ct := h.Get(broker.ContentTypeKey); ct != "" {
		p.ContentType = ct
	}
	return p
}

// Subscribe starts a subscription; see the package documentation for the
// queues it uses. ctx bounds declaring them and starting to consume.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, cfg broker.SubscribeConfig) (broker.Subscription, error) {
	if err := broker.ValidTopic(topic, true); err != nil {
		return nil, err
	}
	if err := checkSubscribeTopic(topic); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker/rabbitmq: subscribe %q: nil handler", topic)
	}
	if len(cfg.DeadLetter) > maxRoutingKey {
		return nil, errs.Newf(errs.InvalidArgument, "broker/rabbitmq: subscribe %q: dead letter %q: longer than %d bytes, the most an AMQP routing key holds", topic, cfg.DeadLetter, maxRoutingKey)
	}
	if cfg.Logger == nil {
		cfg.Logger = b.o.logger
	}
	if err := cfg.Check("broker/rabbitmq", topic); err != nil {
		return nil, err
	}
	s, err := b.subs.Open(ctx, func() (*subscription, error) { return b.subscribe(ctx, topic, h, cfg) })
	if err != nil {
		return nil, err // not a nil *subscription in the interface
	}
	return s, nil
}

func (b *Broker) forget(s *subscription) { b.subs.Remove(s) }

// isClosed reports whether Close started: the broker takes no new work,
// while subscriptions draining may still publish retries and dead letters.
func (b *Broker) isClosed() bool { return b.subs.Closed() }

// Close drains every open subscription until ctx ends, then closes the
// connection; later Publish and Subscribe calls fail with
// broker.ErrClosed. Queues and the exchange stay on the server.
func (b *Broker) Close(ctx context.Context) error {
	subs, first := b.subs.Close()
	if !first {
		return nil
	}
	err := broker.DrainAll(ctx, subs)
	b.mu.Lock()
	b.closed = true
	s := b.sess
	b.sess = nil
	b.mu.Unlock()
	close(b.done)
	<-b.superUp
	if s != nil {
		if cerr := s.conn.Close(); cerr != nil && !errors.Is(cerr, amqp.ErrClosed) {
			err = errors.Join(err, errs.Newf(errs.Unavailable, "broker/rabbitmq: close the connection: %w", cerr))
		}
	}
	return err
}

// wrap adds what to an *errs.Error from session or confirmed.
func wrap(what string, err error) error {
	if errors.Is(err, broker.ErrClosed) {
		return err
	}
	return errs.Newf(errs.CodeOf(err), "broker/rabbitmq: %s: %w", what, err)
}

// failure turns an AMQP error into an *errs.Error saying what failed.
func failure(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return errs.Newf(errs.CodeOf(ctx.Err()), "broker/rabbitmq: %s: not done before the context ended: %w", what, err)
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.PreconditionFailed:
			return errs.Newf(errs.FailedPrecondition, "broker/rabbitmq: %s: %w", what, err)
		case amqp.AccessRefused, amqp.NotAllowed:
			return errs.Newf(errs.PermissionDenied, "broker/rabbitmq: %s: %w", what, err)
		case amqp.NotFound:
			return errs.Newf(errs.NotFound, "broker/rabbitmq: %s: %w", what, err)
		}
	}
	return errs.Newf(errs.Unavailable, "broker/rabbitmq: %s: %w", what, err)
}
