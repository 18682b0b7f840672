// Package broker is Ferry's event messaging: typed publish and subscribe
// over a pluggable Broker, with delivery guarantees stated per
// implementation.
//
//	err := broker.Publish(ctx, b, "orders.placed", &OrderPlaced{ID: "o-1"}, broker.WithID("o-1"))
//
//	sub, err := broker.Subscribe(ctx, b, "orders.placed",
//		func(ctx context.Context, e *broker.Event[OrderPlaced]) error {
//			return bill(ctx, e.Data)
//		}, broker.Queue("billing"), broker.MaxDeliver(5))
//	defer sub.Drain(ctx)
//
// # Implementations
//
//   - broker/jetstream: durable, at-least-once. A message is acknowledged
//     only after its handler returns nil; an error negatively acknowledges
//     it with a back-off delay; a permanent error, a payload that does not
//     decode, or the last allowed delivery sends it to the dead-letter
//     subject (once) and terminates it; running handlers heart-beat so a
//     slow handler is not redelivered while alive; publishing waits for the
//     stream's acknowledgement and de-duplicates by message ID.
//   - broker/nats: core NATS, fast and at-most-once: a message published
//     while no subscription listens, or whose handler fails, is gone.
//   - broker/memory: in-process, for tests and single binaries, with the
//     JetStream semantics that make sense in one process (redelivery,
//     back-off, dead letters, de-duplication, ordering) and no
//     durability.
//
// # Handlers and middleware
//
// Subscribe decodes each payload into a new T by its content-type header
// (JSON when absent) and runs the handler behind recovery and the
// subscription's middleware — the same middleware.Middleware values RPC
// endpoints use. Middleware sees the decoded *T as the request, a
// transport.Call whose Service is the subscription's name (its queue, or
// the topic) and whose Endpoint is the message's topic, and the Delivery
// through DeliveryFromContext. A panic becomes an Internal error: the
// message is redelivered and the process lives on.
//
// # Errors
//
// A handler error means "try again later", except when it is permanent:
// marked with Permanent, or of code InvalidArgument (what does not decode
// or validate now will not later). Dead letters carry the original
// headers plus ferry-dead-letter-* headers giving the original topic, the
// delivery count, the last error and, for JetStream, the stream and
// sequence.
package broker
