package traces_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ferry-go/ferry/dev/traces"
)

// TestAPI: GET /traces lists the summaries, newest first, with the store's
// version as ETag (304 while nothing changed); GET /traces/{id} gives one
// trace in either case of its id, and a problem with code not_found for a
// trace the store does not hold.
func TestAPI(t *testing.T) {
	store := traces.NewStore(0)
	srv := dashboard(t, store)

	var list traces.List
	h := getJSON(t, srv.URL+"/api/traces", http.StatusOK, &list)
	if list.Version != 0 || list.Traces == nil || len(list.Traces) != 0 || h.Get("ETag") != `"0"` || h.Get("Content-Type") != "application/json" {
		t.Fatalf("empty store: %+v, ETag %q, Content-Type %q", list, h.Get("ETag"), h.Get("Content-Type"))
	}
	if status := conditionalGet(t, srv.URL+"/api/traces", `"0"`); status != http.StatusNotModified {
		t.Fatalf("If-None-Match of the current version: %d, want 304", status)
	}

	store.Add([]traces.Span{span("later", "1", "", 0)}) // starts in 2026, after the sample

	pb, _ := proto.Marshal(sample())
	if resp, body := post(t, srv.URL+"/v1/traces", ctProto, "", bytes.NewReader(pb)); resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %s %q", resp.Status, body)
	}
	if status := conditionalGet(t, srv.URL+"/api/traces", `"0"`); status != http.StatusOK {
		t.Fatalf("If-None-Match of an old version: %d, want 200", status)
	}
	h = getJSON(t, srv.URL+"/api/traces", http.StatusOK, &list)
	if list.Version != 2 || h.Get("ETag") != `"2"` || len(list.Traces) != 2 ||
		list.Traces[0].TraceID != traceID("later") || list.Traces[1].Root != "POST /orders" {
		t.Fatalf("GET /traces = %+v, ETag %q; want version 2, the later trace first", list, h.Get("ETag"))
	}

	var tr struct {
		TraceID   string `json:"trace_id"`
		SpanCount int    `json:"span_count"`
		Duration  int64  `json:"duration_ns"`
		Spans     []struct {
			Name       string         `json:"name"`
			Depth      int            `json:"depth"`
			Attributes map[string]any `json:"attributes"`
		} `json:"spans"`
	}
	getJSON(t, srv.URL+"/api/traces/5B8EFFF798038103D269B633813FC60C", http.StatusOK, &tr)
	if tr.TraceID != "5b8efff798038103d269b633813fc60c" || tr.SpanCount != 2 || tr.Duration != 5_000_000 || len(tr.Spans) != 2 ||
		tr.Spans[1].Name != "INSERT orders" || tr.Spans[1].Depth != 1 || tr.Spans[0].Attributes["nan"] != "NaN" || tr.Spans[0].Attributes["i"] != -7.0 {
		t.Fatalf("GET /traces/{id} = %+v", tr)
	}

	var problem struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	getJSON(t, srv.URL+"/api/traces/0123", http.StatusNotFound, &problem)
	if problem.Status != 404 || problem.Code != "not_found" || !strings.Contains(problem.Detail, `no trace "0123"`) {
		t.Fatalf("unknown trace: %+v", problem)
	}

	resp, body := post(t, srv.URL+"/api/traces", ctJSON, "", strings.NewReader("{}"))
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /traces: %s %q, want 405", resp.Status, body)
	}
}

// conditionalGet GETs u with If-None-Match and returns the status.
func conditionalGet(t *testing.T, u, etag string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("If-None-Match", etag)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
