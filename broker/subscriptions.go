package broker

import (
	"context"
	"sync"
)

// Subscriptions is the set of a broker implementation's open
// subscriptions, as Close needs it: Subscribe adds a subscription once it
// is set up, a drained subscription removes itself, and Close refuses new
// ones and hands back the rest to drain. The zero value is ready to use.
type Subscriptions[S interface {
	Subscription
	comparable
}] struct {
	mu     sync.Mutex
	closed bool
	subs   map[S]struct{}
}

// Closed reports whether Close has been called.
func (s *Subscriptions[S]) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Add records sub. If Close has been called meanwhile, it drains sub
// (within ctx's values, not its end) and returns ErrClosed.
func (s *Subscriptions[S]) Add(ctx context.Context, sub S) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = sub.Drain(context.WithoutCancel(ctx))
		return ErrClosed
	}
	if s.subs == nil {
		s.subs = make(map[S]struct{})
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	return nil
}

// Open is how Subscribe adds a subscription: ErrClosed at once if Close
// has been called, else the subscription set up makes, added (Add) — or,
// when Close came while set up ran, drained and refused with ErrClosed.
// On an error the subscription is the zero S.
func (s *Subscriptions[S]) Open(ctx context.Context, setUp func() (S, error)) (S, error) {
	var zero S
	if s.Closed() {
		return zero, ErrClosed
	}
	sub, err := setUp()
	if err != nil {
		return zero, err
	}
	if err := s.Add(ctx, sub); err != nil {
		return zero, err
	}
	return sub, nil
}

// Remove forgets sub (a drained subscription calls it).
func (s *Subscriptions[S]) Remove(sub S) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
}

// Close marks the set closed and returns the subscriptions still open, to
// drain with DrainAll; first is false if Close was called before.
func (s *Subscriptions[S]) Close() (open []S, first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first = !s.closed
	s.closed = true
	open = make([]S, 0, len(s.subs))
	for sub := range s.subs {
		open = append(open, sub)
	}
	return open, first
}
