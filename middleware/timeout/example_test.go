package timeout_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-go/ferry/middleware/timeout"
)

func Example() {
	handler := timeout.New(10 * time.Millisecond)(func(ctx context.Context, req any) (any, error) {
		<-ctx.Done() // a slow handler that honours its context
		return nil, ctx.Err()
	})
	_, err := handler(context.Background(), nil)
	fmt.Println(err)
	// Output:
	// context deadline exceeded
}
