// Package ferry runs one set of typed Go handlers over HTTP, gRPC and NATS at
// once, behind one middleware pipeline.
//
// Write a handler as a plain function, register it on a server.Server, and
// give the server to a Service with the transports it should speak:
//
//	type HelloRequest struct {
//		Name string `json:"name"`
//	}
//
//	type HelloReply struct {
//		Message string `json:"message"`
//	}
//
//	func Hello(ctx context.Context, req *HelloRequest) (*HelloReply, error) {
//		if req.Name == "" {
//			return nil, errs.New(errs.InvalidArgument, "name is required")
//		}
//		return &HelloReply{Message: "Hello, " + req.Name + "!"}, nil
//	}
//
//	func main() {
//		srv := server.New("greeter", server.WithVersion("1.0.0"))
//		server.Handle(srv, "Hello", Hello, server.WithRoute("GET /v1/hello/{name}"))
//
//		emb := natsembed.New(natsembed.Options{})  // an in-process NATS server
//		nc := fnats.ConnectTo(emb.ClientURL)         // the service's NATS connection
//		svc := ferry.New(srv,
//			ferry.WithConnection(emb), ferry.WithConnection(nc),
//			ferry.WithTransport(fhttp.NewServer(":8080")), // POST /greeter/Hello, GET /v1/hello/{name}
//			ferry.WithTransport(fgrpc.NewServer(":9090")), // /greeter.Greeter/Hello, with reflection and health
//			ferry.WithTransport(nc.Serve()),               // subject greeter.Hello
//		)
//		if err := svc.Run(context.Background()); err != nil {
//			slog.Error("greeter stopped", "err", err)
//			os.Exit(1)
//		}
//	}
//
// Run starts the connections, then the transports, stops on SIGINT, SIGTERM
// or when its context ends, stops every transport from accepting at once,
// drains in-flight calls within the shutdown timeout and closes the
// connections last. It never calls os.Exit.
//
// The root package knows components and their lifecycle only: transports,
// connections (a NATS connection, an embedded NATS server), registries and
// brokers are handed in, so a binary links only what it uses — an HTTP-only
// service does not link nats-server, nats.go or grpc-go.
//
// The layers below the root package are usable on their own: server (typed
// endpoints), middleware (the one Middleware type), errs (the error model),
// codec, transport/http, transport/grpc and transport/nats (each with a
// server and a client side), natsembed (an in-process NATS server) and
// ferrytest (test helpers and the transport conformance suite).
package ferry
