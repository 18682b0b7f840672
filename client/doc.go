// Package client calls Ferry services by name: it finds their instances in a
// registry.Discovery, picks one per call, and sends the call over the
// transport the instance offers that ranks first in the client's preference
// (NATS, then gRPC, then HTTP by default).
//
//	var Hello = transport.Endpoint[HelloRequest, HelloReply]{Service: "greeter", Name: "Hello"}
//
//	c, err := client.New(reg, client.WithNATS(nc))
//	defer c.Close()
//	reply, err := Hello.Call(ctx, c, &HelloRequest{Name: "Ada"})
//
// Discovery: the first call to a service starts one Watch on it, in a
// goroutine the client owns; every later call selects from the latest
// watched set, with no per-call look-up. When the registry fails, the last
// known instances stay in use and the watch is retried with back-off; a call
// fails only when no instance was ever known.
//
// NATS: with WithNATS, a service whose instances offer NATS (or that the
// registry does not know at all) is called on its subject
// "{service}.{endpoint}": the queue group balances, and "no responders"
// fails at once with Unavailable. A request taken by a member that dies
// before replying is never answered; set RetryPolicy.AttemptTimeout on
// idempotent endpoints so such a call is retried before its deadline. Circuit breaking and outlier detection
// apply to instances dialled directly (HTTP, gRPC), not to NATS.
//
// One call can be pinned to a transport with WithCallTransport (a context
// helper; the gateway's Ferry-Transport header uses it): it is selected
// among the instances offering that transport, or fails with Unavailable
// naming the service and the transport.
//
// Resilience, composed once per endpoint, outermost first: the client's
// middleware (WithMiddleware), a bulkhead (EndpointConfig.Bulkhead), then
// middleware.Retry with one retry budget shared by the whole client, then
// selection. Each retry goes to an instance the call has not tried yet when
// there is one. Per instance, an optional gobreaker circuit breaker
// (WithCircuitBreaker) fails fast while open, and outlier detection
// (WithOutlierDetection, on by default) ejects an instance after
// consecutive failures for a growing period, never more than a third of
// the instances (but one of two or more; never the last one).
//
// Failures that count against an instance's health, for both the breaker
// and outlier detection, are the codes that say the instance, not the
// request, is at fault: Unavailable, DeadlineExceeded, Internal, Unknown
// and DataLoss. ResourceExhausted does not count: it is the server pushing
// back on load or refusing a payload, and it answered. Canceled is the
// caller's doing and is ignored.
package client
