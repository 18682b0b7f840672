package traces_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ferry-go/ferry/dev/traces"
)

// FuzzReceiver sends the receiver arbitrary bodies — protobuf when mode is
// even, JSON when odd, gzipped when mode&2 is set — and checks that it never
// panics, answers 200 with an ExportTraceServiceResponse or 400/413 with a
// google.rpc.Status in the request's encoding, and that whatever it stored
// can be read back whole, with consistent depths, and encoded by the API.
//
// The seeds under testdata/fuzz/FuzzReceiver are the sample request in each
// encoding, with and without gzip, and a few broken or odd ones (cycles of
// parent links, invalid ids, deep values, truncations).
func FuzzReceiver(f *testing.F) {
	f.Fuzz(func(t *testing.T, mode uint8, body []byte) {
		const maxSpans = 8
		store := traces.NewStore(4, traces.WithMaxSpans(maxSpans))
		rc := traces.NewReceiver(store, traces.WithMaxBody(1<<20))
		contentType, unmarshal := ctProto, proto.Unmarshal
		if mode&1 != 0 {
			contentType, unmarshal = ctJSON, protojson.Unmarshal
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if mode&2 != 0 {
			req.Header.Set("Content-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		rc.ServeHTTP(rec, req)

		if ct := rec.Header().Get("Content-Type"); ct != contentType {
			t.Fatalf("%d answered in %q, want %q", rec.Code, ct, contentType)
		}
		switch rec.Code {
		case http.StatusOK:
			if err := unmarshal(rec.Body.Bytes(), &coltracepb.ExportTraceServiceResponse{}); err != nil {
				t.Fatalf("200 with %q: %v", rec.Body.Bytes(), err)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var st statuspb.Status
			if err := unmarshal(rec.Body.Bytes(), &st); err != nil || st.Message == "" {
				t.Fatalf("%d with %q: %v", rec.Code, rec.Body.Bytes(), err)
			}
			if len(store.List()) != 0 {
				t.Fatalf("%d, yet spans were stored", rec.Code)
			}
		default:
			t.Fatalf("status %d: %q", rec.Code, rec.Body.Bytes())
		}

		api := traces.API(store)
		for _, sum := range store.List() {
			tr, ok := store.Get(sum.TraceID)
			if !ok {
				t.Fatalf("trace %s listed but not found", sum.TraceID)
			}
			if len(tr.Spans) != sum.SpanCount || len(tr.Spans) == 0 || len(tr.Spans) > maxSpans+1 {
				t.Fatalf("trace %s: %d spans, summary says %d", sum.TraceID, len(tr.Spans), sum.SpanCount)
			}
			depth := map[string]int{}
			for _, sp := range tr.Spans {
				depth[sp.SpanID] = sp.Depth
			}
			for _, sp := range tr.Spans {
				if sp.TraceID != sum.TraceID || len(sp.TraceID) != 32 || len(sp.SpanID) != 16 {
					t.Fatalf("span %+v in trace %s", sp, sum.TraceID)
				}
				// A span below the top is one below its parent.
				if pd, ok := depth[sp.ParentSpanID]; sp.Depth != 0 && (!ok || pd != sp.Depth-1) {
					t.Fatalf("span %s at depth %d, its parent %q at %d (there: %v)", sp.SpanID, sp.Depth, sp.ParentSpanID, pd, ok)
				}
			}
			if _, err := json.Marshal(tr); err != nil {
				t.Fatalf("trace %s does not encode: %v", sum.TraceID, err)
			}
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/traces/"+sum.TraceID, nil))
			if rec.Code != http.StatusOK || !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("GET /traces/%s: %d %q", sum.TraceID, rec.Code, rec.Body.Bytes())
			}
		}
		rec = httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/traces", nil))
		if rec.Code != http.StatusOK || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("GET /traces: %d %q", rec.Code, rec.Body.Bytes())
		}
	})
}
