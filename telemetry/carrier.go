package telemetry

import (
	"strings"

	"github.com/ferry-go/ferry/transport"
	"go.opentelemetry.io/otel/propagation"
)

// HeaderCarrier adapts transport.Header (request metadata on HTTP, gRPC and
// NATS, or a broker message's headers) to propagation.TextMapCarrier.
//
// Keys are written lower-case — gRPC metadata requires it and NATS headers
// are case-sensitive, so every Ferry peer finds "traceparent" under one
// spelling — and read case-insensitively, as transport.Header does, so a
// "Traceparent" set by a foreign NATS client is found too.
type HeaderCarrier struct {
	H transport.Header
}

var _ propagation.TextMapCarrier = HeaderCarrier{}

// Get returns the first value for key, or "".
func (c HeaderCarrier) Get(key string) string {
	if c.H == nil {
		return ""
	}
	return c.H.Get(key)
}

// Set replaces key's values with value, under the lower-case key.
func (c HeaderCarrier) Set(key, value string) {
	if c.H == nil {
		return
	}
	c.H.Set(strings.ToLower(key), value)
}

// Keys returns the keys present (lower-cased, as transport.Header does).
func (c HeaderCarrier) Keys() []string {
	if c.H == nil {
		return nil
	}
	return c.H.Keys()
}

// defaultPropagator is W3C trace context plus baggage.
func defaultPropagator() propagation.TextMapPropagator {
	return w3cPropagator{propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
}

// w3cPropagator marks the default propagator, whose Extract returns its
// context unchanged when the carrier has neither a traceparent nor a
// baggage header: hasW3C says whether Extract can be skipped.
type w3cPropagator struct{ propagation.TextMapPropagator }

// hasW3C reports whether h carries a header the default propagator reads.
func hasW3C(h transport.Header) bool {
	return h != nil && (h.Get("traceparent") != "" || h.Get("baggage") != "")
}
