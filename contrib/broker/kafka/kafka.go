package kafka

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
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kind is the transport kind of Kafka deliveries (Delivery.Kind).
const Kind transport.Kind = "kafka"

// IDHeader is the record header carrying the Ferry message ID
// (broker.Message.ID); the record key carries it too, by default.
const IDHeader = "ferry-msg-id"

// DefaultTopicRefresh is how often a wildcard subscription looks for new
// topics matching its pattern by default.
const DefaultTopicRefresh = 5 * time.Second

// maxTopicName is Kafka's limit on topic names.
const maxTopicName = 249

// Option configures a Broker.
type Option func(*options)

type options struct {
	seeds          []string
	clientID       string
	kgoOpts        []kgo.Opt
	autoCreate     bool
	partitions     int32
	replication    int16
	topicRefresh   time.Duration
	commitInterval time.Duration
	key            func(*broker.Message) []byte
	logger         *slog.Logger
	errs           []error
}

// WithSeeds sets the seed brokers, host:port each (required).
func WithSeeds(addrs ...string) Option {
	return func(o *options) {
		if len(addrs) == 0 {
			o.errs = append(o.errs, errors.New("seeds: want at least one host:port"))
			return
		}
		for _, a := range addrs {
			if i := strings.LastIndexByte(a, ':'); i <= 0 || i == len(a)-1 {
				o.errs = append(o.errs, fmt.Errorf("seed %q: want host:port", a))
				return
			}
		}
		o.seeds = append([]string(nil), addrs...)
	}
}

// WithClientID sets the Kafka client ID of every client the broker makes
// (default "ferry"): it shows in the brokers' logs and quotas.
func WithClientID(id string) Option {
	return func(o *options) {
		if id == "" {
			o.errs = append(o.errs, errors.New("client ID: empty"))
			return
		}
		o.clientID = id
	}
}

// WithClientOptions adds franz-go options to every client the broker
// makes (the producer and each subscription's consumer), after Ferry's
// own: TLS (kgo.DialTLSConfig), SASL (kgo.SASL), session and heart-beat
// timeouts, and the like. Options that change what Ferry relies on —
// consumer groups, topics, commits, acks — are not for this.
func WithClientOptions(opts ...kgo.Opt) Option {
	return func(o *options) { o.kgoOpts = append(o.kgoOpts, opts...) }
}

// WithAutoCreateTopics sets whether topics that do not exist are created
// when they are first published to or subscribed (default true, for
// development; the cluster must allow it for publishing:
// auto.create.topics.enable). Turn it off where topics are provisioned.
func WithAutoCreateTopics(on bool) Option {
	return func(o *options) { o.autoCreate = on }
}

// WithPartitions sets the partitions and replication factor of the topics
// Subscribe creates (default -1 and -1: the cluster's num.partitions and
// default.replication.factor). Topics created by publishing always get
// the cluster's defaults.
func WithPartitions(partitions int32, replication int16) Option {
	return func(o *options) {
		if partitions == 0 || partitions < -1 || replication == 0 || replication < -1 {
			o.errs = append(o.errs, fmt.Errorf("partitions %d, replication %d: want positive numbers or -1 for the cluster's default", partitions, replication))
			return
		}
		o.partitions, o.replication = partitions, replication
	}
}

// WithTopicRefresh sets how often a wildcard subscription looks for new
// topics matching its pattern (default DefaultTopicRefresh): each look
// loads the metadata of every topic.
func WithTopicRefresh(d time.Duration) Option {
	return func(o *options) {
		if d < 100*time.Millisecond {
			o.errs = append(o.errs, fmt.Errorf("topic refresh %v: want at least 100ms", d))
			return
		}
		o.topicRefresh = d
	}
}

// DefaultCommitInterval is the least time between two commits of a
// subscription by default.
const DefaultCommitInterval = 100 * time.Millisecond

// WithCommitInterval sets the least time between two offset commits of a
// subscription (default DefaultCommitInterval; 0: commit as soon as the
// previous commit is done). Only finished records are ever committed;
// the interval bounds what a crashed consumer's successor processes
// again, against the commit requests' cost. Revocations and Drain commit
// at once.
func WithCommitInterval(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.errs = append(o.errs, fmt.Errorf("commit interval %v: want ≥ 0", d))
			return
		}
		o.commitInterval = d
	}
}

// WithKey sets how a message's record key is chosen (default: its ID).
// Kafka orders records per partition and picks the partition from the
// key, so key by what must stay in order — an order ID in a header, say.
// A nil key spreads records over the partitions.
func WithKey(f func(*broker.Message) []byte) Option {
	return func(o *options) {
		if f == nil {
			o.errs = append(o.errs, errors.New("nil key function"))
			return
		}
		o.key = f
	}
}

