package telemetry

import (
	"net"
	"strconv"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// SemconvSchemaURL is the schema URL of the OpenTelemetry semantic
// conventions this package follows (v1.37.0, the last release whose RPC
// conventions use rpc.system / rpc.service / rpc.method).
const SemconvSchemaURL = semconv.SchemaURL

// Attribute keys of Ferry's own, outside the semantic conventions.
const (
	// CodeKey holds the call's canonical Ferry code ("ok",
	// "invalid_argument", ...): the same value whatever carried the call.
	CodeKey = attribute.Key("ferry.code")
	// AttemptKey holds a delivery's attempt number (from 1).
	AttemptKey = attribute.Key("ferry.delivery.attempt")
)

// instrumentationName names the tracer and meter of this package.
const instrumentationName = "github.com/ferry-go/ferry/telemetry"

// OK is the ferry.code value of a call that succeeded (errs has no OK code).
const OK = "ok"

// codeName returns the ferry.code value of err.
func codeName(err error) string {
	if err == nil {
		return OK
	}
	return errs.CodeOf(err).String()
}

// rpcSystem is the rpc.system value of a transport: "grpc" is the
// convention's own; "http" and "nats" are custom values (the conventions
// list none for them), named after the transport.
func rpcSystem(k transport.Kind) attribute.KeyValue {
	if k == transport.GRPC {
		return semconv.RPCSystemGRPC
	}
	return semconv.RPCSystemKey.String(k.String())
}

// messagingSystem is the messaging.system value of a delivery's transport:
// "nats" for NATS and JetStream (a custom value: the conventions list none
// for NATS), "memory" for the in-process broker.
func messagingSystem(k transport.Kind) attribute.KeyValue {
	if k == transport.NATS {
		return semconv.MessagingSystemKey.String("nats")
	}
	return semconv.MessagingSystemKey.String("memory")
}

// serverFault reports whether c is a server-side failure, the codes the
// RPC conventions mark a SERVER span as Error for (gRPC: UNKNOWN,
// DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS).
// Every other code is the caller's fault and leaves a server span unset.
func serverFault(c errs.Code) bool {
	switch c {
	case errs.Unknown, errs.DeadlineExceeded, errs.Unimplemented, errs.Internal, errs.Unavailable, errs.DataLoss:
		return true
	}
	return false
}

// peerAttrs returns network.peer.address and network.peer.port of a
// host:port peer (the whole string as the address if it does not split).
func peerAttrs(peer string, attrs []attribute.KeyValue) []attribute.KeyValue {
	if peer == "" {
		return attrs
	}
	host, port, err := net.SplitHostPort(peer)
	if err != nil {
		return append(attrs, semconv.NetworkPeerAddress(peer))
	}
	attrs = append(attrs, semconv.NetworkPeerAddress(host))
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, semconv.NetworkPeerPort(p))
	}
	return attrs
}

// isEvent reports whether the call in ctx is the delivery d (rather than a
// call made while handling it).
func isEvent(call *transport.Call, d *broker.Delivery, ok bool) bool {
	return ok && d != nil && !call.Client && call.Endpoint == d.Topic
}
