// Package requestid gives every call a request ID that travels with it:
// taken from the caller's x-request-id metadata, or generated (a NUID), put
// in the handler's context and echoed in the reply metadata, and sent on
// the calls the handler makes in turn.
//
//	srv := server.New("orders", server.WithMiddleware(requestid.New()))
//	billing := fnats.NewClient(nc, fnats.WithClientMiddleware(requestid.Client()))
//
//	func place(ctx context.Context, req *PlaceOrder) (*Placed, error) {
//		slog.InfoContext(ctx, "placing", "request_id", requestid.FromContext(ctx))
//		_, err := transport.Invoke[Bill, Billed](ctx, billing, "billing", "Charge", &Bill{...})
//		// the billing call carries the same x-request-id
//	}
//
// On the server side (New) an incoming ID is kept when it is at most 128
// printable ASCII characters, otherwise replaced by a fresh one, so a
// caller cannot inject control characters into logs. On HTTP the ID is the
// X-Request-Id header, on gRPC metadata, on NATS a message header; event
// deliveries read it from the message headers the same way.
//
// On the client side (Client) an outgoing call gets the ID of its context
// unless the caller set x-request-id itself; a call made outside any
// request gets a fresh ID.
package requestid
