package ferry

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ferry-go/ferry/broker"
)

// WithBroker sets the service's broker: subscriptions added with Subscribe
// start on it once the transports serve and drain at stop before the
// transports do. The service does not close b.
func WithBroker(b broker.Broker) Option {
	return func(s *Service) {
		if b == nil {
			s.errs = append(s.errs, errors.New("ferry: WithBroker(nil)"))
			return
		}
		s.brokers().b = b
	}
}

// WithBrokerFrom makes the service's broker at start, once the connections
// (WithConnection) are up — for example a JetStream broker on the
// service's NATS connection:
//
//	nc := fnats.Connect(url)
//	svc := ferry.New(srv, ferry.WithConnection(nc),
//		ferry.WithBrokerFrom(func(ctx context.Context) (broker.Broker, error) {
//			js, err := jetstream.New(nc.NATS())
//			if err != nil {
//				return nil, err
//			}
//			return jsbroker.New(ctx, js, jsbroker.WithStream(ordersStream))
//		}))
//
// The broker is made before the transports start, so handlers can publish
// from their first call, and the service closes it at stop once the
// transports have drained.
func WithBrokerFrom(f func(ctx context.Context) (broker.Broker, error)) Option {
	return func(s *Service) {
		if f == nil {
			s.errs = append(s.errs, errors.New("ferry: WithBrokerFrom(nil)"))
			return
		}
		s.brokers().make = f
	}
}

// Subscribe adds a subscription to the service: h runs for every message
// on topic behind the server's middleware (server.WithMiddleware) and
// then the subscription's own (broker.WithMiddleware), exactly as RPC
// handlers do. It starts with the service; invalid options are reported
// by Start. A service may have subscriptions and no endpoints.
func Subscribe[T any](s *Service, topic string, h func(context.Context, *broker.Event[T]) error, opts ...broker.SubscribeOption) {
	if _, err := broker.NewSubscribeConfig(topic, opts...); err != nil {
		s.errs = append(s.errs, fmt.Errorf("ferry: %w", err))
		return
	}
	if h == nil {
		s.errs = append(s.errs, fmt.Errorf("ferry: subscribe %q: nil handler", topic))
		return
	}
	bc := s.brokers()
	bc.subs = append(bc.subs, func(ctx context.Context, b broker.Broker) (broker.Subscription, error) {
		all := append([]broker.SubscribeOption{broker.WithMiddleware(s.srv.Middleware()...), broker.WithLogger(s.logger)}, opts...)
		return broker.Subscribe(ctx, b, topic, h, all...)
	})
}

// BrokerUser is implemented by a component that publishes through a
// broker (outbox.Relay): a service with a broker gives it one before it
// starts. The function returns the service's broker once it is open —
// components start after it and stop before it closes.
type BrokerUser interface {
	UseBroker(broker func() broker.Broker)
}

// Broker returns the service's broker: the one given to WithBroker, or
// the one WithBrokerFrom made once the service started; nil otherwise.
func (s *Service) Broker() broker.Broker {
	if s.broker == nil {
		return nil
	}
	s.broker.mu.Lock()
	defer s.broker.mu.Unlock()
	return s.broker.b
}

func (s *Service) brokers() *brokerComponent {
	if s.broker == nil {
		s.broker = &brokerComponent{s: s}
	}
	return s.broker
}

// brokerComponent is the service's broker and subscriptions; it starts and
// stops as two components, brokerOpen and brokerSubs, which startOrder puts
// in their places.
type brokerComponent struct {
	s    *Service
	make func(ctx context.Context) (broker.Broker, error)
	subs []func(ctx context.Context, b broker.Broker) (broker.Subscription, error)

	mu      sync.Mutex
	b       broker.Broker
	owned   bool // made by make: closed at stop
	running []broker.Subscription
}

// brokerOpen makes the broker (WithBrokerFrom) before the transports start,
// so handlers can publish from their first call, and closes a broker it
// made after they drained.
type brokerOpen struct{ c *brokerComponent }

func (o brokerOpen) Start(ctx context.Context) error {
	c := o.c
	if c.make != nil {
		b, err := c.make(ctx)
		if err != nil {
			return fmt.Errorf("ferry: make the broker: %w", err)
		}
		if b == nil {
			return errors.New("ferry: WithBrokerFrom returned a nil broker")
		}
		c.mu.Lock()
		c.b, c.owned = b, true
		c.mu.Unlock()
	}
	c.mu.Lock()
	b := c.b
	c.mu.Unlock()
	if b == nil && len(c.subs) > 0 {
		return errors.New("ferry: subscriptions need a broker: add WithBroker or WithBrokerFrom")
	}
	return nil
}

// Stop closes a broker WithBrokerFrom made; one given to WithBroker stays
// open (its owner closes it).
func (o brokerOpen) Stop(ctx context.Context) error {
	c := o.c
	c.mu.Lock()
	b, owned := c.b, c.owned
	if owned {
		c.b, c.owned = nil, false
	}
	c.mu.Unlock()
	if !owned {
		return nil
	}
	return b.Close(ctx)
}

// brokerSubs runs the service's subscriptions: they start once the
// transports serve and drain, together, before the transports do.
type brokerSubs struct{ c *brokerComponent }

func (o brokerSubs) Start(ctx context.Context) error {
	c := o.c
	c.mu.Lock()
	b := c.b
	c.mu.Unlock()
	for _, sub := range c.subs {
		s, err := sub(ctx, b)
		if err != nil {
			// The service stops only the components that started, and this
			// one did not: undo what it started here.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.s.shutdownTimeout)
			defer cancel()
			return errors.Join(err, o.Stop(sctx))
		}
		c.mu.Lock()
		c.running = append(c.running, s)
		c.mu.Unlock()
	}
	return nil
}

// Stop drains the subscriptions together.
func (o brokerSubs) Stop(ctx context.Context) error {
	c := o.c
	c.mu.Lock()
	running := c.running
	c.running = nil
	c.mu.Unlock()
	return broker.DrainAll(ctx, running)
}
