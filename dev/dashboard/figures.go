package dashboard

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/dev/traces"
	"github.com/nats-io/nats.go/micro"
)

// RateWindow is the span of time over which calls/s and the error rate are
// computed from $SRV.STATS: the counters' difference between the newest
// sample and the newest one at least this much older (or the oldest kept,
// while the dashboard has run for less).
const RateWindow = 10 * time.Second

// LatencyWindow is how far back the p50/p99 figures look at server spans
// in the trace store.
const LatencyWindow = time.Minute

// Figures is the body of GET <prefix>api/figures: the live figures of
// every endpoint. Where each comes from is in the package documentation.
type Figures struct {
	// Time is when the figures were computed.
	Time time.Time `json:"time"`
	// Stats says where calls/s and error rates come from: "$SRV.STATS"
	// when a Stats source is configured, "off" when none is.
	Stats string `json:"stats"`
	// StatsError is the Stats source's last failure, if its last attempt
	// failed.
	StatsError string `json:"stats_error,omitempty"`
	// Traces is true when a trace store is configured.
	Traces bool `json:"traces"`
	// Endpoints are sorted by service, then endpoint.
	Endpoints []EndpointFigures `json:"endpoints"`
}

// EndpointFigures are one endpoint's live figures. A nil pointer is a
// figure not known (no source, or no calls to compute it from).
type EndpointFigures struct {
	Service  string `json:"service"`
	Endpoint string `json:"endpoint"`

	// Instances is how many instances answered $SRV.STATS for the
	// endpoint in the newest sample.
	Instances int `json:"instances"`
	// TotalCalls and TotalErrors are the counters summed over those
	// instances, since each started.
	TotalCalls  int64 `json:"total_calls"`
	TotalErrors int64 `json:"total_errors"`

	// RateSource is "stats" (calls/s and error rate from $SRV.STATS
	// deltas), "traces" (from the server spans of the last minute, when
	// no instance answers $SRV.STATS for the endpoint) or "" (neither).
	RateSource string `json:"rate_source"`
	// WindowSeconds is the time between the two samples (rate source
	// stats) or LatencyWindow (traces); Calls and Errors are counted in it.
	WindowSeconds float64 `json:"window_s"`
	Calls         int64   `json:"calls"`
	Errors        int64   `json:"errors"`
	// CallsPerSecond is Calls / WindowSeconds; ErrorRate is Errors / Calls
	// (nil without calls).
	CallsPerSecond *float64 `json:"calls_per_s"`
	ErrorRate      *float64 `json:"error_rate"`

	// LatencySource is "traces" (P50 and P99 from server spans),
	// "stats" (AvgMs only, from $SRV.STATS processing time) or "".
	LatencySource string `json:"latency_source"`
	// Spans is how many server spans of the endpoint the trace store holds
	// from the last LatencyWindow.
	Spans int      `json:"spans"`
	P50Ms *float64 `json:"p50_ms"`
	P99Ms *float64 `json:"p99_ms"`
	// AvgMs is the average processing time from $SRV.STATS: over the
	// window's calls, or since start when the window has none.
	AvgMs *float64 `json:"avg_ms"`
}

// counters are one endpoint's $SRV.STATS figures on one instance.
type counters struct {
	requests, errors int64
	nanos            int64
}

type instKey struct{ service, id string }

// sample is one answer of the Stats source.
type sample struct {
	at      time.Time
	started map[instKey]time.Time
	eps     map[instKey]map[string]counters // instance → endpoint → counters
}

func newSample(at time.Time, stats []micro.Stats) sample {
	s := sample{at: at, started: map[instKey]time.Time{}, eps: map[instKey]map[string]counters{}}
	for _, st := range stats {
		k := instKey{st.Name, st.ID}
		s.started[k] = st.Started
		m := map[string]counters{}
		for _, e := range st.Endpoints {
			if e == nil {
				continue
			}
			m[e.Name] = counters{requests: int64(e.NumRequests), errors: int64(e.NumErrors), nanos: int64(e.ProcessingTime)}
		}
		s.eps[k] = m
	}
	return s
}

// typeNames are an endpoint's Go request and response types.
type typeNames struct{ request, response string }

// figures holds the samples and what $SRV.INFO said.
type figures struct {
	mu          sync.Mutex
	samples     []sample // oldest first
	err         error
	types       map[string]typeNames // "service/Endpoint" →
	infoVersion uint64               // the catalogue version types were gathered at
}

func newFigures() *figures { return &figures{types: map[string]typeNames{}} }

