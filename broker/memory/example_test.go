package memory_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/broker/memory"
)

type OrderPlaced struct {
	ID string `json:"id"`
}

// A failing handler gets the message again after its back-off; a message
// published twice with the same ID is delivered once.
func Example() {
	ctx := context.Background()
	b, err := memory.New()
	if err != nil {
		panic(err)
	}
	defer b.Close(ctx)

	done := make(chan struct{})
	sub, err := broker.Subscribe(ctx, b, "orders.placed", func(ctx context.Context, e *broker.Event[OrderPlaced]) error {
		fmt.Printf("order %s, attempt %d\n", e.Data.ID, e.Attempt)
		if e.Attempt == 1 {
			return errors.New("billing is down")
		}
		close(done)
		return nil
	}, broker.Queue("billing"), broker.Backoff(10*time.Millisecond))
	if err != nil {
		panic(err)
	}
	defer sub.Drain(ctx)

	for range 2 {
		if err := broker.Publish(ctx, b, "orders.placed", &OrderPlaced{ID: "o-1"}, broker.WithID("o-1")); err != nil {
			panic(err)
		}
	}
	<-done
	// Output:
	// order o-1, attempt 1
	// order o-1, attempt 2
}
