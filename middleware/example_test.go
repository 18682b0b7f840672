package middleware_test

import (
	"context"
	"fmt"

	"github.com/ferry-go/ferry/middleware"
)

func trace(name string) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			fmt.Println(name, "before")
			resp, err := next(ctx, req)
			fmt.Println(name, "after")
			return resp, err
		}
	}
}

// The first middleware listed runs outermost.
func ExampleChain() {
	h := middleware.Chain(trace("first"), trace("second"))(func(ctx context.Context, req any) (any, error) {
		fmt.Println("handler")
		return req, nil
	})
	_, _ = h(context.Background(), "hi")
	// Output:
	// first before
	// second before
	// handler
	// second after
	// first after
}