// add records a sample, keeping those needed for RateWindow.
func (f *figures) add(s sample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = nil
	f.samples = append(f.samples, s)
	cutoff := s.at.Add(-RateWindow)
	for len(f.samples) > 2 && !f.samples[1].at.After(cutoff) {
		f.samples = f.samples[1:]
	}
}

func (f *figures) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *figures) typeNames(service, endpoint string) (typeNames, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.types[service+"/"+endpoint]
	return t, ok
}

// sample asks the Stats source every StatsInterval until ctx ends, and the
// Info source whenever the catalogue has changed.
func (d *Dashboard) sample(ctx context.Context) {
	t := time.NewTicker(d.opts.StatsInterval)
	defer t.Stop()
	for {
		d.takeSample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Dashboard) takeSample(ctx context.Context) {
	timeout := max(d.opts.StatsInterval, 2*time.Second)
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	at := time.Now()
	stats, err := d.opts.Stats.Stats(sctx)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		d.figs.fail(err)
		d.logger.Debug("dashboard: stats", "error", err)
		return
	}
	d.figs.add(newSample(at, stats))

	is, ok := d.opts.Stats.(InfoSource)
	if !ok {
		return
	}
	version := d.catalog().version
	d.figs.mu.Lock()
	stale := d.figs.infoVersion != version
	d.figs.mu.Unlock()
	if !stale {
		return
	}
	infos, err := is.Info(sctx)
	if err != nil || ctx.Err() != nil {
		return
	}
	types := map[string]typeNames{}
	for _, in := range infos {
		for _, e := range in.Endpoints {
			if e.Metadata["request"] != "" || e.Metadata["response"] != "" {
				types[in.Name+"/"+e.Name] = typeNames{request: e.Metadata["request"], response: e.Metadata["response"]}
			}
		}
	}
	d.figs.mu.Lock()
	d.figs.types, d.figs.infoVersion = types, version
	d.figs.mu.Unlock()
}

// compute returns the figures of the endpoints named in eps (service →
// endpoint names) and of any endpoint the samples name, at now.
func (d *Dashboard) compute(now time.Time, eps map[string][]string) Figures {
	out := Figures{Time: now, Stats: "off", Traces: d.opts.Traces != nil}
	byKey := map[string]*EndpointFigures{}
	get := func(svc, ep string) *EndpointFigures {
		k := svc + "/" + ep
		if f, ok := byKey[k]; ok {
			return f
		}
		f := &EndpointFigures{Service: svc, Endpoint: ep}
		byKey[k] = f
		return f
	}
	for svc, names := range eps {
		for _, ep := range names {
			get(svc, ep)
		}
	}

	if d.opts.Stats != nil {
		out.Stats = "$SRV.STATS"
		d.figs.mu.Lock()
		samples, err := d.figs.samples, d.figs.err
		d.figs.mu.Unlock()
		if err != nil {
			out.StatsError = err.Error()
		}
		statsFigures(samples, get)
	}
	if d.opts.Traces != nil {
		traceFigures(d.spans.recent(d.opts.Traces, now), get)
	}
	for _, f := range byKey {
		out.Endpoints = append(out.Endpoints, *f)
	}
	slices.SortFunc(out.Endpoints, func(a, b EndpointFigures) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Endpoint, b.Endpoint))
	})
	return out
}

// statsFigures sets the $SRV.STATS figures from the samples: totals from
// the newest; calls, errors and processing time as the difference between
// the newest and the oldest, summed over instances. An instance missing
// from the oldest counts from zero if it started after it, and is left out
// of the window otherwise (its counters before are unknown); an instance
// whose counters went down restarted, and counts from zero.
func statsFigures(samples []sample, get func(svc, ep string) *EndpointFigures) {
	if len(samples) == 0 {
		return
	}
	newest := samples[len(samples)-1]
	var oldest *sample
	if len(samples) > 1 {
		oldest = &samples[0]
	}
	nanos := map[*EndpointFigures]int64{}
	totalNanos := map[*EndpointFigures]int64{}
	for k, eps := range newest.eps {
		for name, c := range eps {
			f := get(k.service, name)
			f.Instances++
			f.TotalCalls += c.requests
			f.TotalErrors += c.errors
			totalNanos[f] += c.nanos
			f.RateSource = "stats"
			f.LatencySource = "stats"
			if oldest == nil {
				continue
			}
			f.WindowSeconds = newest.at.Sub(oldest.at).Seconds()
			prev, seen := oldest.eps[k][name]
			switch {
			case !seen && !newest.started[k].After(oldest.at):
				continue
			case c.requests < prev.requests || c.errors < prev.errors:
				prev = counters{}
			}
			f.Calls += c.requests - prev.requests
			f.Errors += c.errors - prev.errors
			nanos[f] += c.nanos - prev.nanos
		}
	}
	for f, total := range totalNanos {
		if f.WindowSeconds > 0 {
			f.CallsPerSecond = ptr(float64(f.Calls) / f.WindowSeconds)
		}
		if f.Calls > 0 {
			f.ErrorRate = ptr(float64(f.Errors) / float64(f.Calls))
			f.AvgMs = ptr(float64(nanos[f]) / float64(f.Calls) / 1e6)
		} else if f.TotalCalls > 0 {
			f.AvgMs = ptr(float64(total) / float64(f.TotalCalls) / 1e6)
		}
	}
}

