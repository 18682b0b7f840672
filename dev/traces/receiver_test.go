package traces_test

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ferry-go/ferry/dev/traces"
)

const (
	ctProto = "application/x-protobuf"
	ctJSON  = "application/json"
)

var (
	tid     = mustHex("5b8efff798038103d269b633813fc60c")
	rootID  = mustHex("eee19b7ec3c1b174")
	childID = mustHex("eee19b7ec3c1b173")
	linkTID = mustHex("0102030405060708090a0b0c0d0e0f10")
	linkSID = mustHex("0102030405060708")
	t0      = uint64(1_700_000_000_000_000_000)
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func kv(k string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: v}
}
func str(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

// sample is a request of two spans of service orders, with an attribute of
// every kind of OTLP value, an exception event and a link.
func sample() *coltracepb.ExportTraceServiceRequest {
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", str("orders"))}},
		ScopeSpans: []*tracepb.ScopeSpans{{
			Scope: &commonpb.InstrumentationScope{Name: "orders-lib"},
			Spans: []*tracepb.Span{{
				TraceId: tid, SpanId: rootID, Name: "POST /orders", Kind: tracepb.Span_SPAN_KIND_SERVER,
				StartTimeUnixNano: t0, EndTimeUnixNano: t0 + 5_000_000,
				Attributes: []*commonpb.KeyValue{
					kv("s", str("x")),
					kv("b", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}),
					kv("i", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -7}}),
					kv("d", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}}),
					kv("nan", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: math.NaN()}}),
					kv("arr", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
						str("a"), {Value: &commonpb.AnyValue_IntValue{IntValue: 1}}, {Value: &commonpb.AnyValue_BoolValue{}},
					}}}}),
					kv("kv", &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{kv("k", str("v"))}}}}),
					kv("bytes", &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0, 1, 0xff}}}),
					kv("empty", &commonpb.AnyValue{}),
				},
				Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "boom"},
				Events: []*tracepb.Span_Event{{
					Name: "exception", TimeUnixNano: t0 + 4_000_000,
					Attributes: []*commonpb.KeyValue{kv("exception.type", str("*errors.errorString")), kv("exception.message", str("boom"))},
				}},
				Links: []*tracepb.Span_Link{{TraceId: linkTID, SpanId: linkSID, Attributes: []*commonpb.KeyValue{kv("messaging.system", str("nats"))}}},
			}, {
				TraceId: tid, SpanId: childID, ParentSpanId: rootID, Name: "INSERT orders", Kind: tracepb.Span_SPAN_KIND_CLIENT,
				StartTimeUnixNano: t0 + 1_000_000, EndTimeUnixNano: t0 + 3_000_000,
				Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK},
			}},
		}},
	}}}
}

// sampleOTLPJSON is sample written as the OTLP spec writes OTLP/JSON: ids in
// hex (upper case here: the spec says either), enums as numbers, 64-bit
// integers as strings, and a field this receiver does not know.
const sampleOTLPJSON = `{"resourceSpans":[{
  "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"orders"}}]},
  "scopeSpans":[{"scope":{"name":"orders-lib"},"spans":[{
    "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"",
    "name":"POST /orders","kind":2,
    "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000005000000",
    "attributes":[
      {"key":"s","value":{"stringValue":"x"}},
      {"key":"b","value":{"boolValue":true}},
      {"key":"i","value":{"intValue":"-7"}},
      {"key":"d","value":{"doubleValue":1.5}},
      {"key":"nan","value":{"doubleValue":"NaN"}},
      {"key":"arr","value":{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":1},{"boolValue":false}]}}},
      {"key":"kv","value":{"kvlistValue":{"values":[{"key":"k","value":{"stringValue":"v"}}]}}},
      {"key":"bytes","value":{"bytesValue":"AAH/"}},
      {"key":"empty","value":{}}
    ],
    "status":{"code":2,"message":"boom"},
    "events":[{"name":"exception","timeUnixNano":"1700000000004000000","attributes":[
      {"key":"exception.type","value":{"stringValue":"*errors.errorString"}},
      {"key":"exception.message","value":{"stringValue":"boom"}}]}],
    "links":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708",
      "attributes":[{"key":"messaging.system","value":{"stringValue":"nats"}}]}],
    "aFieldFromTheFuture":{"x":1}
  },{
    "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b173","parentSpanId":"eee19b7ec3c1b174",
    "name":"INSERT orders","kind":3,
    "startTimeUnixNano":"1700000000001000000","endTimeUnixNano":"1700000000003000000",
    "status":{"code":1}
  }]}]
}]}`

