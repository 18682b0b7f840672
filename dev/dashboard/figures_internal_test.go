package dashboard

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"
)

func stats(name, id string, started time.Time, eps ...*micro.EndpointStats) micro.Stats {
	return micro.Stats{ServiceIdentity: micro.ServiceIdentity{Name: name, ID: id}, Started: started, Endpoints: eps}
}

func ep(name string, n, errs int, total time.Duration) *micro.EndpointStats {
	return &micro.EndpointStats{Name: name, NumRequests: n, NumErrors: errs, ProcessingTime: total}
}

// The rates are the counters' differences between the oldest and the
// newest sample, summed over instances: a restarted instance counts from
// zero, one started within the window counts whole, one already running
// but not in the oldest sample is left out of the window.
func TestStatsFigures(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	old := newSample(t0, []micro.Stats{
		stats("greeter", "a", t0.Add(-time.Hour), ep("Hello", 100, 10, 100*time.Millisecond)),
		stats("greeter", "b", t0.Add(-time.Hour), ep("Hello", 50, 0, 50*time.Millisecond)),
	})
	mid := newSample(t0.Add(2*time.Second), nil)
	now := newSample(t0.Add(4*time.Second), []micro.Stats{
		stats("greeter", "a", t0.Add(-time.Hour), ep("Hello", 120, 12, 140*time.Millisecond)), // +20 calls, +2 errors, +40ms
		stats("greeter", "b", t0.Add(time.Second), ep("Hello", 5, 1, 10*time.Millisecond)),    // restarted: +5, +1
		stats("greeter", "c", t0.Add(time.Second), ep("Hello", 3, 0, 3*time.Millisecond)),     // new in the window: +3
		stats("greeter", "d", t0.Add(-time.Hour), ep("Hello", 1000, 0, time.Second)),          // unknown before: totals only
	})
	by := map[string]*EndpointFigures{}
	get := func(svc, e string) *EndpointFigures {
		if by[svc+"/"+e] == nil {
			by[svc+"/"+e] = &EndpointFigures{Service: svc, Endpoint: e}
		}
		return by[svc+"/"+e]
	}
	statsFigures([]sample{old, mid, now}, get)
	f := by["greeter/Hello"]
	if f == nil {
		t.Fatal("no figures for greeter/Hello")
	}
	if f.Instances != 4 || f.TotalCalls != 1128 || f.TotalErrors != 13 || f.WindowSeconds != 4 || f.Calls != 28 || f.Errors != 3 {
		t.Errorf("figures = %+v; want 4 instances, totals 1128/13, window 4s with 28 calls and 3 errors", *f)
	}
	if f.CallsPerSecond == nil || *f.CallsPerSecond != 7 {
		t.Errorf("calls/s = %v, want 7", f.CallsPerSecond)
	}
	if f.ErrorRate == nil || math.Abs(*f.ErrorRate-3.0/28) > 1e-12 {
		t.Errorf("error rate = %v, want 3/28", f.ErrorRate)
	}
	if f.AvgMs == nil || math.Abs(*f.AvgMs-53.0/28) > 1e-9 { // (40 + 10 + 3) ms over 28 calls
		t.Errorf("avg = %v ms, want 53/28", f.AvgMs)
	}

	// One sample: totals, no window, the average since start.
	by = map[string]*EndpointFigures{}
	statsFigures([]sample{now}, get)
	if f := by["greeter/Hello"]; f.CallsPerSecond != nil || f.ErrorRate != nil || f.TotalCalls != 1128 || f.AvgMs == nil {
		t.Errorf("one sample: %+v", *f)
	}
}

// The samples kept span RateWindow: the newest and the newest at least
// RateWindow older.
func TestSamplesKept(t *testing.T) {
	f := newFigures()
	t0 := time.Now()
	for i := range 30 {
		f.add(sample{at: t0.Add(time.Duration(i) * time.Second)})
	}
	first, last := f.samples[0].at, f.samples[len(f.samples)-1].at
	if d := last.Sub(first); d != RateWindow {
		t.Errorf("window kept = %v, want %v", d, RateWindow)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{ds, 0.5, 50 * time.Millisecond},
		{ds, 0.99, 99 * time.Millisecond},
		{ds[:1], 0.99, time.Millisecond},
		{ds[:3], 0.5, 2 * time.Millisecond},
		{ds[:3], 0.99, 3 * time.Millisecond},
	} {
		if got := percentile(tc.in, tc.q); got != tc.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(tc.in), tc.q, got, tc.want)
		}
	}
}

func TestSchemaFieldsAndSkeleton(t *testing.T) {
	const doc = `{"$ref": "#/$defs/Order", "$defs": {
	  "Order": {"type": "object", "required": ["id", "items", "address", "placed"],
	    "properties": {
	      "id": {"type": "string", "format": "uuid", "x-validate": "required,uuid"},
	      "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "x-validate": "min=1,dive"},
	      "address": {"$ref": "#/$defs/Address"},
	      "placed": {"type": "string", "format": "date-time"},
	      "note": {"type": ["string", "null"]},
	      "tags": {"type": "object", "additionalProperties": {"type": "integer"}},
	      "count": {"type": "integer", "minimum": 1},
	      "kind": {"enum": ["a", "b"]}
	    }},
	  "Item": {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}}},
	  "Address": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string", "x-validate": "required"}}}
	}}`
	v := parseSchema(json.RawMessage(doc))
	if v.Err != "" || v.Title != "Order" {
		t.Fatalf("parseSchema: err %q, title %q", v.Err, v.Title)
	}
	var got []string
	for _, f := range v.Fields {
		got = append(got, f.Name+":"+f.Type+":"+map[bool]string{true: "req", false: "opt"}[f.Required]+":"+f.Rules)
	}
	want := []string{
		"id:string (uuid):req:required,uuid",
		"items:array of object Item:req:min=1,dive",
		"items[].sku:string:req:",
		"items[].qty:integer:opt:",
		"address:object Address:req:",
		"address.city:string:req:required",
		"placed:string (date-time):req:",
		"note:string | null:opt:",
		"tags:map of integer:opt:",
		"count:integer:opt:",
		`kind:one of "a", "b":opt:`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("fields:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	sk := skeleton(json.RawMessage(doc))
	var m map[string]any
	if err := json.Unmarshal([]byte(sk), &m); err != nil {
		t.Fatalf("skeleton %s: %v", sk, err)
	}
	wantSk := `{"address":{"city":""},"count":1,"id":"00000000-0000-4000-8000-000000000000","items":[{"qty":0,"sku":""}],"kind":"a","note":"","placed":"1970-01-01T00:00:00Z","tags":{}}`
	if b, _ := json.Marshal(m); string(b) != wantSk {
		t.Errorf("skeleton = %s, want %s", b, wantSk)
	}
	if !strings.HasPrefix(sk, "{\n  \"id\"") {
		t.Errorf("skeleton keeps the schema's order: %s", sk)
	}
	for _, bad := range []string{``, `7`, `{"type": 5}`, `{"$ref": "#/$defs/X"}`, `{"properties": {"a": true}}`} {
		_ = parseSchema(json.RawMessage(bad)) // never panics
		if s := skeleton(json.RawMessage(bad)); !json.Valid([]byte(s)) {
			t.Errorf("skeleton(%q) = %q, not JSON", bad, s)
		}
	}
}
