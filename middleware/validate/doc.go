// Package validate is Ferry middleware that checks each decoded request
// against its `validate:"..."` struct tags (github.com/go-playground/validator)
// before the handler runs.
//
// A request that fails is rejected with errs.InvalidArgument, the message
// "invalid request", and one errs.Detail per violation whose Field is the
// JSON path of the field ("items[0].sku", named by the `json` tags) and
// whose Reason is a readable sentence ("is required", "must be at least
// 1"). Transports render the details as problem+json on HTTP,
// google.rpc.BadRequest field violations on gRPC and error headers plus a
// JSON body on NATS. The handler is never invoked for an invalid request.
//
// Requests that are not structs (or pointers to structs), and structs
// without validate tags, pass unchanged. Because broker subscriptions run
// the same middleware with the decoded event as the request, the same
// middleware validates events too.
//
//	type PlaceOrder struct {
//		Customer string `json:"customer" validate:"required"`
//		Items    []Item `json:"items" validate:"required,min=1,dive"`
//	}
//	type Item struct {
//		SKU string `json:"sku" validate:"required"`
//		Qty int    `json:"qty" validate:"gte=1"`
//	}
//
//	srv := server.New("orders", server.WithMiddleware(validate.New()))
//	server.Handle(srv, "Place", place)
//
// The validator is built once per New and caches each request type's
// rules, so a call costs one walk of the request value.
package validate
