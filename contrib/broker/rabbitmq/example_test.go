package rabbitmq_test

import (
	"context"
	"fmt"
	"os"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/contrib/broker/rabbitmq"
)

type OrderPlaced struct {
	ID string `json:"id"`
}

func Example() {
	url := os.Getenv("FERRY_RABBITMQ_URL")
	if url == "" {
		url = rabbitmq.DefaultURL
	}
	ctx := context.Background()
	b, err := rabbitmq.New(ctx, url, rabbitmq.WithExchange("example"))
	if err != nil {
		fmt.Println("no RabbitMQ server; run scripts/install-rabbitmq")
		return
	}
	defer b.Close(ctx)
	got := make(chan string, 1)
	// The queue group "billing" shares the quorum queue
	// "example.billing.events.orders.placed".
	sub, err := broker.Subscribe(ctx, b, "events.orders.*", func(ctx context.Context, e *broker.Event[OrderPlaced]) error {
		got <- e.Data.ID
		return nil
	}, broker.Queue("billing"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Drain(ctx)
	// Publish returns once RabbitMQ confirmed the message.
	if err := broker.Publish(ctx, b, "events.orders.placed", &OrderPlaced{ID: "o-1"}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("billed", <-got)
}
