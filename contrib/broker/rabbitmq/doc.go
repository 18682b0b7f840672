// Package rabbitmq is a Ferry broker on RabbitMQ (AMQP 0-9-1, through
// github.com/rabbitmq/amqp091-go). It lives in a module of its own so that
// services that do not use it never download the client. Import it to
// register broker.kind: rabbitmq with the configuration:
//
//	import _ "github.com/ferry-go/ferry/contrib/broker/rabbitmq"
//
// or create it directly:
//
//	b, err := rabbitmq.New(ctx, "amqp://guest:guest@127.0.0.1:5672/")
//
// # Mapping onto RabbitMQ
//
// Every topic is published to one durable topic exchange (DefaultExchange,
// "ferry"; WithExchange) with the topic as routing key. Subscription
// patterns become binding keys: "*" stays "*" (one token) and a final ">"
// becomes "*.#" (one or more tokens; AMQP's "#" alone would also match
// none). A "#" token cannot be subscribed to, and AMQP limits routing and
// binding keys to 255 bytes.
//
// A subscription with a queue group (broker.Queue) consumes a durable
// queue shared by every member of the group on that topic, named
// "<exchange>.<queue>.<topic>" (GroupQueue; names over 200 bytes are
// shortened with a hash). It is a quorum queue by default (WithQueueType
// for classic). A subscription without a group gets a queue of its own,
// "<exchange>.fanout.<topic>.<random>": classic, not durable, deleted by
// Drain, and by the server 30 s after its consumer went away — so a
// reconnect within that time loses nothing.
//
// An exchange keeps nothing for queues that do not exist: a message
// published to a topic no queue is bound to is confirmed and dropped, and a
// queue group's queue starts with the messages published after its first
// Subscribe. WithQueueGroup declares a group's queue in New, before any
// subscription, when messages published earlier must wait for it.
//
// # Guarantees
//
// Publish uses publisher confirms: it returns nil only once the server
// confirmed the message, which it does after storing it in every queue the
// topic routes to (durable queues: on disk; quorum queues: by a majority
// of replicas). A negative confirm, a connection lost before the confirm,
// or the context ending is an error — the message may or may not be
// stored, so publish it again with the same ID (broker.WithID) if
// duplicates are acceptable to the consumer. Messages are persistent and
// carry the ID as AMQP message-id and the metadata (trace context
// included) as headers. The broker does not de-duplicate.
//
// Each delivered message is:
//
//   - acknowledged only after its handler returned nil; prefetch (QoS) is
//     the subscription's Concurrency, so nothing waits unstarted in the
//     client;
//   - on a handler error, in a queue group, republished (with a confirm)
//     to the group's retry queue for the back-off delay of its attempt,
//     "<group queue>.retry.<delay>" (RetryQueue), and only then
//     acknowledged: a crash in between gives a duplicate, never a loss. A
//     retry queue has one message TTL (the delay) and dead-letters expired
//     messages through the default exchange to its group's queue only, so
//     the message comes back after the delay to the group that failed,
//     not to every subscriber of the topic, with its attempt number in a
//     header. One retry queue per distinct delay keeps expiry in order; no
//     plug-in is needed. Fan-out and ordered subscriptions wait out the
//     delay in the process instead, holding the message;
//   - dead-lettered when the handler fails permanently (broker.Permanent,
//     InvalidArgument, a payload that does not decode) or fails its
//     MaxDeliver-th attempt: one copy with the ferry-dead-letter-* headers
//     is published to the dead-letter subject (default "dlq.<topic>") on
//     the exchange, with the mandatory flag and a confirm, and only then is
//     the original acknowledged. If no queue takes the letter, or it is not
//     confirmed, the message goes round the retry path again (logged at
//     Error) instead of being lost. New declares "<exchange>.dead-letters"
//     bound to "dlq.#", which keeps the default dead-letter subjects
//     (WithoutDeadLetterQueue turns it off).
//
// Delivery.Attempt is the attempt number the retry queue carried plus the
// server's count of hand-backs (x-delivery-count on quorum queues; the
// redelivered flag on classic ones). A consumer that dies (its connection
// drops) has its unacknowledged messages requeued at once by the server;
// there is no ack wait, so a slow handler is never redelivered while it
// runs (RabbitMQ's consumer_timeout, 30 minutes by default, closes the
// channel of a handler slower than that; the subscription then resumes and
// the message is redelivered).
//
// broker.Ordered declares the group's queue single-active-consumer and runs
// one message at a time, retrying a failing one in place, so the order
// holds across every member of the group. Ordered and unordered
// subscriptions cannot share a queue group (the queue's arguments differ;
// Subscribe says so).
//
// # Connection loss
//
// The broker reconnects with back-off (100 ms doubling to 5 s), declares
// its topology again, and every subscription resumes its consumer. Publish
// during an outage waits for the connection until its context ends (or
// WithPublishTimeout when the context has no deadline). What handlers were
// running when the connection dropped is redelivered: their
// acknowledgements cannot reach the server on the new connection.
//
// # Shutdown
//
// Drain cancels the consumer, hands back (requeues) what was delivered but
// not started, lets running handlers finish until its context ends, then
// cancels them and hands back what they did not finish. Close drains every
// subscription, then closes the connection.
package rabbitmq
