package telemetry

import (
	"context"
	"strconv"
	"sync/atomic"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing returns middleware that traces every call and event it wraps:
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
// Each call span follows the semantic conventions of what carried it (see
// the package documentation for the table): over HTTP the HTTP
// conventions ("POST /greeter/Hello", http.request.method, http.route,
// http.response.status_code, ...), over gRPC and NATS the RPC conventions
// ("payments.Payments/Charge", rpc.system.name, rpc.method,
// rpc.response.status_code, ...). Every call span also carries Ferry's
// ferry.endpoint ("payments/Charge") and ferry.code ("ok" on success),
// the same whatever the transport, and error.type (the code) on failure.
// A server span is marked Error only for server faults (HTTP: a 5xx
// status; RPC: unknown, deadline_exceeded, unimplemented, internal,
// unavailable, data_loss); a client or consumer span for every error.
//
// Attributes are built only for spans that record, and span names are
// cached: an unsampled call costs a non-recording span.
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
	names := new(nameCache)
	_, w3c := prop.(w3cPropagator)
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			call, ok := transport.CallFromContext(ctx)
			if !ok {
				return next(ctx, req)
			}
			if d, dok := deliveryOf(ctx, call); isEvent(call, d, dok) {
				return traceDelivery(ctx, tracer, prop, d, next, req)
			}
			st := styleOf(call)
			name := spanName(names, st, call)
			var span trace.Span
			if call.Client {
				ctx, span = tracer.Start(ctx, name, clientKind...)
				if call.Request == nil {
					call.Request = transport.Metadata{}
				}
				prop.Inject(ctx, HeaderCarrier{call.Request})
			} else {
				if !w3c || hasW3C(call.Request) { // nothing to extract: skip the carrier
					ctx = prop.Extract(ctx, HeaderCarrier{call.Request})
				}
				ctx, span = tracer.Start(ctx, name, serverKind...)
			}
			if span.IsRecording() {
				span.SetAttributes(startAttrs(names, st, call, name)...)
				if call.Stream != nil {
					messageEvents(ctx, span)
				}
			}
			resp, err := next(ctx, req)
			endCall(span, st, call, err)
			return resp, err
		}
	}
}

// The span kinds as option lists, made once: a variadic call through the
// Tracer interface would allocate its option slice on every call.
var (
	clientKind   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
	serverKind   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	consumerKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	producerKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
)

// spanName names a call span: "{method} {route}" over HTTP (the method
// alone without a route), the gRPC method without its leading slash, and
// "service/Endpoint" otherwise (NATS): the rpc.method value.
func spanName(names *nameCache, st style, call *transport.Call) string {
	switch st {
	case httpStyle:
		m, _ := httpMethod(call.Method)
		if m == "_OTHER" {
			m = "HTTP"
		}
		if call.Route == "" {
			return m
		}
		return names.join(m, " ", call.Route)
	case grpcStyle:
		return call.Method[1:]
	}
	return names.join(call.Service, "/", call.Endpoint)
}

// nameCache holds the strings spans are named and attributed with, a+sep+b
// ("POST /greeter/Hello", "greeter/Hello"), so that steady traffic builds
// none. It is copy-on-write: reads take no lock.
type nameCache struct {
	m atomic.Pointer[map[nameKey]string]
}

type nameKey struct{ a, sep, b string }

// maxCachedNames bounds a nameCache; beyond it names are built per call.
const maxCachedNames = 4096

// join returns a + sep + b.
func (c *nameCache) join(a, sep, b string) string {
	k := nameKey{a, sep, b}
	for {
		old := c.m.Load()
		var cur map[nameKey]string
		if old != nil {
			cur = *old
		}
		if s, ok := cur[k]; ok {
			return s
		}
		s := a + sep + b
		if len(cur) >= maxCachedNames {
			return s
		}
		next := make(map[nameKey]string, len(cur)+1)
		for k, v := range cur {
			next[k] = v
		}
		next[k] = s
		if c.m.CompareAndSwap(old, &next) {
			return s
		}
	}
}