// post sends body to the receiver at u and returns the response and its body.
func post(t *testing.T, u, contentType, encoding string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// exportOK checks a 200 answer: an ExportTraceServiceResponse in the
// request's encoding, which it returns.
func exportOK(t *testing.T, resp *http.Response, body []byte, contentType string) *coltracepb.ExportTraceServiceResponse {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s: %q", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != contentType {
		t.Fatalf("response Content-Type %q, want %q", ct, contentType)
	}
	var out coltracepb.ExportTraceServiceResponse
	unmarshal := proto.Unmarshal
	if contentType == ctJSON {
		unmarshal = protojson.Unmarshal
	}
	if err := unmarshal(body, &out); err != nil {
		t.Fatalf("response %q: %v", body, err)
	}
	return &out
}

// failed checks a 4xx answer: a google.rpc.Status in the request's encoding
// with the given code whose message says want.
func failed(t *testing.T, resp *http.Response, body []byte, status int, contentType string, code int32, want string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %s, want %d: %q", resp.Status, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != contentType {
		t.Fatalf("response Content-Type %q, want %q", ct, contentType)
	}
	var st statuspb.Status
	unmarshal := proto.Unmarshal
	if contentType == ctJSON {
		unmarshal = protojson.Unmarshal
	}
	if err := unmarshal(body, &st); err != nil {
		t.Fatalf("response %q is no google.rpc.Status: %v", body, err)
	}
	if st.Code != code || !strings.Contains(st.Message, want) {
		t.Fatalf("status {code %d, %q}, want code %d saying %q", st.Code, st.Message, code, want)
	}
}

// TestReceiverEncodings sends the same spans as protobuf, as protojson
// writes them (ids in base64) and as the OTLP spec writes JSON (ids in hex),
// each plain and gzipped, and finds the same trace in each store, flattened
// as the package says.
func TestReceiverEncodings(t *testing.T) {
	pb, err := proto.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	pj, err := protojson.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	var first *traces.Trace
	for _, tc := range []struct {
		name, contentType string
		body              []byte
	}{
		{"protobuf", ctProto, pb},
		{"protojson", ctJSON, pj},
		{"otlp-json", ctJSON, []byte(sampleOTLPJSON)},
		{"otlp-json-charset", ctJSON + "; charset=utf-8", []byte(sampleOTLPJSON)},
		{"application/protobuf", "application/protobuf", pb},
	} {
		for _, gz := range []bool{false, true} {
			name, body, encoding := tc.name, tc.body, ""
			if gz {
				name, body, encoding = name+"+gzip", gzipped(t, body), "gzip"
			}
			t.Run(name, func(t *testing.T) {
				store := traces.NewStore(0)
				srv := dashboard(t, store)
				resp, out := post(t, srv.URL+"/v1/traces", tc.contentType, encoding, bytes.NewReader(body))
				want := ctProto
				if strings.HasPrefix(tc.contentType, ctJSON) {
					want = ctJSON
				}
				if r := exportOK(t, resp, out, want); r.PartialSuccess != nil {
					t.Fatalf("partial success %v", r.PartialSuccess)
				}
				tr, ok := store.Get(hex.EncodeToString(tid))
				if !ok {
					t.Fatalf("trace not stored; the store has %+v", store.List())
				}
				if first == nil {
					first = &tr
					checkSample(t, tr)
				} else if !reflect.DeepEqual(tr, *first) {
					t.Fatalf("trace differs from the protobuf one:\n%+v\nwant\n%+v", tr, *first)
				}
			})
		}
	}
}