// serverSpan is what the figures need of one server span.
type serverSpan struct {
	service, endpoint string
	end               time.Time
	dur               time.Duration
	failed            bool
}

// spanCache holds the server spans of the store's recent traces as of one
// store version, so that polling the figures reads the store's traces
// again only when it has changed.
type spanCache struct {
	mu      sync.Mutex
	version uint64
	at      time.Time
	spans   []serverSpan
}

// recent returns the server spans that ended within LatencyWindow before
// now, from the cache when the store has not changed since it was filled.
func (c *spanCache) recent(store *traces.Store, now time.Time) []serverSpan {
	cutoff := now.Add(-LatencyWindow)
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := store.Version(); v != c.version || c.at.IsZero() || c.at.After(now) {
		c.version, c.at, c.spans = v, now, collect(store, cutoff)
	}
	var out []serverSpan
	for _, sp := range c.spans {
		if !sp.end.Before(cutoff) && !sp.end.After(now) {
			out = append(out, sp)
		}
	}
	return out
}

// collect reads the server spans that ended after cutoff: spans whose
// ferry.endpoint attribute is "service/Endpoint" and whose resource's
// service.name is that service (so a gateway's server span, which names
// the backend endpoint too, is not counted). A span failed when its
// ferry.code is not "ok" (or, without one, when its status is error).
func collect(store *traces.Store, cutoff time.Time) []serverSpan {
	var out []serverSpan
	for _, sum := range store.List() {
		if sum.Start.Add(sum.Duration).Before(cutoff) {
			continue
		}
		tr, ok := store.Get(sum.TraceID)
		if !ok {
			continue
		}
		for _, sp := range tr.Spans {
			if sp.Kind != "server" || sp.End.Before(cutoff) {
				continue
			}
			name, _ := sp.Attributes["ferry.endpoint"].(string)
			svc, ep, ok := strings.Cut(name, "/")
			if !ok || svc != sp.Service || ep == "" {
				continue
			}
			code, hasCode := sp.Attributes["ferry.code"].(string)
			out = append(out, serverSpan{service: svc, endpoint: ep, end: sp.End, dur: sp.Duration(),
				failed: (hasCode && code != "ok") || (!hasCode && sp.Status == traces.StatusError)})
		}
	}
	return out
}

// traceFigures sets p50 and p99 from the server spans of each endpoint
// that ended within LatencyWindow before now (see collect). An endpoint
// without $SRV.STATS figures takes its calls/s and error rate from the
// same spans.
func traceFigures(spans []serverSpan, get func(svc, ep string) *EndpointFigures) {
	type acc struct {
		durs   []time.Duration
		errors int64
	}
	accs := map[*EndpointFigures]*acc{}
	for _, sp := range spans {
		f := get(sp.service, sp.endpoint)
		a := accs[f]
		if a == nil {
			a = &acc{}
			accs[f] = a
		}
		a.durs = append(a.durs, sp.dur)
		if sp.failed {
			a.errors++
		}
	}
	for f, a := range accs {
		slices.Sort(a.durs)
		f.Spans = len(a.durs)
		f.P50Ms = ptr(ms(percentile(a.durs, 0.50)))
		f.P99Ms = ptr(ms(percentile(a.durs, 0.99)))
		f.LatencySource = "traces"
		if f.RateSource == "" {
			f.RateSource = "traces"
			f.WindowSeconds = LatencyWindow.Seconds()
			f.Calls, f.Errors = int64(len(a.durs)), a.errors
			f.CallsPerSecond = ptr(float64(f.Calls) / f.WindowSeconds)
			f.ErrorRate = ptr(float64(f.Errors) / float64(f.Calls))
		}
	}
}

// percentile is the nearest-rank percentile q of sorted (not empty): the
// smallest value with at least q of the values at or below it.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func ptr[T any](v T) *T { return &v }
