// Command ferry is Ferry's command-line tool: it scaffolds new services,
// calls them over HTTP, gRPC or NATS, lists the running ones, describes
// their endpoints, exports their schemas as .proto files and guards those
// schemas against wire-incompatible changes.
//
//	go install github.com/ferry-go/ferry/cmd/ferry@latest
//
//	ferry new demo                                  # a service module in ./demo
//	ferry call demo Hello '{"name":"Ada"}'          # over NATS
//	ferry call demo Hello '{"name":"Ada"}' --addr localhost:9090
//	ferry call grpc.health.v1.Health Check --addr localhost:9090  # any gRPC service
//	ferry services                                  # registry + $SRV discovery
//	ferry describe demo --grpc localhost:9090       # request/response schemas
//	ferry proto export demo --addr localhost:9090   # the .proto reflection serves
//	ferry schema lock demo --addr localhost:9090    # write demo.lock.json
//	ferry schema check demo --addr localhost:9090   # fail on breaking changes
//	ferry outbox schema postgres                    # the outbox and inbox tables, as SQL
//
// Exit status: 0 on success, 1 when the command ran and failed (the error's
// canonical code and message go to stderr), 2 when the command line itself
// is wrong (unknown flag, missing argument, malformed JSON, invalid name).
package main
