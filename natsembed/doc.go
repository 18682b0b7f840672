// Package natsembed runs a NATS server inside the current process.
//
// A service with no NATS URL configured, a test, or an example starts one
// with [Start] and connects to [Server.ClientURL]; nothing needs to be
// installed. The server is the real nats-server
// (github.com/nats-io/nats-server/v2), so subjects, queue groups, headers,
// max_payload and JetStream behave as in production.
//
// [StartCluster] starts several servers that form a NATS cluster on
// loopback, each with its own JetStream store, for testing replicated
// streams and node failures; [Options.Cluster] makes one server a member.
//
// Defaults favour tests: the server listens on 127.0.0.1 on a random free
// port, logs nothing, and keeps a JetStream store (when enabled) in a
// temporary directory that Shutdown removes.
package natsembed
