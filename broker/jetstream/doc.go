// Package jetstream is Ferry's durable broker, on NATS JetStream. Users
// import it as
//
//	jsbroker "github.com/ferry-go/ferry/broker/jetstream"
//
// and create it on a connection's JetStream context with the streams it
// needs:
//
//	b, err := jsbroker.New(ctx, js, jsbroker.WithStream(jetstream.StreamConfig{
//		Name: "ORDERS", Subjects: []string{"events.orders.>"}, Replicas: 3,
//	}))
//
// Event subjects need a prefix of their own ("events.orders.>", not
// "orders.>"): the NATS transport serves a service's requests on
// "<service>.*", and a stream capturing those would store every request and
// answer it with a PubAck instead of the service. The NATS transport refuses
// to start beside such a stream.
//
// # Guarantees
//
// Publish returns nil only when the stream has stored the message (its
// acknowledgement arrived); anything else — no stream for the subject, the
// server unreachable, the context ending — is an error, never a silent
// drop. Every message carries a Nats-Msg-Id (the caller's broker.WithID,
// or a generated one), so the stream stores a message published twice
// within its duplicate window (default 2 minutes) once, including when
// nats.go retries a publish.
//
// A subscription with a Queue is a durable pull consumer, shared by every
// subscription with the same queue and topic (competing consumers); it
// survives restarts and starts with everything its stream holds (or, with
// broker.DeliverNew, with new messages). A subscription without a Queue
// is an ephemeral consumer of its own that starts with new messages
// (fan-out). Each message is:
//
//   - acknowledged only after its handler returned nil;
//   - negatively acknowledged with the back-off delay of its attempt when
//     the handler fails, so the stream redelivers it;
//   - kept alive with in-progress heart-beats every AckWait/3 while its
//     handler runs, so a slow handler is not redelivered while it lives,
//     and one whose process died is redelivered after AckWait;
//   - dead-lettered when the handler fails permanently (broker.Permanent,
//     InvalidArgument, a payload that does not decode) or fails its
//     MaxDeliver-th delivery: a copy with the original headers plus the
//     ferry-dead-letter-* headers (topic, error, deliveries, stream
//     sequence) is published to the dead-letter subject under a derived
//     message ID, so it is stored once even if dead-lettering is retried,
//     and only then is the original terminated. If the dead letter cannot be
//     stored, the original is negatively acknowledged and tried again.
//
// A subscription runs at most Concurrency handlers and fetches up to
// WithPrefetch messages ahead of them (default 64): what waits in that
// buffer is not heart-beaten, so with slow handlers lower the prefetch
// (see WithPrefetch) or the stream redelivers what still waits — a
// duplicate, never a loss.
//
// The consumer itself has no delivery limit: Ferry counts deliveries, so a
// message is never dropped by the server before its dead letter is safe.
// broker.Ordered sets the consumer's MaxAckPending to 1, so the stream
// hands out the next message only after the previous one is acknowledged
// or dead-lettered, whichever member of the group holds it.
//
// # Dead letters
//
// By default New also provisions the stream FERRY_DEAD_LETTERS on "dlq.>",
// which stores the default dead-letter subjects ("dlq." + topic). Replace
// it with WithDeadLetterStream, or turn provisioning off with
// WithoutDeadLetterStream when dead letters go to a stream of your own.
//
// # What "never lost" rests on
//
// An acknowledged publish is stored by a quorum of the stream's replicas
// (2 of 3 for Replicas: 3) before the acknowledgement is sent, so losing
// one server loses nothing acknowledged. nats-server writes to the
// operating system at once but fsyncs only every sync_interval (default 2
// minutes): a power loss of a majority of the replicas at the same moment
// can lose recent messages unless the servers run with
// "jetstream { sync_interval: always }". Use Replicas: 3 in production;
// with Replicas: 1 a single disk holds the only copy.
//
// # Shutdown
//
// Drain stops fetching, hands buffered messages that have not started back
// to the stream at once, lets running handlers finish until its context
// ends, then cancels them and hands back what they did not finish. Nothing
// unfinished is acknowledged, so nothing is lost.
package jetstream
