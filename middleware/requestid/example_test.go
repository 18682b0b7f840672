package requestid_test

import (
	"context"
	"fmt"

	"github.com/ferry-go/ferry/middleware/requestid"
	"github.com/ferry-go/ferry/transport"
)

func Example() {
	handler := requestid.New()(func(ctx context.Context, req any) (any, error) {
		return "handling " + requestid.FromContext(ctx), nil
	})
	reply := transport.Metadata{}
	ctx := transport.NewCallContext(context.Background(), &transport.Call{
		Request: transport.Pairs("X-Request-Id", "req-42"), Reply: reply,
	})
	fmt.Println(handler(ctx, nil))
	fmt.Println("reply x-request-id:", reply.Get("x-request-id"))
	// Output:
	// handling req-42 <nil>
	// reply x-request-id: req-42
}
