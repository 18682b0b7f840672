package ratelimit_test

import (
	"context"
	"fmt"

	"github.com/ferry-go/ferry/middleware/ratelimit"
	"github.com/ferry-go/ferry/transport"
	"golang.org/x/time/rate"
)

func Example() {
	// One call per second per tenant, in bursts of two.
	l, err := ratelimit.New(rate.Limit(1), 2, ratelimit.WithKey(ratelimit.ByMetadata("x-tenant")))
	if err != nil {
		panic(err)
	}
	handler := l.Middleware()(func(ctx context.Context, req any) (any, error) { return "ok", nil })

	reply := transport.Metadata{}
	ctx := transport.NewCallContext(context.Background(), &transport.Call{
		Kind: transport.HTTP, Request: transport.Pairs("x-tenant", "acme"), Reply: reply,
	})
	for range 3 {
		fmt.Println(handler(ctx, nil))
	}
	fmt.Println("retry-after:", reply.Get("retry-after"))
	// Output:
	// ok <nil>
	// ok <nil>
	// <nil> resource_exhausted: rate limit exceeded
	// retry-after: 1
}