// WithLogger sets the logger for subscription failures (default
// slog.Default()); a subscription's broker.WithLogger wins for its own.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.errs = append(o.errs, errors.New("nil logger"))
			return
		}
		o.logger = l
	}
}

// Broker is a broker.Broker on Kafka. Create it with New; it is safe for
// concurrent use.
type Broker struct {
	o   options
	cl  *kgo.Client // the producer, and admin requests
	adm *kadm.Client

	subs broker.Subscriptions[*subscription]
}

var _ broker.Broker = (*Broker)(nil)

// New returns a broker on the Kafka cluster of WithSeeds, once it has
// reached one of its brokers (ctx bounds that). Invalid options are an
// InvalidArgument error; an unreachable cluster, Unavailable.
func New(ctx context.Context, opts ...Option) (*Broker, error) {
	o := options{clientID: "ferry", autoCreate: true, partitions: -1, replication: -1, topicRefresh: DefaultTopicRefresh, commitInterval: DefaultCommitInterval, logger: slog.Default()}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if len(o.seeds) == 0 && len(o.errs) == 0 {
		o.errs = append(o.errs, errors.New("no seed brokers: give WithSeeds"))
	}
	if err := errors.Join(o.errs...); err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker/kafka: %w", err)
	}
	popts := []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()), // with the idempotent producer, franz-go's default
		kgo.ProducerLinger(0),              // Publish is synchronous: do not wait for company
	}
	if o.autoCreate {
		popts = append(popts, kgo.AllowAutoTopicCreation())
	}
	cl, err := kgo.NewClient(o.clientOpts(popts...)...)
	if err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker/kafka: %w", err)
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, failure(ctx, fmt.Sprintf("reach the cluster at %s", strings.Join(o.seeds, ",")), err)
	}
	return &Broker{o: o, cl: cl, adm: kadm.NewClient(cl)}, nil
}

// clientOpts returns the options of a client: the seeds and client ID,
// extra, then the user's.
func (o *options) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	all := []kgo.Opt{kgo.SeedBrokers(o.seeds...), kgo.ClientID(o.clientID)}
	all = append(all, extra...)
	return append(all, o.kgoOpts...)
}

// Publish produces m and returns once every in-sync replica has it (acks
// all, idempotent producer). The record key is m.ID (generated when
// empty) unless WithKey says otherwise; the headers are m.Header plus
// ferry-msg-id.
func (b *Broker) Publish(ctx context.Context, m *broker.Message) error {
	if m == nil {
		return errs.New(errs.InvalidArgument, "broker/kafka: nil message")
	}
	if err := validTopic(m.Topic, false); err != nil {
		return err
	}
	if b.isClosed() {
		return broker.ErrClosed
	}
	o := newOutgoing(m)
	if b.o.key != nil {
		o.rec.Key = b.o.key(m)
	}
	// ProduceSync, without its allocations: wait for the promise.
	o.acked.Add(1)
	b.cl.Produce(ctx, &o.rec, o.promise)
	o.acked.Wait()
	if o.err != nil {
		return failure(ctx, fmt.Sprintf("publish to %q (message %s)", m.Topic, o.id()), o.err)
	}
	return nil
}

// idLen is the length of a generated message ID (as crypto/rand.Text's).
const idLen = 26

// outgoing is a record being published, with room for the ID and the
// usual few headers, so that a message costs one allocation (and its
// promise one): the record is the client's until its promise is called,
// and never reused.
type outgoing struct {
	rec   kgo.Record
	hdrs  [3]kgo.RecordHeader // ferry-msg-id and, say, traceparent and tracestate
	buf   [96]byte            // the ID and the header values, when they fit
	acked sync.WaitGroup      // done when the promise was called
	err   error               // the promise's
}

func (o *outgoing) promise(_ *kgo.Record, err error) {
	o.err = err
	o.acked.Done()
}

// newOutgoing builds the record of m: key and ferry-msg-id header the ID
// (sharing its bytes; generated when m has none), then m's headers with
// lower-case keys.
func newOutgoing(m *broker.Message) *outgoing {
	o := &outgoing{}
	o.rec.Topic, o.rec.Value = m.Topic, m.Data
	n, size := 1, idLen
	if m.ID != "" {
		size = len(m.ID)
	}
	for k, vs := range m.Header {
		if !strings.EqualFold(k, IDHeader) {
			n += len(vs)
			for _, v := range vs {
				size += len(v)
			}
		}
	}
	buf := o.buf[:0]
	if size > len(o.buf) {
		buf = make([]byte, 0, size)
	}
	hdrs := o.hdrs[:0]
	if n > len(o.hdrs) {
		hdrs = make([]kgo.RecordHeader, 0, n)
	}
	if m.ID != "" {
		buf = append(buf, m.ID...)
	} else {
		buf = appendID(buf)
	}
	id := buf[:len(buf):len(buf)]
	o.rec.Key = id
	for k, vs := range m.Header {
		k = strings.ToLower(k)
		if k == IDHeader {
			continue
		}
		for _, v := range vs {
			at := len(buf)
			buf = append(buf, v...)
			hdrs = append(hdrs, kgo.RecordHeader{Key: k, Value: buf[at:len(buf):len(buf)]})
		}
	}
	o.rec.Headers = append(hdrs, kgo.RecordHeader{Key: IDHeader, Value: id})
	return o
}

