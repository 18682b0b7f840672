package shed_test

import (
	"context"
	"fmt"

	"github.com/ferry-go/ferry/middleware/shed"
)

func Example() {
	s, err := shed.New(1)
	if err != nil {
		panic(err)
	}
	mw := s.Middleware()
	var inner func(context.Context, any) (any, error)
	outer := mw(func(ctx context.Context, req any) (any, error) {
		// While this call runs, the server is full: another endpoint's
		// handler wrapped by the same Shedder is refused.
		return inner(ctx, req)
	})
	inner = mw(func(ctx context.Context, req any) (any, error) { return "ran", nil })
	fmt.Println(outer(context.Background(), nil))
	fmt.Println("in flight after:", s.InFlight())
	// Output:
	// <nil> resource_exhausted: server overloaded: 1 calls in flight
	// in flight after: 0
}
