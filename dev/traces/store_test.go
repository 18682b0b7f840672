package traces_test

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/dev/traces"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// span is a span of trace tid (a short name, padded to an id) with the
// given span and parent ids, starting at ms milliseconds and lasting 10.
func span(tid, id, parent string, ms int) traces.Span {
	start := epoch.Add(time.Duration(ms) * time.Millisecond)
	return traces.Span{
		TraceID:      traceID(tid),
		SpanID:       id,
		ParentSpanID: parent,
		Name:         "op " + id,
		Kind:         "internal",
		Service:      "svc",
		Start:        start,
		End:          start.Add(10 * time.Millisecond),
		Status:       traces.StatusUnset,
	}
}

// traceID pads a short name into a 32-digit id.
func traceID(name string) string { return fmt.Sprintf("%032s", name) }

func listIDs(l []traces.Summary) []string {
	ids := make([]string, len(l))
	for i, s := range l {
		ids[i] = s.TraceID
	}
	return ids
}

// TestStoreEvictsOldest: a store of 3 traces drops the one that received a
// span the longest ago when a 4th arrives, and a span arriving for a trace
// keeps it.
func TestStoreEvictsOldest(t *testing.T) {
	s := traces.NewStore(3)
	for i, tid := range []string{"a", "b", "c", "d"} {
		s.Add([]traces.Span{span(tid, "1", "", i)})
	}
	if got, want := listIDs(s.List()), []string{traceID("d"), traceID("c"), traceID("b")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after 4 traces: %v, want %v", got, want)
	}
	if _, ok := s.Get(traceID("a")); ok {
		t.Fatal("the oldest trace is still there")
	}
	// b receives a span: c is now the one updated the longest ago.
	s.Add([]traces.Span{span("b", "2", "1", 1)})
	s.Add([]traces.Span{span("e", "1", "", 5)})
	if got, want := listIDs(s.List()), []string{traceID("e"), traceID("d"), traceID("b")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after b was updated and e arrived: %v, want %v", got, want)
	}
	if tr, _ := s.Get(traceID("b")); tr.SpanCount != 2 {
		t.Fatalf("b has %d spans, want 2", tr.SpanCount)
	}
}

// TestStoreDefaultMax: NewStore(0) keeps DefaultMaxTraces.
func TestStoreDefaultMax(t *testing.T) {
	s := traces.NewStore(0)
	for i := range traces.DefaultMaxTraces + 1 {
		s.Add([]traces.Span{span(fmt.Sprint(i), "1", "", i)})
	}
	if n := len(s.List()); n != traces.DefaultMaxTraces {
		t.Fatalf("%d traces, want %d", n, traces.DefaultMaxTraces)
	}
	if _, ok := s.Get(traceID("0")); ok {
		t.Fatal("the first trace is still there")
	}
}

// TestStoreSpansPerTrace: a trace keeps its first spans up to the limit and
// its first root over it; the rest are counted as dropped; a span sent again
// replaces the one held, and the summary follows it.
func TestStoreSpansPerTrace(t *testing.T) {
	s := traces.NewStore(10, traces.WithMaxSpans(3))
	var batch []traces.Span
	for i := range 5 {
		batch = append(batch, span("t", fmt.Sprint("c", i), "r", 1+i))
	}
	if dropped := s.Add(batch); dropped != 2 {
		t.Fatalf("Add of 5 children: %d dropped, want 2", dropped)
	}
	root := span("t", "r", "", 0)
	root.Name = "GET /"
	if dropped := s.Add([]traces.Span{root, span("t", "r2", "", 0)}); dropped != 1 {
		t.Fatalf("Add of two roots over the limit: %d dropped, want 1 (the second)", dropped)
	}
	tr, _ := s.Get(traceID("t"))
	if tr.SpanCount != 4 || tr.Dropped != 3 || tr.Root != "GET /" || len(tr.Spans) != 4 {
		t.Fatalf("summary %+v with %d spans; want 4 spans (3 children and the root), 3 dropped, root GET /", tr.Summary, len(tr.Spans))
	}
	if got := []string{tr.Spans[0].SpanID, tr.Spans[1].SpanID, tr.Spans[2].SpanID, tr.Spans[3].SpanID}; !reflect.DeepEqual(got, []string{"r", "c0", "c1", "c2"}) {
		t.Fatalf("spans %v, want the root then c0..c2", got)
	}

	// Sent again with an error and a later end: replaced, not dropped, and
	// the summary says so; sent again without, the error is gone.
	failed := span("t", "c1", "r", 2)
	failed.Status, failed.End = traces.StatusError, epoch.Add(time.Second)
	failed.Service = "other"
	if dropped := s.Add([]traces.Span{failed}); dropped != 0 {
		t.Fatalf("a span sent again was dropped")
	}
	tr, _ = s.Get(traceID("t"))
	if tr.SpanCount != 4 || !tr.Error || tr.Duration != time.Second || !reflect.DeepEqual(tr.Services, []string{"other", "svc"}) || tr.Dropped != 3 || tr.Root != "GET /" {
		t.Fatalf("after the replacement: %+v", tr.Summary)
	}
	s.Add([]traces.Span{span("t", "c1", "r", 2)})
	if tr, _ = s.Get(traceID("t")); tr.Error || tr.Duration != 13*time.Millisecond || !reflect.DeepEqual(tr.Services, []string{"svc"}) {
		t.Fatalf("after replacing it back: %+v", tr.Summary)
	}
}

