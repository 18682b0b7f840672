package telemetry_test

import "github.com/ferry-go/ferry/transport"

// benchCalls are the Calls each transport fills, server and client side.
func benchCalls() []struct {
	name string
	call transport.Call
} {
	return []struct {
		name string
		call transport.Call
	}{
		{"http-server", transport.Call{Service: "bench", Endpoint: "Echo", Kind: transport.HTTP, Peer: "127.0.0.1:50000",
			Method: "POST", Route: "/bench/Echo", Target: "/bench/Echo"}},
		{"http-client", transport.Call{Service: "bench", Endpoint: "Echo", Kind: transport.HTTP, Client: true, Peer: "127.0.0.1:8080",
			Method: "POST", Route: "/bench/Echo", Target: "http://127.0.0.1:8080/bench/Echo"}},
		{"grpc-server", transport.Call{Service: "bench", Endpoint: "Echo", Kind: transport.GRPC, Peer: "127.0.0.1:50000",
			Method: "/bench.Bench/Echo"}},
		{"grpc-client", transport.Call{Service: "bench", Endpoint: "Echo", Kind: transport.GRPC, Client: true, Peer: "127.0.0.1:9090",
			Method: "/bench.Bench/Echo"}},
		{"nats-server", transport.Call{Service: "bench", Endpoint: "Echo", Kind: transport.NATS, Method: "bench.Echo"}},
		{"nats-client", transport.Call{Service: "bench", Endpoint: "Echo", Kind: transport.NATS, Client: true, Peer: "127.0.0.1:4222",
			Method: "bench.Echo"}},
	}
}
