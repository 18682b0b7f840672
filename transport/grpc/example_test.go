package grpc_test

import (
	"fmt"

	fgrpc "github.com/ferry-go/ferry/transport/grpc"
)

// Ferry service names map to proto package, service and method names; a
// name with a '.' is a fully qualified gRPC service name, kept as it is.
func ExampleMethodName() {
	fmt.Println(fgrpc.ServiceName("order-service"))
	fmt.Println(fgrpc.MethodName("greeter", "Hello"))
	fmt.Println(fgrpc.MethodName("grpc.health.v1.Health", "Check"))
	// Output:
	// order_service.OrderService
	// /greeter.Greeter/Hello
	// /grpc.health.v1.Health/Check
}
