package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-go/ferry/dev/traces"
)

// page is what every template gets.
type page struct {
	Title   string
	Nav     string // the current section: "catalog", "explorer", "traces"
	Prefix  string
	Live    string // a JSON URL whose ETag changes when the page's data does
	Message string
	Status  statusBar
	Data    any
}

type statusBar struct {
	Registry      string // "ok", "waiting", "failing"
	RegistryError string
	Stats         bool
	Traces        bool
}

func parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"since":      sinceText,
		"clock":      clock,
		"dur":        durText,
		"esc":        url.PathEscape,
		"rate":       rateText,
		"percent":    percentText,
		"msText":     msText,
		"depthClass": func(d int) string { return "d" + strconv.Itoa(min(d, 12)) },
		"joinStr":    strings.Join,
		"attrText":   attrText,
		"sortedAttrs": func(m map[string]any) []kv {
			out := make([]kv, 0, len(m))
			for k, v := range m {
				out = append(out, kv{k, attrText(v)})
			}
			slices.SortFunc(out, func(a, b kv) int { return strings.Compare(a.Key, b.Key) })
			return out
		},
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: templates: %w", err)
	}
	out := map[string]*template.Template{}
	for _, name := range []string{"catalog", "endpoint", "explorer", "traces", "trace", "notfound"} {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render executes a page into a buffer first, so a template error is a
// clean 500 and never half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Prefix = d.opts.Prefix
	p.Status = d.statusBar()
	var buf bytes.Buffer
	if err := d.tmpl[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		d.logger.Error("dashboard: render", "page", name, "error", err)
		http.Error(w, "the dashboard failed to render this page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func (d *Dashboard) statusBar() statusBar {
	st := d.catalog()
	sb := statusBar{Registry: "ok", Stats: d.opts.Stats != nil, Traces: d.opts.Traces != nil}
	switch {
	case st.err != nil:
		sb.Registry, sb.RegistryError = "failing", st.err.Error()
	case !st.received:
		sb.Registry = "waiting"
	}
	return sb
}

// catalogPage is the data of the catalogue page.
type catalogPage struct {
	Services  []*serviceView
	Instances int
	Figures   map[string]EndpointFigures
	Sources   Figures
}

func (d *Dashboard) figuresFor(svcs []*serviceView) (Figures, map[string]EndpointFigures) {
	f := d.compute(time.Now(), endpointNames(svcs))
	by := make(map[string]EndpointFigures, len(f.Endpoints))
	for _, e := range f.Endpoints {
		by[e.Service+"/"+e.Endpoint] = e
	}
	return f, by
}

func (d *Dashboard) pageCatalog(w http.ResponseWriter, r *http.Request) {
	st := d.catalog()
	svcs := services(st)
	data := catalogPage{Services: svcs, Instances: len(st.instances)}
	data.Sources, data.Figures = d.figuresFor(svcs)
	d.render(w, r, http.StatusOK, "catalog", page{Title: "Services", Nav: "catalog", Live: d.opts.Prefix + "api/catalog", Data: data})
}

// endpointPage is the data of the endpoint page and of the explorer.
type endpointPage struct {
	Service  *serviceView
	Endpoint *endpointView
	Figures  EndpointFigures
	Sources  Figures
	Explorer *explorerData
	// Endpoints lists every endpoint, for the explorer's picker.
	Endpoints []*endpointView
	Selected  string
}

// explorerData is what the explorer form needs.
type explorerData struct {
	CallURL  string
	Body     string
	Curl     string
	Service  string
	Endpoint string
	// TraceBase is the path of the trace pages, "<prefix>traces/".
	TraceBase string
}

func (d *Dashboard) explorer(r *http.Request, e *endpointView) *explorerData {
	if e == nil {
		return nil
	}
	body := "{}"
	if e.requestRaw != nil {
		body = skeleton(e.requestRaw)
	}
	call := d.callURL(e.Service, e.Name)
	compact := new(bytes.Buffer)
	if json.Compact(compact, []byte(body)) != nil {
		compact.WriteString("{}")
	}
	target := call
	if d.proxy != nil {
		target = strings.TrimSuffix(d.opts.Gateway, "/") + "/" + url.PathEscape(e.Service) + "/" + url.PathEscape(e.Name)
	} else {
		scheme := "http://"
		if r.TLS != nil {
			scheme = "https://"
		}
		target = scheme + r.Host + call
	}
	curl := "curl -s -H 'Content-Type: application/json' -d '" + strings.ReplaceAll(compact.String(), "'", `'\''`) + "' " + target
	return &explorerData{CallURL: call, Body: body, Curl: curl, Service: e.Service, Endpoint: e.Name, TraceBase: d.opts.Prefix + "traces/"}
}

func (d *Dashboard) pageEndpoint(w http.ResponseWriter, r *http.Request) {
	svcName, epName := r.PathValue("service"), r.PathValue("endpoint")
	svcs := services(d.catalog())
	s, e := find(svcs, svcName, epName)
	if e == nil {
		msg := fmt.Sprintf("No service %q is running.", svcName)
		if s != nil {
			msg = fmt.Sprintf("Service %q has no endpoint %q.", svcName, epName)
		}
		d.render(w, r, http.StatusNotFound, "notfound", page{Title: "Not found", Nav: "catalog", Message: msg})
		return
	}
	d.fillTypes(e)
	data := endpointPage{Service: s, Endpoint: e, Explorer: d.explorer(r, e)}
	var by map[string]EndpointFigures
	data.Sources, by = d.figuresFor(svcs)
	data.Figures = by[e.Key()]
	d.render(w, r, http.StatusOK, "endpoint", page{Title: svcName + "." + epName, Nav: "catalog", Data: data})
}

// fillTypes sets the Go type names $SRV.INFO gave, if any.
func (d *Dashboard) fillTypes(e *endpointView) {
	if t, ok := d.figs.typeNames(e.Service, e.Name); ok {
		e.RequestType, e.ResponseType = t.request, t.response
	}
}

func (d *Dashboard) pageExplorer(w http.ResponseWriter, r *http.Request) {
	svcs := services(d.catalog())
	data := endpointPage{Selected: r.URL.Query().Get("endpoint")}
	for _, s := range svcs {
		data.Endpoints = append(data.Endpoints, s.Endpoints...)
	}
	if data.Selected == "" && len(data.Endpoints) > 0 {
		data.Selected = data.Endpoints[0].Key()
	}
	if svc, ep, ok := strings.Cut(data.Selected, "/"); ok {
		data.Service, data.Endpoint = find(svcs, svc, ep)
	}
	msg := ""
	if data.Endpoint == nil && data.Selected != "" {
		msg = fmt.Sprintf("No endpoint %q is running.", data.Selected)
	}
	if data.Endpoint != nil {
		d.fillTypes(data.Endpoint)
		data.Explorer = d.explorer(r, data.Endpoint)
	}
	d.render(w, r, http.StatusOK, "explorer", page{Title: "API explorer", Nav: "explorer", Message: msg, Data: data})
}

// MaxTracesListed is how many of the newest traces the trace list shows.
const MaxTracesListed = 100

// tracesPage is the data of the trace list.
type tracesPage struct {
	Traces []traces.Summary
	Colors map[string]int
}

func (d *Dashboard) pageTraces(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Traces", Nav: "traces"}
	if d.opts.Traces != nil {
		list := d.opts.Traces.List()
		if len(list) > MaxTracesListed {
			list = list[:MaxTracesListed]
		}
		colors := map[string]int{}
		for _, t := range list {
			for _, s := range t.Services {
				colors[s] = colorOf(s)
			}
		}
		p.Data, p.Live = tracesPage{Traces: list, Colors: colors}, d.opts.Prefix+"api/traces"
	}
	d.render(w, r, http.StatusOK, "traces", p)
}

// tracePage is the data of one trace's waterfall.
type tracePage struct {
	ID       string
	Trace    traces.Trace
	Found    bool
	Spans    []spanRow
	Services []kv // name, colour
	Ticks    []tick
}

type spanRow struct {
	traces.Span
	Color     int
	Transport string
	X, Width  float64 // in 1000ths of the trace's duration
	Offset    time.Duration
	Error     bool
}

type tick struct {
	Label string
	Class string
}

func (d *Dashboard) pageTrace(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p := page{Title: "Trace " + id, Nav: "traces"}
	if d.opts.Traces == nil {
		d.render(w, r, http.StatusOK, "trace", p)
		return
	}
	data := tracePage{ID: id}
	data.Trace, data.Found = d.opts.Traces.Get(id)
	p.Live = d.opts.Prefix + "api/traces"
	if data.Found {
		total := data.Trace.Duration
		seen := map[string]bool{}
		for _, sp := range data.Trace.Spans {
			row := spanRow{Span: sp, Color: colorOf(sp.Service), Transport: transportOf(sp), Error: sp.Status == traces.StatusError}
			row.Offset = max(sp.Start.Sub(data.Trace.Start), 0)
			if total > 0 {
				row.X = math.Min(1000*float64(row.Offset)/float64(total), 996)
				row.Width = math.Max(1000*float64(sp.Duration())/float64(total), 4)
				row.Width = math.Min(row.Width, 1000-row.X)
			} else {
				row.Width = 1000
			}
			data.Spans = append(data.Spans, row)
			if !seen[sp.Service] {
				seen[sp.Service] = true
				data.Services = append(data.Services, kv{sp.Service, strconv.Itoa(colorOf(sp.Service))})
			}
		}
		for i := range 5 {
			data.Ticks = append(data.Ticks, tick{Label: durText(total * time.Duration(i) / 4), Class: "t" + strconv.Itoa(i)})
		}
	}
	status := http.StatusOK
	if !data.Found {
		status = http.StatusNotFound
	}
	p.Data = data
	d.render(w, r, status, "trace", p)
}

// transportOf names what carried a span: rpc.system.name (grpc, nats, …),
// "http" for the HTTP conventions, messaging.system for events.
func transportOf(sp traces.Span) string {
	for _, k := range []string{"rpc.system.name", "rpc.system", "messaging.system"} {
		if v, ok := sp.Attributes[k].(string); ok && v != "" {
			return v
		}
	}
	if _, ok := sp.Attributes["http.request.method"]; ok {
		return "http"
	}
	return ""
}

// Template helpers.

func sinceText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m " + strconv.Itoa(int(d.Seconds())%60) + "s"
	}
	return strconv.Itoa(int(d.Hours())) + "h " + strconv.Itoa(int(d.Minutes())%60) + "m"
}

func clock(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("15:04:05.000")
}

func durText(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e3, 'f', 0, 64) + " µs"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + " ms"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
}

func rateText(v *float64) string {
	if v == nil {
		return "–"
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}

func percentText(v *float64) string {
	if v == nil {
		return "–"
	}
	return strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
}

func msText(v *float64) string {
	if v == nil {
		return "–"
	}
	return durText(time.Duration(*v * 1e6))
}

// attrText renders an attribute value: strings as they are, the rest as
// JSON.
func attrText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
