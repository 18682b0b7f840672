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
//		svc := ferry.New(srv,
//			ferry.WithHTTP(":8080"), // POST /greeter/Hello, GET /v1/hello/{name}
//			ferry.WithGRPC(":9090"), // /greeter.Greeter/Hello, with reflection and health
//			ferry.WithNATS(""),      // subject greeter.Hello; "" starts an embedded NATS server
//		)
//		if err := svc.Run(context.Background()); err != nil {
//			slog.Error("greeter stopped", "err", err)
//			os.Exit(1)
//		}
//	}
//
// Run starts the transports in order, stops on SIGINT, SIGTERM or when its
// context ends, drains in-flight calls within the shutdown timeout and stops
// the transports in reverse order. It never calls os.Exit.
//
// The layers below the root package are usable on their own: server (typed
// endpoints), middleware (the one Middleware type), errs (the error model),
// codec, transport/http, transport/grpc and transport/nats (each with a
// server and a client side), natsembed (an in-process NATS server) and
// ferrytest (test helpers and the transport conformance suite).
package ferry
