// Package nats is Ferry's core NATS broker: fast and at-most-once. Users
// import it as
//
//	natsbroker "github.com/ferry-go/ferry/broker/nats"
//
// and create it on a connection they own (Close never closes it):
//
//	b, err := natsbroker.New(nc)
//
// # At most once
//
// Core NATS stores nothing. A message is delivered to the subscriptions
// whose interest the server knows when the message arrives, and to no one
// else:
//
//   - a message published while no subscription listens is gone;
//   - a handler error or panic is logged at Warn and the message is gone:
//     there is no redelivery, no dead letter (MaxDeliver, Backoff, AckWait,
//     DeadLetter and DeliverNew have no effect), and de-duplication is left
//     to whoever reads the subject through a JetStream stream;
//   - a subscription that falls behind loses messages: nats.go holds at
//     most WithPendingLimits messages and bytes (default 65536 and 64 MiB)
//     per subscription waiting for a handler, and drops what comes beyond
//     (the subscription logs how many at Warn; the connection's
//     nats.ErrorHandler is told of the slow consumer too);
//   - a message the server sent to a connection that then breaks is gone.
//
// Publish returns once nats.go has buffered the message for sending, not
// when the server has it. If the connection is not CONNECTED (reconnecting,
// draining, closed), Publish fails at once with Unavailable naming the
// topic and the status, rather than letting nats.go hold the message in
// its reconnect buffer. A message published in the moment between the
// server going away and nats.go noticing it (about a millisecond on
// loopback) is still lost without an error, unless the broker was made
// WithFlush: Publish then waits for the server to confirm it received the
// message (one round trip) and fails with Unavailable when the connection
// drops first. Either way only a stream (broker/jetstream) promises that
// someone will read the message.
//
// A message with an ID (broker.WithID) carries it in the Nats-Msg-Id
// header, so a JetStream stream capturing the subject de-duplicates it,
// and its metadata as headers with lower-case keys; a message with
// neither carries no headers at all, which is what makes core NATS fast.
// Deliveries have Attempt 1, Sequence 0, no Published time, and Kind
// transport.NATS.
//
// # Subscriptions
//
// A subscription with a Queue is a NATS queue subscription (each message
// goes to one member of the group on the same subject), one without is a
// plain subscription (fan-out). Up to Concurrency handlers run at once; a
// message waits in the subscription's pending buffer while all are busy.
// With Ordered (Concurrency 1) a subscription handles its messages one at
// a time in arrival order, which is publish order per publishing
// connection; a failure does not hold the next one back.
//
// Subscription.Drain removes the interest from the server, lets the
// messages already received and the handlers running finish until its
// context ends, then cancels the handlers' contexts, drops what is left
// and waits for the handlers to return. Close drains every subscription.
package nats