// id returns the message ID of o.
func (o *outgoing) id() string {
	return string(o.rec.Headers[len(o.rec.Headers)-1].Value)
}

// appendID appends a new random message ID: 26 base-32 characters, 130
// random bits, as crypto/rand.Text makes, without its allocation.
func appendID(buf []byte) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	at := len(buf)
	buf = append(buf, make([]byte, idLen)...)
	src := buf[at:]
	_, _ = rand.Read(src) // never fails (crypto/rand.Read's promise)
	for i, c := range src {
		src[i] = alphabet[c%32]
	}
	return buf
}

// Subscribe starts a subscription as a member of a consumer group; see the
// package documentation. ctx bounds creating the topic, placing a new
// group at the end of the topics, and joining the group.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, cfg broker.SubscribeConfig) (broker.Subscription, error) {
	if err := validTopic(topic, true); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker/kafka: subscribe %q: nil handler", topic)
	}
	if cfg.Logger == nil {
		cfg.Logger = b.o.logger
	}
	if err := cfg.Check("broker/kafka", topic); err != nil {
		return nil, err
	}
	if cfg.DeadLetter != "" {
		if err := validTopic(cfg.DeadLetter, false); err != nil {
			return nil, errs.Newf(errs.InvalidArgument, "broker/kafka: subscribe %q: dead letter: %w", topic, err)
		}
	}
	s, err := b.subs.Open(ctx, func() (*subscription, error) { return b.subscribe(ctx, topic, h, cfg) })
	if err != nil {
		return nil, err // not a nil *subscription in the interface
	}
	return s, nil
}

func (b *Broker) forget(s *subscription) { b.subs.Remove(s) }

func (b *Broker) isClosed() bool { return b.subs.Closed() }

// Close drains every open subscription until ctx ends, then closes the
// producer; later Publish and Subscribe calls fail with broker.ErrClosed.
func (b *Broker) Close(ctx context.Context) error {
	subs, first := b.subs.Close()
	if !first {
		return nil
	}
	err := broker.DrainAll(ctx, subs)
	b.cl.Close()
	return err
}

// validTopic checks a Ferry topic (broker.ValidTopic) that must also be a
// Kafka topic name: letters, digits, '.', '_' and '-', at most 249 bytes
// (wildcard tokens aside).
func validTopic(topic string, wildcards bool) error {
	if err := broker.ValidTopic(topic, wildcards); err != nil {
		return err
	}
	if len(topic) > maxTopicName {
		return errs.Newf(errs.InvalidArgument, "broker/kafka: invalid topic %q: longer than Kafka's %d bytes", topic, maxTopicName)
	}
	for rest, more := topic, true; more; {
		var tok string
		tok, rest, more = strings.Cut(rest, ".")
		if wildcards && (tok == "*" || tok == ">") {
			continue
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
				return errs.Newf(errs.InvalidArgument, "broker/kafka: invalid topic %q: Kafka topic names hold only letters, digits, '.', '_' and '-'", topic)
			}
		}
	}
	return nil
}

// failure turns a franz-go error into an *errs.Error saying what failed.
func failure(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return errs.Newf(errs.CodeOf(ctx.Err()), "broker/kafka: %s: not acknowledged before the context ended: %w", what, err)
	}
	var ke *kerr.Error
	switch {
	case errors.Is(err, kgo.ErrClientClosed):
		return errs.Newf(errs.Unavailable, "broker/kafka: %s: client closed: %w", what, err)
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return errs.Newf(errs.NotFound, "broker/kafka: %s: no such topic (create it, or allow auto-creation): %w", what, err)
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		return errs.Newf(errs.PermissionDenied, "broker/kafka: %s: %w", what, err)
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return errs.Newf(errs.InvalidArgument, "broker/kafka: %s: %w", what, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrRecordTimeout):
		return errs.Newf(errs.DeadlineExceeded, "broker/kafka: %s: not acknowledged in time: %w", what, err)
	case errors.As(err, &ke) && !ke.Retriable:
		return errs.Newf(errs.FailedPrecondition, "broker/kafka: %s: %w", what, err)
	}
	return errs.Newf(errs.Unavailable, "broker/kafka: %s: %w", what, err)
}
