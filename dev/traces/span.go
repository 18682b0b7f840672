package traces

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Span is one received span, flattened from OTLP for the dashboard: ids in
// lower-case hex, times as time.Time (UTC), the service from its resource,
// attribute values as plain Go values.
type Span struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
	// ParentSpanID is empty for a root span.
	ParentSpanID string `json:"parent_span_id,omitempty"`
	Name         string `json:"name"`
	// Kind is "internal", "server", "client", "producer", "consumer" or
	// "unspecified".
	Kind string `json:"kind"`
	// Service is the resource's service.name ("unknown_service" when the
	// sender gave none).
	Service string `json:"service"`
	// Scope is the instrumentation scope (the tracer's name).
	Scope string    `json:"scope,omitempty"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Status is "unset", "ok" or "error"; StatusMessage says why for an
	// error.
	Status        string `json:"status"`
	StatusMessage string `json:"status_message,omitempty"`
	// Attributes are the span's attributes (see the package doc for the values).
	Attributes map[string]any `json:"attributes,omitempty"`
	// Resource are the attributes of the resource that sent the span
	// (service.name, service.version, host…).
	Resource map[string]any `json:"resource,omitempty"`
	// Events are the span's events in the order recorded; a recorded error
	// is an event named "exception".
	Events []Event `json:"events,omitempty"`
	Links  []Link  `json:"links,omitempty"`

	// Depth is the number of ancestors the span has in its trace, as
	// Store.Get computes it from the parent links: 0 for the root and for a
	// span whose parent was not received.
	Depth int `json:"depth"`
}

// Duration is End - Start (0 if End is before Start).
func (s Span) Duration() time.Duration {
	if d := s.End.Sub(s.Start); d > 0 {
		return d
	}
	return 0
}

// Event is a span event (a log line in the span: an exception, a retry…).
type Event struct {
	Name       string         `json:"name"`
	Time       time.Time      `json:"time"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Link points at a span of another (or the same) trace, as a message
// consumer's span links to the producer's.
type Link struct {
	TraceID    string         `json:"trace_id"`
	SpanID     string         `json:"span_id"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Span statuses.
const (
	StatusUnset = "unset"
	StatusOK    = "ok"
	StatusError = "error"
)

// unknownService is the service.name the OpenTelemetry SDKs use when none
// is configured, and so the one a span without it is filed under.
const unknownService = "unknown_service"

// flatten turns an export request's spans into Spans. A span whose trace id
// is not 16 bytes or whose span id is not 8 is not kept: it is counted in
// invalid.
func flatten(rss []*tracepb.ResourceSpans) (spans []Span, invalid int) {
	for _, rs := range rss {
		resource := resourceAttrs(rs.GetResource())
		service, _ := resource["service.name"].(string)
		if service == "" {
			service = unknownService
		}
		for _, ss := range rs.GetScopeSpans() {
			scope := ss.GetScope().GetName()
			for _, sp := range ss.GetSpans() {
				if len(sp.GetTraceId()) != 16 || len(sp.GetSpanId()) != 8 {
					invalid++
					continue
				}
				spans = append(spans, Span{
					TraceID:       hex.EncodeToString(sp.GetTraceId()),
					SpanID:        hex.EncodeToString(sp.GetSpanId()),
					ParentSpanID:  parentID(sp.GetParentSpanId()),
					Name:          sp.GetName(),
					Kind:          kindName(sp.GetKind()),
					Service:       service,
					Scope:         scope,
					Start:         unixNano(sp.GetStartTimeUnixNano()),
					End:           unixNano(sp.GetEndTimeUnixNano()),
					Status:        statusName(sp.GetStatus().GetCode()),
					StatusMessage: sp.GetStatus().GetMessage(),
					Attributes:    attributes(sp.GetAttributes()),
					Resource:      resource,
					Events:        events(sp.GetEvents()),
					Links:         links(sp.GetLinks()),
				})
			}
		}
	}
	return spans, invalid
}

// resourceAttrs are a resource's attributes; the spans of one resource
// share the map, which is never written after this.
func resourceAttrs(r *resourcepb.Resource) map[string]any {
	return attributes(r.GetAttributes())
}

// parentID is the hex of a parent span id; empty (a root) when there is
// none or it is all zeros, as some senders write "no parent".
func parentID(b []byte) string {
	for _, c := range b {
		if c != 0 {
			return hex.EncodeToString(b)
		}
	}
	return ""
}

func events(es []*tracepb.Span_Event) []Event {
	if len(es) == 0 {
		return nil
	}
	out := make([]Event, 0, len(es))
	for _, e := range es {
		out = append(out, Event{Name: e.GetName(), Time: unixNano(e.GetTimeUnixNano()), Attributes: attributes(e.GetAttributes())})
	}
	return out
}

func links(ls []*tracepb.Span_Link) []Link {
	if len(ls) == 0 {
		return nil
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		out = append(out, Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId()), Attributes: attributes(l.GetAttributes())})
	}
	return out
}

// unixNano is the time n nanoseconds after the Unix epoch, in UTC; zero
// (not set) is the zero time.Time, and what does not fit an int64 is the
// last time that does.
func unixNano(n uint64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(min(n, math.MaxInt64))).UTC()
}

func kindName(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return "internal"
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	}
	return "unspecified"
}

func statusName(c tracepb.Status_StatusCode) string {
	switch c {
	case tracepb.Status_STATUS_CODE_OK:
		return StatusOK
	case tracepb.Status_STATUS_CODE_ERROR:
		return StatusError
	}
	return StatusUnset
}

// attributes converts OTLP key-values into a map of plain values: string,
// bool, int64, float64 (NaN and ±Inf as the strings "NaN", "Infinity" and
// "-Infinity", which JSON cannot carry otherwise), []any for an array,
// map[string]any for a key-value list, bytes as a standard base64 string,
// nil for an empty value. A repeated key keeps its last value. Nil for no
// attributes.
func attributes(kvs []*commonpb.KeyValue) map[string]any {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

// value converts one OTLP AnyValue as attributes does.
func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		switch f := x.DoubleValue; {
		case math.IsNaN(f):
			return "NaN"
		case math.IsInf(f, 1):
			return "Infinity"
		case math.IsInf(f, -1):
			return "-Infinity"
		default:
			return f
		}
	case *commonpb.AnyValue_ArrayValue:
		vs := x.ArrayValue.GetValues()
		out := make([]any, len(vs))
		for i, e := range vs {
			out[i] = value(e)
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		m := attributes(x.KvlistValue.GetValues())
		if m == nil {
			m = map[string]any{}
		}
		return m
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	}
	// Unset, or string_value_strindex, which only the profiling signal uses:
	// the spec says to read it as absent.
	return nil
}
