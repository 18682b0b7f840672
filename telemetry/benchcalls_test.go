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
		{"http-server", transport.Call{Service: "bench", Endpoint: "Echo", Kind: transport.HTTP, Peer: "127.0.0.1:50000"}},
		{"http-client", transport.Call{Service: "bench", Endpoint: "Echo", Kind: transport.HTTP, Client: true, Peer: "127.0.0.1:8080"}},
		{"grpc-server", transport.Call{Service: "bench", Endpoint: "Echo", Kind: transport.GRPC, Peer: "127.0.0.1:50000"}},
		{"grpc-client", transport.Call{Service: "bench", Endpoint: "Echo", Kind: transport.GRPC, Client: true, Peer: "127.0.0.1:9090"}},
		{"nats-server", transport.Call{Service: "bench", Endpoint: "Echo", Kind: transport.NATS}},
		{"nats-client", transport.Call{Service: "bench", Endpoint: "Echo", Kind: transport.NATS, Client: true, Peer: "127.0.0.1:4222"}},
	}
}
