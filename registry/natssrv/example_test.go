package natssrv_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/registry/natssrv"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
)

// A catalogue of the services on a NATS server, none of which registers
// anywhere: a Ferry service serving NATS announces itself, endpoints and
// REST routes included.
func ExampleRegistry_WatchAll() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := natsembed.Start(ctx, natsembed.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()

	tr := fnats.NewServer(nc)
	if err := tr.Start(ctx, greeter("greeter")); err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Stop(context.Background())

	reg, err := natssrv.New(nc, natssrv.WithInterval(100*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := reg.WatchAll(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Stop()
	for {
		set, err := w.Next(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		if len(set) == 0 {
			continue // the first poll may come before the service answers
		}
		in := set[0]
		names, _ := in.EndpointNames()
		routes, _ := in.RouteInfos()
		fmt.Println(in.Service, in.Version, in.Endpoints[0].Transport)
		fmt.Println("endpoints:", names)
		fmt.Println("Find:", routes["Find"].Routes)
		fmt.Println("idempotent Get:", in.Idempotent("Get"))
		return
	}
	// Output:
	// greeter 1.2.3 nats
	// endpoints: [Find Get Hello]
	// Find: [GET /v1/find/{name}]
	// idempotent Get: true
}