// checkSample checks sample() as stored.
func checkSample(t *testing.T, tr traces.Trace) {
	t.Helper()
	start := time.Unix(0, int64(t0)).UTC()
	if tr.Root != "POST /orders" || tr.RootService != "orders" || !tr.Start.Equal(start) || tr.Duration != 5*time.Millisecond ||
		tr.SpanCount != 2 || !tr.Error || !reflect.DeepEqual(tr.Services, []string{"orders"}) {
		t.Errorf("summary %+v", tr.Summary)
	}
	if len(tr.Spans) != 2 {
		t.Fatalf("%d spans, want 2", len(tr.Spans))
	}
	root, child := tr.Spans[0], tr.Spans[1]
	wantRoot := traces.Span{
		TraceID: hex.EncodeToString(tid), SpanID: hex.EncodeToString(rootID), Name: "POST /orders", Kind: "server",
		Service: "orders", Scope: "orders-lib", Start: start, End: start.Add(5 * time.Millisecond),
		Status: traces.StatusError, StatusMessage: "boom",
		Attributes: map[string]any{
			"s": "x", "b": true, "i": int64(-7), "d": 1.5, "nan": "NaN",
			"arr": []any{"a", int64(1), false}, "kv": map[string]any{"k": "v"}, "bytes": "AAH/", "empty": nil,
		},
		Resource: map[string]any{"service.name": "orders"},
		Events: []traces.Event{{Name: "exception", Time: start.Add(4 * time.Millisecond),
			Attributes: map[string]any{"exception.type": "*errors.errorString", "exception.message": "boom"}}},
		Links: []traces.Link{{TraceID: hex.EncodeToString(linkTID), SpanID: hex.EncodeToString(linkSID),
			Attributes: map[string]any{"messaging.system": "nats"}}},
	}
	if !reflect.DeepEqual(root, wantRoot) {
		t.Errorf("root span\n%#v\nwant\n%#v", root, wantRoot)
	}
	if child.ParentSpanID != hex.EncodeToString(rootID) || child.Depth != 1 || child.Kind != "client" || child.Status != traces.StatusOK ||
		child.Duration() != 2*time.Millisecond || child.Attributes != nil {
		t.Errorf("child span %+v", child)
	}
}

// TestReceiverBadBody: a body that is not an export request is answered 400
// with a google.rpc.Status saying so, in the request's encoding, and stores
// nothing.
func TestReceiverBadBody(t *testing.T) {
	store := traces.NewStore(0)
	srv := dashboard(t, store)
	u := srv.URL + "/v1/traces"
	for _, tc := range []struct {
		name, contentType, encoding string
		body                        []byte
		want                        string
	}{
		{"truncated protobuf", ctProto, "", []byte("\x0a\x05ab"), "protobuf body is not an ExportTraceServiceRequest"},
		{"truncated JSON", ctJSON, "", []byte(`{"resourceSpans":[`), "JSON body is not an ExportTraceServiceRequest"},
		{"JSON of another shape", ctJSON, "", []byte(`{"resourceSpans":5}`), "JSON body is not an ExportTraceServiceRequest"},
		{"not JSON", ctJSON, "", []byte(`hello`), "JSON body is not an ExportTraceServiceRequest"},
		{"not UTF-8", ctJSON, "", []byte("\x95"), "JSON body is not an ExportTraceServiceRequest"}, // the message quotes the byte
		{"not gzip", ctProto, "gzip", []byte("plain"), "gzip body"},
		{"truncated gzip", ctJSON, "gzip", gzipped(t, []byte(sampleOTLPJSON))[:40], "gzip body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, u, tc.contentType, tc.encoding, bytes.NewReader(tc.body))
			failed(t, resp, body, http.StatusBadRequest, tc.contentType, 3, tc.want)
		})
	}
	if v := store.Version(); v != 0 || len(store.List()) != 0 {
		t.Fatalf("store at version %d with %v after bad bodies", v, store.List())
	}
}

// TestReceiverRefuses: another content type or encoding is 415, another
// method 405, each in plain text.
func TestReceiverRefuses(t *testing.T) {
	srv := dashboard(t, traces.NewStore(0))
	u := srv.URL + "/v1/traces"
	pb, _ := proto.Marshal(sample())
	for _, tc := range []struct {
		name, contentType, encoding string
		want                        string
	}{
		{"text", "text/plain", "", `content type "text/plain"`},
		{"none", "", "", `content type ""`},
		{"form", "application/x-www-form-urlencoded", "", "takes application/x-protobuf or application/json"},
		{"brotli", ctProto, "br", `content encoding "br": want gzip or none`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, u, tc.contentType, tc.encoding, bytes.NewReader(pb))
			if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(string(body), tc.want) ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Fatalf("%s %q (%s), want 415 saying %q", resp.Status, body, resp.Header.Get("Content-Type"), tc.want)
			}
		})
	}
	for _, method := range []string{http.MethodGet, http.MethodPut} {
		req, _ := http.NewRequest(method, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
			t.Fatalf("%s: %s, Allow %q; want 405, Allow POST", method, resp.Status, resp.Header.Get("Allow"))
		}
	}
}

