package etcd_test

import (
	"context"
	"fmt"
	"log"
	"time"

	etcdreg "github.com/ferry-go/ferry/contrib/registry/etcd"
	"github.com/ferry-go/ferry/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A registry that owns its client: register an instance, follow the
// service, deregister, close. (With config, import the package for its
// side effect and set registry.kind: etcd instead; see the README.)
func Example() {
	ctx := context.Background()
	r, err := etcdreg.Dial(ctx, clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: 5 * time.Second},
		etcdreg.WithTTL(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	in := registry.Instance{ID: "a1", Service: "greeter", Version: "1.0.0",
		Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "10.0.0.7:9090"}}}
	if err := r.Register(ctx, in); err != nil { // kept alive until Deregister or Close
		log.Fatal(err)
	}
	defer r.Deregister(ctx, in)

	w, err := r.Watch(ctx, "greeter")
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop()
	set, err := w.Next(ctx) // at once, then at every change
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(set), "instance(s) of greeter")
}
