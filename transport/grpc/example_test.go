package grpc_test

import (
	"fmt"

	fgrpc "github.com/ferry-go/ferry/transport/grpc"
)

// Ferry service names map to proto package, service and method names.
func ExampleMethodName() {
	fmt.Println(fgrpc.ServiceName("order-service"))
	fmt.Println(fgrpc.MethodName("greeter", "Hello"))
	// Output:
	// order_service.OrderService
	// /greeter.Greeter/Hello
}
