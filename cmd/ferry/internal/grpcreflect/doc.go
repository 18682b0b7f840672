// Package grpcreflect reads a gRPC server's schema through server
// reflection (grpc.reflection.v1) and converts between JSON and messages of
// that schema, so the ferry CLI can call and describe a gRPC service with
// no .proto file and no generated code.
//
// JSON is read with protojson (field names or JSON names, 64-bit integers
// as numbers or strings) and written as encoding/json writes the Go struct
// a Ferry schema was derived from: JSON names, 64-bit integers as numbers,
// timestamps in RFC 3339, unset fields with presence and empty lists as
// null. So ferry call prints the same reply over gRPC as over HTTP and NATS.
package grpcreflect
