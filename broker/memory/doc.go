// Package memory is an in-process broker.Broker, for tests and for single
// binaries. It gives the JetStream semantics that make sense inside one
// process, and no durability: nothing survives the process, and nothing
// waits for a subscription that does not exist yet.
//
//	b, err := memory.New()
//	...
//	sub, err := broker.Subscribe(ctx, b, "orders.placed", bill, broker.Queue("billing"))
//	err = broker.Publish(ctx, b, "orders.placed", &OrderPlaced{ID: "o-1"})
//
// # Publishing
//
// Publish copies the message and hands it to every subscription whose
// topic matches (NATS wildcards) at that moment; a message no subscription
// matches is dropped. A fan-out subscription (no Queue) gets its own copy;
// the subscriptions of one queue group (same Queue and same topic) share
// one copy, which exactly one of them handles. Each group holds at most
// WithBuffer messages waiting for a handler (default 10000): when a group
// is full, Publish waits for room until its context ends and then fails
// with ResourceExhausted naming the subscription. A handler that publishes
// to its own full group therefore waits too: give it a bounded context.
//
// A message ID seen within the de-duplication window (WithDedupeWindow,
// default 2 minutes) is accepted and not delivered again, as JetStream
// does; an empty ID is replaced by a generated one. Every accepted message
// gets the next per-broker sequence number (Delivery.Sequence) and its
// publish time (Delivery.Published).
//
// # Delivery
//
// Each subscription runs Concurrency handlers at once (one with Ordered).
// A handler's context is cancelled only when Drain or Close cuts it off;
// it carries the Delivery (broker.DeliveryFromContext). The outcome:
//
//   - nil: the message is done.
//   - a permanent error (broker.IsPermanent), or the MaxDeliver-th failed
//     delivery: the message is dead-lettered — published once through the
//     broker itself to the DeadLetter subject (broker.DeadLetterMessage),
//     and logged at Warn; with DeadLetter "" it is only logged.
//   - any other error, or a panic: the message goes back to its group
//     after the back-off delay of its attempt (a timer, no goroutine
//     sleeps), with Attempt one higher; any member may take it.
//
// With Ordered, the group handles one message at a time in publish order:
// a failing message is retried, after its delay, before any later one, and
// the next message waits until it succeeds or is dead-lettered. All
// members of a queue group must agree on Ordered.
//
// AckWait and DeliverNew have no effect: handlers run in this process (a
// crashed process loses everything anyway), and a new subscription only
// ever sees messages published after it.
//
// # Draining
//
// Subscription.Drain stops taking messages, lets running handlers finish
// until its context ends, then cancels their contexts and waits for them
// to return. A message not finished by then goes back to its group if the
// group has other members, and is dropped (with a Warn log) if not;
// messages still queued for the group, or waiting for a redelivery, are
// dropped with the group's last member. Close drains every subscription;
// Publish and Subscribe then fail with an error wrapping broker.ErrClosed.
// No goroutine outlives Drain or Close.
package memory
