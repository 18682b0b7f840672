package kafka_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/contrib/broker/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
)

type OrderPlaced struct {
	ID string `json:"id"`
}

func Example() {
	// An in-process cluster stands in for Kafka here.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		panic(err)
	}
	defer cluster.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := kafka.New(ctx, kafka.WithSeeds(cluster.ListenAddrs()...), kafka.WithClientID("orders"))
	if err != nil {
		panic(err)
	}
	defer b.Close(context.Background())

	got := make(chan string, 1)
	_, err = broker.Subscribe(ctx, b, "orders.placed", func(ctx context.Context, e *broker.Event[OrderPlaced]) error {
		got <- e.Data.ID
		return nil // acknowledged: its offset may now be committed
	}, broker.Queue("billing"))
	if err != nil {
		panic(err)
	}
	if err := broker.Publish(ctx, b, "orders.placed", &OrderPlaced{ID: "o-1"}); err != nil {
		panic(err)
	}
	fmt.Println("billed", <-got)
	// Output: billed o-1
}
