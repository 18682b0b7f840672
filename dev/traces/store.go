package traces

import (
	"cmp"
	"container/list"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultMaxTraces is how many traces NewStore keeps when given 0 or less.
const DefaultMaxTraces = 200

// DefaultMaxSpans is how many spans a Store keeps of one trace unless
// WithMaxSpans says otherwise.
const DefaultMaxSpans = 1000

// Summary describes one trace for a list of traces.
type Summary struct {
	TraceID string `json:"trace_id"`
	// Root and RootService name the root span and its service: the span
	// without a parent (the earliest, should there be several) or, until
	// that one is received, the earliest span received.
	Root        string `json:"root"`
	RootService string `json:"root_service"`
	// Start is the earliest start of the trace's spans; Duration runs from
	// there to the latest end.
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	// SpanCount is how many spans the store holds of the trace; Dropped is
	// how many more it received over the per-trace limit and did not keep.
	SpanCount int `json:"span_count"`
	Dropped   int `json:"dropped,omitempty"`
	// Services are the services with spans in the trace, sorted.
	Services []string `json:"services"`
	// Error is true when a span of the trace has status "error".
	Error bool `json:"error"`
}

// Trace is one trace with its spans, sorted by start time (then depth), each
// with its Depth set, so that a waterfall can be drawn row by row.
type Trace struct {
	Summary
	Spans []Span `json:"spans"`
}

// Option configures a Store.
type Option func(*Store)

// WithMaxSpans sets how many spans the store keeps of one trace
// (DefaultMaxSpans when n is 0 or less); spans over it are counted in the
// trace's Summary.Dropped and otherwise ignored — except the first root
// span (one without a parent), which is kept one over the limit, since a
// root ends, and so arrives, after the spans under it.
func WithMaxSpans(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.maxSpans = n
		}
	}
}

// Store keeps the spans of the last traces received, grouped by trace, in
// bounded memory: at most its maximum of traces — the one that received a
// span the longest ago is dropped first — and at most the per-trace maximum
// of spans each (see WithMaxSpans). It is safe for concurrent use.
//
// Values it returns are copies, except what a Span holds by reference —
// its attribute maps, events and links — which are shared: read them,
// never write them.
type Store struct {
	maxTraces, maxSpans int

	mu      sync.Mutex
	traces  map[string]*trace
	order   *list.List // of *trace, the one updated last at the front
	version uint64
	changed chan struct{}
}

// trace is what the store holds of one trace.
type trace struct {
	sum   Summary
	end   time.Time
	root  int // index in spans of the span named in sum, -1 before any
	spans []Span
	index map[string]int // span id → index in spans
	elem  *list.Element
}

