// Package grpc serves a Ferry server over gRPC and calls Ferry services over
// gRPC.
//
// Users import it under another name so it does not clash with grpc-go:
//
//	import fgrpc "github.com/ferry-go/ferry/transport/grpc"
//
// # Naming
//
// A Ferry service s becomes the proto package s with '-' replaced by '_',
// holding one proto service named after s in CamelCase; each endpoint is a
// unary method of it. Service "order-service", endpoint "Place" is called as
// /order_service.OrderService/Place. See [ServiceName] and [MethodName].
//
// A service name with a '.', which no Ferry service has, is a fully
// qualified gRPC service name and is used as it is: the Client calls any
// gRPC service that way, ("grpc.health.v1.Health", "Check") as
// /grpc.health.v1.Health/Check. The HTTP and NATS clients refuse such a
// name with InvalidArgument, and so does client.Client, whose registries
// list Ferry services only.
//
// # Server
//
// [Server] is a server.Transport. Request and reply types may be generated
// protobuf messages or plain Go structs; both travel as protobuf (plain
// structs through the schema package codec/protostruct derives from their
// fields), under the standard "proto" content-subtype, so any gRPC client
// can call them. Besides the Ferry service the server runs the standard
// health service (grpc.health.v1.Health) and server reflection, v1 and
// v1alpha, so that grpcurl can list, describe and call endpoints with no
// .proto file at hand:
//
//	grpcurl -plaintext localhost:9090 list
//	grpcurl -plaintext -d '{"name":"Ada"}' localhost:9090 greeter.Greeter/Hello
//
// An unknown service or method is Unimplemented, the gRPC standard that
// clients, proxies and test suites expect, with a message naming the full
// method ("unknown method /greeter.Greeter/Nope"); the client returns it as
// an *errs.Error with code errs.Unimplemented. (HTTP answers the same call
// 404 and NATS not_found, each its protocol's standard.)
//
// Wire behaviour that differs from grpc-go's defaults, for the sake of one
// behaviour across Ferry's transports:
//   - A request body that does not decode is InvalidArgument
//     ("invalid request body: ...").
//   - An *errs.Error from a handler becomes a status with the same code and
//     message; its details travel as one google.rpc.BadRequest whose field
//     violations carry Field and Reason. Any other error is reported as
//     Unknown without its text, as errs.FromError describes.
//
// An oversized message is grpc-go's own ResourceExhausted.
//
// # .proto export and strict field numbers
//
// [FileDescriptor] returns the file descriptor reflection serves for a
// server.Server without starting anything, and [ProtoFile] its .proto
// source (what `ferry proto export` prints for a running service): compile
// it with protoc to call the service with generated code in any language.
// ferrytest.SchemaLock compares it with a committed lock file in tests.
// [WithStrictFieldNumbers] makes Start refuse plain-struct types whose
// fields do not all pin their numbers with pb tags.
//
// # JSON
//
// A call made as application/grpc+json (content-subtype "json", the gRPC
// convention for a JSON codec) is decoded with the server's JSON codec
// (server.WithJSON; an empty message is the zero request, as an empty body
// over HTTP) and answered in JSON, the same bytes the HTTP transport would
// send; generated messages go through protojson. Errors are the same
// statuses as for protobuf calls, a body that does not decode is
// InvalidArgument ("invalid request body: ..."). Any grpc-go client can
// call this way with a codec of its own whose Name is "json"; the Client
// does for a json.RawMessage request, which is how an API gateway forwards
// JSON over gRPC without the Go types. Every other content-subtype is
// protobuf, as before.
//
// A call runs under the caller's grpc-timeout, cut to WithMaxTimeout (5m),
// or under WithDefaultTimeout (30s) when the caller sent none.
//
// # Compression
//
// The package registers grpc-go's gzip compressor (encoding/gzip, in
// grpc-go's process-wide table, the only way grpc-go offers). The server
// accepts gzip-compressed requests and, as grpc-go does, answers a
// compressed request compressed the same way; WithMaxRecvMsgSize bounds a
// request once decompressed. The Client compresses its requests with
// WithCompression("gzip").
//
// # Client
//
// [Client] is a transport.Client. It sends the metadata attached with
// transport.WithMetadata as gRPC metadata, the context deadline as
// grpc-timeout, and turns a failed call's status back into an *errs.Error
// with the code, message and details the server sent.
package grpc
