package telemetry

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// SemconvSchemaURL is the schema URL of the OpenTelemetry semantic
// conventions this package follows: v1.43.0, the newest in the OTel Go
// module Ferry requires. Calls over HTTP follow the HTTP conventions,
// over gRPC and NATS the RPC conventions (rpc.system.name, rpc.method,
// rpc.response.status_code), events the messaging conventions.
const SemconvSchemaURL = semconv.SchemaURL

// Attribute keys of Ferry's own, outside the semantic conventions.
const (
	// CodeKey holds the call's canonical Ferry code ("ok",
	// "invalid_argument", ...): the same value whatever carried the call.
	CodeKey = attribute.Key("ferry.code")
	// EndpointKey holds the called endpoint as "service/Endpoint"
	// ("payments/Charge"): the same value whatever carried the call, so one
	// query finds an endpoint's spans and series on every transport.
	EndpointKey = attribute.Key("ferry.endpoint")
	// AttemptKey holds a delivery's attempt number (from 1).
	AttemptKey = attribute.Key("ferry.delivery.attempt")
)

// instrumentationName names the tracer and meter of this package.
const instrumentationName = "github.com/ferry-go/ferry/telemetry"

// OK is the ferry.code value of a call that succeeded (errs has no OK code).
const OK = "ok"

// codeName returns the ferry.code value of err.
func codeName(err error) string { return codeString(errs.CodeOf(err)) }

// codeString returns the ferry.code value of c; the zero Code (what
// errs.CodeOf returns for nil) is "ok".
func codeString(c errs.Code) string {
	if c == 0 {
		return OK
	}
	return c.String()
}

// statusNames are the gRPC status code names, indexed by code: Ferry's
// canonical codes are gRPC's, with the same numbers (and 0 is OK).
var statusNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

// statusName returns the rpc.response.status_code value of code c: the
// gRPC status code name ("OK", "UNAVAILABLE").
func statusName(c errs.Code) string {
	if int(c) < len(statusNames) {
		return statusNames[c]
	}
	return "UNKNOWN"
}

// httpStatus returns the http.response.status_code of a call that ended
// with code c: the status Ferry's HTTP transport writes for it
// (errs.HTTPStatus), 200 on success.
func httpStatus(c errs.Code) int {
	if c == 0 {
		return http.StatusOK
	}
	return errs.HTTPStatus(c)
}

// style is which conventions a call follows.
type style uint8

const (
	// rpcStyle: the RPC conventions with rpc.method "service/Endpoint" —
	// NATS, plug-in transports, and calls whose transport gave no Method.
	rpcStyle style = iota
	// grpcStyle: the RPC conventions with rpc.method the gRPC method
	// ("payments.Payments/Charge").
	grpcStyle
	// httpStyle: the HTTP conventions.
	httpStyle
)

func styleOf(call *transport.Call) style {
	switch {
	case call.Kind == transport.HTTP && call.Method != "":
		return httpStyle
	case call.Kind == transport.GRPC && len(call.Method) > 1 && call.Method[0] == '/':
		return grpcStyle
	}
	return rpcStyle
}

// rpcSystem is the rpc.system.name value of a transport: "grpc" is the
// convention's own; "nats" (and a plug-in transport's kind) is a custom
// value, named after the transport: the conventions list none for NATS
// request-reply.
func rpcSystem(k transport.Kind) attribute.KeyValue {
	if k == transport.GRPC {
		return semconv.RPCSystemNameGRPC
	}
	return semconv.RPCSystemNameKey.String(k.String())
}

// httpMethod returns the http.request.method value of m: m itself when it
// is one of the methods the HTTP conventions know, else "_OTHER" (ok
// false), as they require.
func httpMethod(m string) (string, bool) {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodHead, http.MethodOptions, http.MethodConnect, http.MethodTrace, "QUERY":
		return m, true
	}
	return "_OTHER", false
}

// urlScheme returns the url.scheme of an HTTP call.
func urlScheme(tls bool) attribute.KeyValue {
	if tls {
		return semconv.URLScheme("https")
	}
	return semconv.URLScheme("http")
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

// failed reports whether a call that ended with code c failed in the
// conventions' sense — its span is Error and its error.type set: on a
// client every error; on a server only its own faults (HTTP: a 5xx
// status; RPC: serverFault). A server answering not_found did its job.
func failed(st style, client bool, c errs.Code) bool {
	switch {
	case c == 0:
		return false
	case client:
		return true
	case st == httpStyle:
		return httpStatus(c) >= 500
	}
	return serverFault(c)
}

// splitPeer splits a host:port peer into host and port (-1 when it has
// none). A gRPC target's scheme and authority ("dns:///greeter:9090") are
// dropped.
func splitPeer(peer string) (string, int) {
	if i := strings.Index(peer, "://"); i >= 0 {
		peer = peer[i+3:]
		if j := strings.LastIndexByte(peer, '/'); j >= 0 {
			peer = peer[j+1:]
		}
	}
	host, port, err := net.SplitHostPort(peer)
	if err != nil {
		return peer, -1
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return host, -1
	}
	return host, p
}

// peerAttrs appends network.peer.address and network.peer.port of a
// host:port peer (the whole string as the address if it does not split).
func peerAttrs(peer string, attrs []attribute.KeyValue) []attribute.KeyValue {
	if peer == "" {
		return attrs
	}
	host, port := splitPeer(peer)
	attrs = append(attrs, semconv.NetworkPeerAddress(host))
	if port >= 0 {
		attrs = append(attrs, semconv.NetworkPeerPort(port))
	}
	return attrs
}

// serverAttrs appends server.address and server.port of the instance a
// client dialled (peer, host:port); an HTTP URL without a port has its
// scheme's default (defPort, 0 for none).
func serverAttrs(peer string, defPort int, attrs []attribute.KeyValue) []attribute.KeyValue {
	if peer == "" {
		return attrs
	}
	host, port := splitPeer(peer)
	if port < 0 {
		port = defPort
	}
	attrs = append(attrs, semconv.ServerAddress(host))
	if port > 0 {
		attrs = append(attrs, semconv.ServerPort(port))
	}
	return attrs
}

// defaultPort is the port of an HTTP URL that names none.
func defaultPort(tls bool) int {
	if tls {
		return 443
	}
	return 80
}

// deliveryOf returns the delivery in ctx, if call may be one: a client
// call or a call with a method (every built-in transport names its HTTP
// method, gRPC method or NATS subject; a delivery's call has none) is not,
// which spares an RPC call a look-up through its whole context chain.
func deliveryOf(ctx context.Context, call *transport.Call) (*broker.Delivery, bool) {
	if call.Client || call.Method != "" {
		return nil, false
	}
	return broker.DeliveryFromContext(ctx)
}

// isEvent reports whether the call in ctx is the delivery d (rather than a
// call made while handling it).
func isEvent(call *transport.Call, d *broker.Delivery, ok bool) bool {
	return ok && d != nil && !call.Client && call.Endpoint == d.Topic
}