// NewStore returns a store keeping the last max traces (DefaultMaxTraces if
// max is 0 or less).
func NewStore(max int, opts ...Option) *Store {
	if max <= 0 {
		max = DefaultMaxTraces
	}
	s := &Store{
		maxTraces: max,
		maxSpans:  DefaultMaxSpans,
		traces:    make(map[string]*trace),
		order:     list.New(),
		changed:   make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Add stores spans and returns how many it did not keep because their trace
// was at the per-trace limit. A span whose span id the trace already holds
// replaces it (an exporter's retry sends a batch twice). A trace that
// receives a span becomes the newest as far as eviction goes; adding a new
// trace to a full store drops the one updated the longest ago.
func (s *Store) Add(spans []Span) (dropped int) {
	if len(spans) == 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range spans {
		if !s.add(&spans[i]) {
			dropped++
		}
	}
	s.version++
	close(s.changed)
	s.changed = make(chan struct{})
	return dropped
}

// add stores one span, reporting false if it was dropped. s.mu is held.
func (s *Store) add(sp *Span) bool {
	t, ok := s.traces[sp.TraceID]
	if !ok {
		t = &trace{sum: Summary{TraceID: sp.TraceID}, root: -1, index: make(map[string]int)}
		t.elem = s.order.PushFront(t)
		s.traces[sp.TraceID] = t
		for s.order.Len() > s.maxTraces {
			old := s.order.Remove(s.order.Back()).(*trace)
			delete(s.traces, old.sum.TraceID)
		}
	} else {
		s.order.MoveToFront(t.elem)
	}
	if i, ok := t.index[sp.SpanID]; ok {
		t.spans[i] = *sp
		t.summarize()
		return true
	}
	// A root span ends last and so tends to arrive last: one is kept over
	// the limit, so that a trace cut short still says what it was.
	if len(t.spans) >= s.maxSpans && (sp.ParentSpanID != "" || t.hasRoot() || len(t.spans) > s.maxSpans) {
		t.sum.Dropped++
		return false
	}
	t.index[sp.SpanID] = len(t.spans)
	t.spans = append(t.spans, *sp)
	t.account(len(t.spans) - 1)
	return true
}

// hasRoot reports whether the trace holds a span without a parent.
func (t *trace) hasRoot() bool { return t.root >= 0 && t.spans[t.root].ParentSpanID == "" }

// account adds spans[i] to the summary; spans are accounted in order.
func (t *trace) account(i int) {
	sp := &t.spans[i]
	sum := &t.sum
	sum.SpanCount = i + 1
	if i == 0 || sp.Start.Before(sum.Start) {
		sum.Start = sp.Start
	}
	if i == 0 || sp.End.After(t.end) {
		t.end = sp.End
	}
	sum.Duration = max(t.end.Sub(sum.Start), 0)
	if sp.Status == StatusError {
		sum.Error = true
	}
	if j, found := slices.BinarySearch(sum.Services, sp.Service); !found {
		// A new slice each time: summaries handed out share the old one.
		sum.Services = slices.Insert(slices.Clip(sum.Services), j, sp.Service)
	}
	if t.root < 0 || isRootOver(sp, &t.spans[t.root]) {
		t.root = i
		sum.Root, sum.RootService = sp.Name, sp.Service
	}
}

// isRootOver reports whether a is a better root for the summary than b: a
// span without a parent over one with, then the earlier.
func isRootOver(a, b *Span) bool {
	if (a.ParentSpanID == "") != (b.ParentSpanID == "") {
		return a.ParentSpanID == ""
	}
	return a.Start.Before(b.Start)
}

// summarize computes the summary again from all the spans, after one was
// replaced.
func (t *trace) summarize() {
	t.sum = Summary{TraceID: t.sum.TraceID, Dropped: t.sum.Dropped}
	t.root = -1
	for i := range t.spans {
		t.account(i)
	}
}

// List returns the summaries of the traces held, the newest (latest start)
// first.
func (s *Store) List() []Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list()
}

// list is List with s.mu held.
func (s *Store) list() []Summary {
	out := make([]Summary, 0, len(s.traces))
	for _, t := range s.traces {
		out = append(out, t.sum)
	}
	slices.SortFunc(out, func(a, b Summary) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return strings.Compare(a.TraceID, b.TraceID)
	})
	return out
}

// snapshot is List and Version read at once.
func (s *Store) snapshot() ([]Summary, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list(), s.version
}

// Get returns the trace with the given id (hex, either case) with its spans
// sorted by start time, then depth, each with its Depth computed from the
// parent links; false if the store holds no such trace.
func (s *Store) Get(traceID string) (Trace, bool) {
	s.mu.Lock()
	t, ok := s.traces[strings.ToLower(traceID)]
	if !ok {
		s.mu.Unlock()
		return Trace{}, false
	}
	tr := Trace{Summary: t.sum, Spans: slices.Clone(t.spans)}
	s.mu.Unlock()

	setDepths(tr.Spans)
	slices.SortStableFunc(tr.Spans, func(a, b Span) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Depth, b.Depth); c != 0 {
			return c
		}
		return strings.Compare(a.SpanID, b.SpanID)
	})
	return tr, true
}

// setDepths sets each span's Depth: how many ancestors it has among spans.
// A span whose parent is not there is at depth 0, and so is one that closes
// a cycle of parent links (which only a broken sender makes).
func setDepths(spans []Span) {
	index := make(map[string]int, len(spans))
	for i := range spans {
		index[spans[i].SpanID] = i
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]uint8, len(spans))
	var path []int
	for i := range spans {
		// Walk up from i to a span whose depth is known or to a root, then
		// number the path on the way back down.
		path = path[:0]
		d := -1 // the depth of the parent of path's last span
		for j := i; ; {
			if state[j] == done {
				d = spans[j].Depth
				break
			}
			if state[j] == onPath { // a cycle: its last span is the root
				break
			}
			state[j] = onPath
			path = append(path, j)
			p, ok := index[spans[j].ParentSpanID]
			if spans[j].ParentSpanID == "" || !ok {
				break
			}
			j = p
		}
		for k := len(path) - 1; k >= 0; k-- {
			d++
			spans[path[k]].Depth = d
			state[path[k]] = done
		}
	}
}

// Version counts the changes to the store: it grows with every Add. A page
// that polls can ask for the traces only when it differs from the one it
// saw last (the API serves it as the ETag of GET /traces).
func (s *Store) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Changed returns a channel closed at the next change to the store, for a
// page that waits for changes (server-sent events) instead of polling.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}