// TestStoreSummary: the root is the span without a parent — until it
// arrives, the earliest span — and start and duration cover every span.
func TestStoreSummary(t *testing.T) {
	s := traces.NewStore(10)
	child := span("t", "b", "a", 5)
	child.Service = "db"
	grandchild := span("t", "c", "b", 7)
	grandchild.End = epoch.Add(50 * time.Millisecond)
	s.Add([]traces.Span{grandchild, child})
	sum := s.List()[0]
	if sum.Root != "op b" || sum.RootService != "db" || !sum.Start.Equal(epoch.Add(5*time.Millisecond)) || sum.Duration != 45*time.Millisecond {
		t.Fatalf("before the root: %+v, want root op b of db, from 5ms for 45ms", sum)
	}
	root := span("t", "a", "", 1)
	root.Service = "web"
	s.Add([]traces.Span{root})
	sum = s.List()[0]
	if sum.Root != "op a" || sum.RootService != "web" || !sum.Start.Equal(epoch.Add(time.Millisecond)) || sum.Duration != 49*time.Millisecond ||
		sum.SpanCount != 3 || sum.Error || !reflect.DeepEqual(sum.Services, []string{"db", "svc", "web"}) {
		t.Fatalf("with the root: %+v", sum)
	}

	// A summary handed out does not change with later spans.
	other := span("t", "d", "a", 2)
	other.Service = "auth"
	s.Add([]traces.Span{other})
	if !reflect.DeepEqual(sum.Services, []string{"db", "svc", "web"}) || sum.SpanCount != 3 {
		t.Fatalf("a summary handed out changed: %+v", sum)
	}
}

// TestStoreDepthsAndOrder: Get sorts spans by start (then depth) and sets
// each depth from the parent links: orphans and a span whose parent was
// not received at 0, a cycle of parent links cut rather than followed.
func TestStoreDepthsAndOrder(t *testing.T) {
	s := traces.NewStore(10)
	s.Add([]traces.Span{
		span("t", "leaf", "mid", 3),
		span("t", "mid", "root", 2),
		span("t", "root", "", 1),
		span("t", "same", "root", 2), // same start as mid, same depth: by span id
		span("t", "orphan", "gone", 4),
		span("t", "under-orphan", "orphan", 4), // same start as its parent: after it, by depth
		span("t", "x", "y", 6),                 // x and y each other's parent
		span("t", "y", "x", 7),
		span("t", "self", "self", 8),
	})
	tr, ok := s.Get(traceID("t"))
	if !ok {
		t.Fatal("no trace")
	}
	type row struct {
		id    string
		depth int
	}
	var got []row
	for _, sp := range tr.Spans {
		got = append(got, row{sp.SpanID, sp.Depth})
	}
	// In a cycle, the span whose parent was already on the way up is the
	// root: walking from x (met first), y's parent x is on the path, so y
	// is at 0 and x under it.
	want := []row{{"root", 0}, {"mid", 1}, {"same", 1}, {"leaf", 2}, {"orphan", 0}, {"under-orphan", 1}, {"x", 1}, {"y", 0}, {"self", 0}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("spans = %v\nwant     %v", got, want)
	}
}

// TestStoreVersionAndChanged: every Add moves the version on and closes the
// channel Changed handed out before it.
func TestStoreVersionAndChanged(t *testing.T) {
	s := traces.NewStore(10)
	if v := s.Version(); v != 0 {
		t.Fatalf("new store at version %d", v)
	}
	ch := s.Changed()
	s.Add(nil)
	select {
	case <-ch:
		t.Fatal("Changed fired for an empty Add")
	default:
	}
	s.Add([]traces.Span{span("t", "1", "", 0)})
	<-ch // closed, or the test hangs and fails at its deadline
	if v := s.Version(); v != 1 {
		t.Fatalf("version %d after one Add, want 1", v)
	}
	next := s.Changed()
	select {
	case <-next:
		t.Fatal("the channel after the change is already closed")
	default:
	}
	s.Add([]traces.Span{span("t", "2", "1", 1)})
	<-next
	if v := s.Version(); v != 2 {
		t.Fatalf("version %d after two Adds, want 2", v)
	}
}

// TestStoreConcurrent adds and reads from several goroutines at once, for
// the race detector; the store ends with what was added.
func TestStoreConcurrent(t *testing.T) {
	s := traces.NewStore(50, traces.WithMaxSpans(20))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				tid := fmt.Sprint(w, "-", i%10)
				s.Add([]traces.Span{span(tid, fmt.Sprint(i), "", i)})
			}
		})
		wg.Go(func() {
			for range 100 {
				for _, sum := range s.List() {
					if tr, ok := s.Get(sum.TraceID); ok && len(tr.Spans) != tr.SpanCount {
						t.Errorf("trace %s: %d spans, summary says %d", sum.TraceID, len(tr.Spans), tr.SpanCount)
					}
				}
				_ = s.Version()
			}
		})
	}
	wg.Wait()
	list := s.List()
	if len(list) != 40 {
		t.Fatalf("%d traces, want 40", len(list))
	}
	for _, sum := range list {
		if sum.SpanCount != 10 {
			t.Errorf("trace %s: %d spans, want 10", sum.TraceID, sum.SpanCount)
		}
	}
	if v := s.Version(); v != 400 {
		t.Fatalf("version %d, want 400", v)
	}
}
