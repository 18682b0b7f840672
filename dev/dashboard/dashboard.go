package dashboard

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/dev/traces"
	"github.com/ferry-go/ferry/registry"
)

// DefaultPrefix is where the dashboard is mounted unless Options.Prefix
// says otherwise.
const DefaultPrefix = "/_ferry/"

// DefaultStatsInterval is how often the dashboard asks the Stats source
// unless Options.StatsInterval says otherwise.
const DefaultStatsInterval = time.Second

// Options configures a Dashboard. Only Catalog is required; the zero
// value of every other field works.
type Options struct {
	// Catalog is the registry the dashboard lists services from
	// (required).
	Catalog registry.Catalog
	// Traces is the trace store the Traces pages and the p50/p99 figures
	// read. Nil: the pages say tracing is off, and latency figures fall
	// back to the average $SRV.STATS gives.
	Traces *traces.Store
	// Stats gives the services' request counters ($SRV.STATS), for the
	// calls/s and error-rate figures; NATSStats is the NATS one. Nil: the
	// figures come from traces alone, or are not shown.
	Stats StatsSource
	// StatsInterval is how often Stats is asked (default
	// DefaultStatsInterval).
	StatsInterval time.Duration
	// Prefix is the path the dashboard is served under (default
	// DefaultPrefix, "/_ferry/"); it must start and end with "/". The
	// pages' links and scripts use it. The dashboard serves requests whose
	// path starts with it (mounted by a mux pattern) and, as well, requests
	// whose prefix was already removed (mounted with http.StripPrefix).
	Prefix string
	// Gateway is where the API explorer sends its calls:
	//
	//   - "" (the default): "/<service>/<Endpoint>" on the page's own
	//     origin — the dashboard is served by the API gateway, beside its
	//     routes;
	//   - a path ("/api"): the same, under that path;
	//   - an absolute URL ("http://127.0.0.1:8080"): a gateway elsewhere;
	//     the dashboard forwards the explorer's calls there itself (POST
	//     <Prefix>call/<service>/<Endpoint>), so that the page needs no
	//     CORS and its Content-Security-Policy stays 'self'.
	Gateway string
	// Logger is where the dashboard logs (default slog.Default()).
	Logger *slog.Logger
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Dashboard is the development dashboard, an http.Handler. Create it with
// New, Start it to follow the catalogue (and sample the Stats source), and
// Stop it when done.
type Dashboard struct {
	opts    Options
	logger  *slog.Logger
	tmpl    map[string]*template.Template
	mux     *http.ServeMux
	proxy   *httputil.ReverseProxy // nil unless Options.Gateway is a URL
	callURL func(service, endpoint string) string

	mu      sync.Mutex
	cat     catalogState
	watcher registry.Watcher
	done    chan struct{} // closed when the goroutines have ended
	cancel  context.CancelFunc

	figs  *figures
	spans spanCache
}

// catalogState is what the dashboard knows of the catalogue.
type catalogState struct {
	version   uint64
	instances []registry.Instance
	since     map[string]time.Time // service + "/" + id → first seen
	updated   time.Time
	err       error // the registry's last failure, nil once it answers again
	errAt     time.Time
	received  bool // a first set has come
}

// New returns a dashboard for opts. It is an error to give no Catalog, a
// Prefix that does not start and end with "/", or a Gateway that is
// neither a path nor an http(s) URL.
func New(opts Options) (*Dashboard, error) {
	if opts.Catalog == nil {
		return nil, errors.New("dashboard: Options.Catalog is required")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(opts.Prefix, "/") || !strings.HasSuffix(opts.Prefix, "/") {
		return nil, fmt.Errorf("dashboard: prefix %q must start and end with /", opts.Prefix)
	}
	if opts.StatsInterval <= 0 {
		opts.StatsInterval = DefaultStatsInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &Dashboard{opts: opts, logger: opts.Logger, figs: newFigures()}
	switch g := opts.Gateway; {
	case g == "" || strings.HasPrefix(g, "/"):
		base := strings.TrimSuffix(g, "/")
		d.callURL = func(svc, ep string) string { return base + "/" + url.PathEscape(svc) + "/" + url.PathEscape(ep) }
	default:
		u, err := url.Parse(g)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("dashboard: gateway %q is neither a path nor an http(s) URL", g)
		}
		d.proxy = newProxy(u, opts.Logger)
		d.callURL = func(svc, ep string) string {
			return opts.Prefix + "call/" + url.PathEscape(svc) + "/" + url.PathEscape(ep)
		}
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	d.tmpl = tmpl
	d.mux = d.routes()
	return d, nil
}

// Start starts following the catalogue, and asking the Stats source every
// StatsInterval if there is one. It returns once the watch is set up; the
// pages say "waiting for the registry" until its first answer.
func (d *Dashboard) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done != nil {
		return errors.New("dashboard: already started")
	}
	w, err := d.opts.Catalog.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("dashboard: watch the registry: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	d.watcher, d.cancel, d.done = w, cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { d.follow(runCtx, w) })
	if d.opts.Stats != nil {
		wg.Go(func() { d.sample(runCtx) })
	}
	done := d.done
	go func() { wg.Wait(); close(done) }()
	return nil
}

// Stop ends the catalogue watch and the sampling, and waits for both.
func (d *Dashboard) Stop(ctx context.Context) error {
	d.mu.Lock()
	w, cancel, done := d.watcher, d.cancel, d.done
	d.watcher = nil
	d.mu.Unlock()
	if w == nil {
		return nil
	}
	cancel()
	err := w.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return errors.Join(err, ctx.Err())
	}
	return err
}

// follow keeps d.cat up to date with the catalogue.
func (d *Dashboard) follow(ctx context.Context, w registry.Watcher) {
	for {
		ins, err := w.Next(ctx)
		if errors.Is(err, registry.ErrWatcherStopped) || ctx.Err() != nil {
			return
		}
		now := time.Now()
		d.mu.Lock()
		if err != nil {
			if d.cat.err == nil || d.cat.err.Error() != err.Error() {
				d.logger.Warn("dashboard: the registry failed; showing the last services known", "error", err)
				d.cat.version++ // pages show the failure; not again while it stays the same
			}
			d.cat.err, d.cat.errAt = err, now
			d.mu.Unlock()
			select { // Next waits for the registry again; do not spin on a broken one
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		since := make(map[string]time.Time, len(ins))
		for _, in := range ins {
			k := in.Service + "/" + in.ID
			if t, ok := d.cat.since[k]; ok {
				since[k] = t
			} else {
				since[k] = now
			}
		}
		d.cat = catalogState{version: d.cat.version + 1, instances: registry.Clone(ins), since: since, updated: now, received: true}
		d.mu.Unlock()
	}
}

// catalog returns a copy of what the dashboard knows of the catalogue.
func (d *Dashboard) catalog() catalogState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cat // instances and since are never written after they are set
}

// ServeHTTP serves the dashboard's pages, assets and JSON API. The path
// may carry the prefix or not (see Options.Prefix).
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == strings.TrimSuffix(d.opts.Prefix, "/") && p != "":
		http.Redirect(w, r, d.opts.Prefix, http.StatusMovedPermanently)
		return
	case strings.HasPrefix(p, d.opts.Prefix):
		p = "/" + strings.TrimPrefix(p, d.opts.Prefix)
	case !strings.HasPrefix(p, "/"):
		p = "/" + p
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = p, ""
	d.mux.ServeHTTP(w, r2)
}

func (d *Dashboard) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.pageCatalog)
	mux.HandleFunc("GET /services/{service}/{endpoint}", d.pageEndpoint)
	mux.HandleFunc("GET /explorer", d.pageExplorer)
	mux.HandleFunc("GET /traces", d.pageTraces)
	mux.HandleFunc("GET /traces/{id}", d.pageTrace)
	mux.HandleFunc("GET /api/catalog", d.apiCatalog)
	mux.HandleFunc("GET /api/figures", d.apiFigures)
	if d.opts.Traces != nil {
		mux.Handle("GET /api/traces", http.StripPrefix("/api", traces.API(d.opts.Traces)))
		mux.Handle("GET /api/traces/{id}", http.StripPrefix("/api", traces.API(d.opts.Traces)))
	} else {
		mux.HandleFunc("GET /api/traces", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "tracing is off: the dashboard has no trace store"})
		})
	}
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	if d.proxy != nil {
		mux.HandleFunc("POST /call/{service}/{endpoint}", d.forwardCall)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.render(w, r, http.StatusNotFound, "notfound", page{Title: "Not found", Nav: "", Message: "No page at " + r.URL.Path})
	})
	return mux
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// newProxy forwards the explorer's calls to the gateway at u.
func newProxy(u *url.URL, logger *slog.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			svc, ep := pr.In.PathValue("service"), pr.In.PathValue("endpoint")
			pr.SetURL(u)
			pr.Out.URL.Path = strings.TrimSuffix(u.Path, "/") + "/" + svc + "/" + ep
			pr.Out.URL.RawPath = strings.TrimSuffix(u.EscapedPath(), "/") + "/" + url.PathEscape(svc) + "/" + url.PathEscape(ep)
			pr.Out.Host = u.Host
		},
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logger.Warn("dashboard: cannot reach the gateway", "gateway", u.String(), "error", err)
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`{"type":"about:blank","title":"Bad Gateway","status":502,"code":"unavailable","detail":"the dashboard cannot reach the gateway"}`))
		},
	}
}

func (d *Dashboard) forwardCall(w http.ResponseWriter, r *http.Request) {
	d.proxy.ServeHTTP(w, r)
}
