package telemetry

import (
	"context"
	"strconv"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing returns middleware that traces every call and event it wraps,
// the same way whatever transport carried it:
//
//   - on a server (Call.Client false) it extracts the W3C trace context
//     (traceparent, tracestate, baggage) from Call.Request and runs the
//     handler in a SERVER span that is its child;
//   - on a client (Call.Client true) it runs the call in a CLIENT span and
//     injects that span's context into Call.Request, which the transport
//     sends as HTTP headers, gRPC metadata or NATS headers;
//   - on a subscription (a broker.Delivery in the context) it extracts the
//     producer's context from the message headers and runs the handler in
//     a CONSUMER span, its child, with the messaging attributes.
//
// RPC spans are named "{service}/{Endpoint}" and carry rpc.system ("grpc",
// or the custom values "http" and "nats"), rpc.service, rpc.method,
// network.peer.* where the transport knows the peer, ferry.code (the
// canonical code, "ok" on success) and, over gRPC, rpc.grpc.status_code.
// A server span is marked Error only for server-fault codes (unknown,
// deadline_exceeded, unimplemented, internal, unavailable, data_loss); a
// client or consumer span for every error.
//
// A nil tp means otel.GetTracerProvider(); a nil prop means W3C trace
// context plus baggage.
func Tracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) middleware.Middleware {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if prop == nil {
		prop = defaultPropagator()
	}
	tracer := tp.Tracer(instrumentationName, trace.WithSchemaURL(SemconvSchemaURL))
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			call, ok := transport.CallFromContext(ctx)
			if !ok {
				return next(ctx, req)
			}
			if d, dok := broker.DeliveryFromContext(ctx); isEvent(call, d, dok) {
				return traceDelivery(ctx, tracer, prop, d, next, req)
			}
			// Attributes are set once the span is known to record: an
			// unsampled call then builds none (samplers see the span name,
			// "{service}/{Endpoint}", but not the rpc.* attributes).
			name := call.Service + "/" + call.Endpoint
			var span trace.Span
			if call.Client {
				ctx, span = tracer.Start(ctx, name, clientKind)
				if call.Request == nil {
					call.Request = transport.Metadata{}
				}
				prop.Inject(ctx, HeaderCarrier{call.Request})
			} else {
				ctx = prop.Extract(ctx, HeaderCarrier{call.Request})
				ctx, span = tracer.Start(ctx, name, serverKind)
			}
			if span.IsRecording() {
				attrs := make([]attribute.KeyValue, 0, 8)
				attrs = append(attrs, rpcSystem(call.Kind), semconv.RPCService(call.Service), semconv.RPCMethod(call.Endpoint))
				span.SetAttributes(peerAttrs(call.Peer, attrs)...)
			}
			resp, err := next(ctx, req)
			endRPC(span, call, err)
			return resp, err
		}
	}
}

var (
	clientKind = trace.WithSpanKind(trace.SpanKindClient)
	serverKind = trace.WithSpanKind(trace.SpanKindServer)
)

// endRPC records the outcome of an RPC span and ends it.
func endRPC(span trace.Span, call *transport.Call, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	code := errs.CodeOf(err)
	span.SetAttributes(CodeKey.String(codeName(err)))
	if call.Kind == transport.GRPC {
		span.SetAttributes(semconv.RPCGRPCStatusCodeKey.Int(int(code)))
	}
	if err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String(code.String()))
		if call.Client || serverFault(code) {
			span.RecordError(err)
			span.SetStatus(codes.Error, code.String())
		}
	}
	span.End()
}

// traceDelivery runs one delivery in a CONSUMER span whose parent is the
// context its producer injected into the message headers.
func traceDelivery(ctx context.Context, tracer trace.Tracer, prop propagation.TextMapPropagator, d *broker.Delivery, next middleware.Handler, req any) (any, error) {
	ctx = prop.Extract(ctx, HeaderCarrier{d.Header})
	attrs := []attribute.KeyValue{
		messagingSystem(d.Kind),
		semconv.MessagingOperationName("process"),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingDestinationName(d.Topic),
		semconv.MessagingDestinationSubscriptionName(d.Subscription),
		semconv.MessagingMessageBodySize(len(d.Data)),
		AttemptKey.Int(d.Attempt),
	}
	if d.ID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(d.ID))
	}
	if d.Subscription != d.Topic { // a queue group
		attrs = append(attrs, semconv.MessagingConsumerGroupName(d.Subscription))
	}
	if d.Sequence != 0 {
		attrs = append(attrs, attribute.String("ferry.delivery.sequence", strconv.FormatUint(d.Sequence, 10)))
	}
	ctx, span := tracer.Start(ctx, "process "+d.Topic, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	resp, err := next(ctx, req)
	if span.IsRecording() {
		span.SetAttributes(CodeKey.String(codeName(err)))
		if err != nil {
			span.SetAttributes(semconv.ErrorTypeKey.String(errs.CodeOf(err).String()))
			span.RecordError(err)
			span.SetStatus(codes.Error, errs.CodeOf(err).String())
		}
	}
	span.End()
	return resp, err
}
