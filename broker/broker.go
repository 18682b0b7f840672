package broker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
)

// Message is one event as brokers carry it.
type Message struct {
	// Topic is the subject the message is published to, NATS-style:
	// dot-separated tokens such as "orders.placed".
	Topic string
	// ID identifies the message for de-duplication: a broker that
	// de-duplicates (JetStream, memory) stores a message whose ID it has
	// seen within its window only once. Empty means "generate one".
	ID string
	// Key orders messages: the outbox relay (package outbox) publishes the
	// messages of one key in the order they were stored, and those without
	// a key in any order. Brokers do not carry it.
	Key string
	// Header is the message metadata, keys lower-case.
	Header transport.Metadata
	// Data is the encoded payload.
	Data []byte
}

// Delivery is one delivery of a message to a subscription.
type Delivery struct {
	Message
	// Attempt counts deliveries of this message to the subscription, from
	// 1; above 1 it is a redelivery.
	Attempt int
	// Sequence is the message's position in its stream (JetStream), or a
	// per-broker publish counter (memory); 0 where there is none (core
	// NATS).
	Sequence uint64
	// Published is when the broker stored the message; zero if unknown.
	Published time.Time
	// Subscription names the subscription: its queue group, or the topic
	// for a fan-out subscription.
	Subscription string
	// Kind is the transport the message came over.
	Kind transport.Kind
}

// Handler processes one delivery. Returning nil acknowledges the message;
// an error asks for redelivery after a back-off, or dead-letters the
// message when the error is permanent (see Permanent) or the delivery was
// the last allowed.
type Handler func(ctx context.Context, d *Delivery) error

// Broker publishes messages and runs subscriptions. It is the interface
// implementations provide; applications use the typed Publish and
// Subscribe functions of this package, which encode, decode and run the
// middleware.
type Broker interface {
	// Publish sends m. It returns once the broker has taken the message
	// as far as its guarantee goes (JetStream: stored and acknowledged;
	// core NATS: handed to a connected client; memory: handed to the
	// subscriptions that exist), or an error.
	Publish(ctx context.Context, m *Message) error
	// Subscribe starts delivering messages on topic (which may hold
	// wildcards) to h as cfg says; ctx bounds the set-up only.
	Subscribe(ctx context.Context, topic string, h Handler, cfg SubscribeConfig) (Subscription, error)
	// Close drains every subscription still open (as Subscription.Drain
	// does) and releases the broker. It does not close a NATS connection
	// it was given.
	Close(ctx context.Context) error
}

// Subscription is a running subscription.
type Subscription interface {
	// Topic returns the subscribed topic.
	Topic() string
	// Drain stops taking new messages, lets handlers in flight finish
	// until ctx ends, then cancels their contexts. Whatever is not
	// finished by then is handed back for redelivery as far as the
	// implementation's guarantee goes (JetStream: always; memory: to
	// another member of the queue group, if any; core NATS: not at all).
	// Messages fetched but not yet started are handed back at once. Drain
	// is idempotent.
	Drain(ctx context.Context) error
}

// DrainAll drains every subscription of subs at once, within ctx, and
// joins their errors: what Broker.Close implementations do with the
// subscriptions still open.
func DrainAll[S Subscription](ctx context.Context, subs []S) error {
	errList := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Go(func() { errList[i] = s.Drain(ctx) })
	}
	wg.Wait()
	return errors.Join(errList...)
}

// ErrClosed is returned by a Broker used after Close, and by Subscribe on a
// drained subscription's broker.
var ErrClosed = errs.New(errs.FailedPrecondition, "broker: closed")

// permanentError marks a failure that redelivery cannot fix.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent marks err as permanent: the message is dead-lettered at once
// instead of being redelivered. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err says redelivery cannot help: it was
// marked with Permanent, or its code is InvalidArgument (a payload that
// does not decode or validate will not on the next delivery either).
func IsPermanent(err error) bool {
	var p *permanentError
	if errors.As(err, &p) {
		return true
	}
	var e *errs.Error
	return errors.As(err, &e) && e.Code() == errs.InvalidArgument
}

type deliveryKey struct{}

// NewDeliveryContext returns a copy of ctx carrying d; implementations
// call it before running a handler, or get both the Delivery and the
// context from SubscribeConfig.NewDelivery, which saves the typed
// Subscribe allocations.
func NewDeliveryContext(ctx context.Context, d *Delivery) context.Context {
	return context.WithValue(ctx, deliveryKey{}, d)
}

// DeliveryFromContext returns the delivery being handled, if any: how
// middleware tells an event from an RPC call, and reads its attempt and
// sequence.
func DeliveryFromContext(ctx context.Context) (*Delivery, bool) {
	d, ok := ctx.Value(deliveryKey{}).(*Delivery)
	return d, ok
}

// AwaitHandlers is the waiting part of a Subscription's Drain: it waits
// until the delivery loop has ended (loopDone closed) and the handlers in
// flight have returned, or until ctx ends. finished says which came
// first; done is closed once the handlers have returned, for a caller that
// cancels them and then gives them a moment more.
func AwaitHandlers(ctx context.Context, loopDone <-chan struct{}, workers *sync.WaitGroup) (done <-chan struct{}, finished bool) {
	ch := make(chan struct{})
	go func() {
		<-loopDone
		workers.Wait()
		close(ch)
	}()
	select {
	case <-ch:
		return ch, true
	case <-ctx.Done():
		return ch, false
	}
}