// startAttrs returns the attributes a recording call span starts with;
// name is its span name.
func startAttrs(names *nameCache, st style, call *transport.Call, name string) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 10)
	endpoint := name
	if st != rpcStyle {
		endpoint = names.join(call.Service, "/", call.Endpoint)
	}
	attrs = append(attrs, EndpointKey.String(endpoint))
	switch st {
	case httpStyle:
		m, known := httpMethod(call.Method)
		attrs = append(attrs, semconv.HTTPRequestMethodKey.String(m))
		if !known {
			attrs = append(attrs, semconv.HTTPRequestMethodOriginal(call.Method))
		}
		if call.Client {
			if call.Target != "" {
				attrs = append(attrs, semconv.URLFull(call.Target))
			}
			if call.Route != "" {
				attrs = append(attrs, semconv.URLTemplate(call.Route))
			}
			return serverAttrs(call.Peer, defaultPort(call.TLS), attrs)
		}
		if call.Route != "" {
			attrs = append(attrs, semconv.HTTPRoute(call.Route))
		}
		if call.Target != "" {
			attrs = append(attrs, semconv.URLPath(call.Target))
		}
		attrs = append(attrs, urlScheme(call.TLS))
		if call.Request != nil {
			if ua := call.Request.Get("User-Agent"); ua != "" {
				attrs = append(attrs, semconv.UserAgentOriginal(ua))
			}
		}
		return peerAttrs(call.Peer, attrs)
	case grpcStyle:
		attrs = append(attrs, semconv.RPCSystemNameGRPC, semconv.RPCMethod(name))
		if call.Client {
			return serverAttrs(call.Peer, 0, attrs)
		}
		return peerAttrs(call.Peer, attrs)
	}
	// The NATS client's peer is the NATS server it is connected to, not the
	// service: a network peer, not server.address.
	attrs = append(attrs, rpcSystem(call.Kind), semconv.RPCMethod(name))
	return peerAttrs(call.Peer, attrs)
}

// endCall records the outcome of a call span and ends it.
func endCall(span trace.Span, st style, call *transport.Call, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	code := errs.CodeOf(err)
	attrs := make([]attribute.KeyValue, 0, 3)
	attrs = append(attrs, CodeKey.String(codeString(code)))
	if st != httpStyle {
		attrs = append(attrs, semconv.RPCResponseStatusCode(statusName(code)))
	} else if !call.Client || err == nil || call.Reply != nil {
		// A client call that failed before a response came (call.Reply
		// unset) has no status code.
		attrs = append(attrs, semconv.HTTPResponseStatusCode(httpStatus(code)))
	}
	fault := failed(st, call.Client, code)
	if fault {
		attrs = append(attrs, semconv.ErrorTypeKey.String(code.String()))
	}
	span.SetAttributes(attrs...)
	if fault {
		span.RecordError(err)
		span.SetStatus(codes.Error, code.String())
	}
	span.End()
}

// traceDelivery runs one delivery in a CONSUMER span whose parent is the
// context its producer injected into the message headers.
func traceDelivery(ctx context.Context, tracer trace.Tracer, prop propagation.TextMapPropagator, d *broker.Delivery, next middleware.Handler, req any) (any, error) {
	ctx = prop.Extract(ctx, HeaderCarrier{d.Header})
	if _, light := tracer.(*contextTracer); light { // records nothing: no attributes to build
		ctx, span := tracer.Start(ctx, d.Topic, consumerKind...)
		resp, err := next(ctx, req)
		span.End()
		return resp, err
	}
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

// Message events of a served stream (OpenTelemetry's rpc "message" event):
// one per message the handler receives and sends, numbered from 1 on each
// side. The span covers the whole stream.
var (
	msgReceived = attribute.String("rpc.message.type", "RECEIVED")
	msgSent     = attribute.String("rpc.message.type", "SENT")
)

func messageEvents(ctx context.Context, span trace.Span) {
	var recvd, sent atomic.Int64
	middleware.OnMessages(ctx,
		func(context.Context, any) error {
			span.AddEvent("message", trace.WithAttributes(msgReceived, attribute.Int64("rpc.message.id", recvd.Add(1))))
			return nil
		},
		func(context.Context, any) error {
			span.AddEvent("message", trace.WithAttributes(msgSent, attribute.Int64("rpc.message.id", sent.Add(1))))
			return nil
		})
}