// TestReceiverBodyLimit: a body over the limit — declared, streamed without
// a length, or only once unzipped — is 413 with a google.rpc.Status
// (RESOURCE_EXHAUSTED), and one at the limit is taken.
func TestReceiverBodyLimit(t *testing.T) {
	const limit = 4096
	store := traces.NewStore(0)
	srv := dashboard(t, store, traces.WithMaxBody(limit))
	u := srv.URL + "/v1/traces"

	big := sample()
	big.ResourceSpans[0].ScopeSpans[0].Spans[0].Name = strings.Repeat("n", 2*limit)
	over, err := proto.Marshal(big)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, u, ctProto, "", bytes.NewReader(over))
	failed(t, resp, body, http.StatusRequestEntityTooLarge, ctProto, 8, "request body over the limit of 4096 bytes")

	// No Content-Length: the request is chunked.
	resp, body = post(t, u, ctProto, "", io.MultiReader(bytes.NewReader(over)))
	failed(t, resp, body, http.StatusRequestEntityTooLarge, ctProto, 8, "request body over the limit of 4096 bytes")

	zipped := gzipped(t, over)
	if len(zipped) > limit {
		t.Fatalf("the zipped body is %d bytes; the test needs it under %d", len(zipped), limit)
	}
	resp, body = post(t, u, ctProto, "gzip", bytes.NewReader(zipped))
	failed(t, resp, body, http.StatusRequestEntityTooLarge, ctProto, 8, "request body over the limit of 4096 bytes")
	if len(store.List()) != 0 {
		t.Fatal("a body over the limit was stored")
	}

	// Exactly at the limit is fine.
	big.ResourceSpans[0].ScopeSpans[0].Spans[0].Name = ""
	small, _ := proto.Marshal(big)
	big.ResourceSpans[0].ScopeSpans[0].Spans[0].Name = strings.Repeat("n", limit-len(small)-3) // 3: the field's tag and length
	at, _ := proto.Marshal(big)
	if len(at) != limit {
		t.Fatalf("the body at the limit is %d bytes", len(at))
	}
	resp, body = post(t, u, ctProto, "", bytes.NewReader(at))
	exportOK(t, resp, body, ctProto)
}

// TestReceiverInvalidIDs: spans without a 16-byte trace id and an 8-byte
// span id are not kept, and the answer's partial_success counts them; the
// other spans of the request are kept. An empty request is fine.
func TestReceiverInvalidIDs(t *testing.T) {
	store := traces.NewStore(0)
	srv := dashboard(t, store)
	req := sample()
	spans := req.ResourceSpans[0].ScopeSpans[0].Spans
	spans = append(spans, &tracepb.Span{TraceId: nil, SpanId: rootID, Name: "no trace id"}, &tracepb.Span{TraceId: tid, SpanId: rootID[:7], Name: "short span id"})
	req.ResourceSpans[0].ScopeSpans[0].Spans = spans
	for _, contentType := range []string{ctProto, ctJSON} {
		marshal := proto.Marshal
		if contentType == ctJSON {
			marshal = protojson.Marshal
		}
		b, err := marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := post(t, srv.URL+"/v1/traces", contentType, "", bytes.NewReader(b))
		ps := exportOK(t, resp, body, contentType).GetPartialSuccess()
		if ps.GetRejectedSpans() != 2 || ps.GetErrorMessage() != "spans not kept: 2 without a 16-byte trace id and an 8-byte span id" {
			t.Fatalf("%s: partial success %v, want 2 spans rejected for their ids", contentType, ps)
		}
	}
	if list := store.List(); len(list) != 1 || list[0].SpanCount != 2 {
		t.Fatalf("store has %+v, want the two valid spans", list)
	}

	v := store.Version()
	resp, body := post(t, srv.URL+"/v1/traces", ctProto, "", nil)
	if r := exportOK(t, resp, body, ctProto); r.PartialSuccess != nil {
		t.Fatalf("empty request: partial success %v", r.PartialSuccess)
	}
	if store.Version() != v {
		t.Fatal("an empty request changed the store")
	}
}
