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
//
// # Security
//
// On loopback the server lets any local client in, as a development server
// should (the nats CLI works against it as is). Beyond loopback it must not:
// with the NATS transport, a client that may subscribe can join a
// service's queue group and receive its requests, Authorization headers
// included. So [Start] refuses, before it listens, a non-loopback Host
// ("0.0.0.0" and "::" included) unless clients must authenticate:
//
//   - [Options.Users]: names and passwords, each with its own subject
//     [Permissions] (a caller may publish to orders.*, only the orders
//     service may subscribe to it);
//   - [Options.Token]: one shared token;
//   - [Options.TLS] with ClientAuth tls.RequireAndVerifyClientCert: every
//     client presents a certificate ClientCAs signed;
//   - authentication set by [Options.Configure] on the nats-server options
//     (NKey users, a JWT operator, …);
//
// or [Options.AllowAnonymous] says the network is trusted. Cluster routes
// beyond loopback need route authentication (through Configure) or
// AllowAnonymous likewise.
//
// [Options.TLS] serves clients over TLS; ClientURL then starts with tls://.
//
//	s, err := natsembed.Start(ctx, natsembed.Options{
//		Host: "0.0.0.0", Port: 4222,
//		Users: []natsembed.User{
//			{Name: "orders", Password: os.Getenv("ORDERS_NATS_PASSWORD")},
//			{Name: "caller", Password: os.Getenv("CALLER_NATS_PASSWORD"), Permissions: &natsembed.Permissions{
//				Publish:   natsembed.SubjectPermission{Allow: []string{"orders.*"}},
//				Subscribe: natsembed.SubjectPermission{Allow: []string{"_INBOX.>"}},
//			}},
//		},
//		TLS: serverTLS, // certificate and key; ClientCAs and ClientAuth for mutual TLS
//	})
//
// An embedded server is one process's server: it stops with the process and
// holds its JetStream data alone. When several services share NATS, or the
// data must outlive a deploy, run a NATS cluster (nats.url) and keep
// accounts and credentials there, managed by nsc.
package natsembed
