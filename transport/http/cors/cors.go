package cors

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options configures New.
type Options struct {
	// AllowedOrigins are origins allowed to call: exact origins
	// ("https://app.example.com"), one wildcard subdomain level
	// ("https://*.example.com"), or "*" for any origin (not with
	// AllowCredentials). At least one, or AllowOriginFunc, is required.
	AllowedOrigins []string
	// AllowOriginFunc, when set, is asked about origins AllowedOrigins does
	// not list.
	AllowOriginFunc func(origin string) bool
	// AllowedMethods are the methods a preflight may ask for; empty means
	// GET, HEAD, POST, PUT, PATCH, DELETE.
	AllowedMethods []string
	// AllowedHeaders are the request headers a preflight may ask for; "*"
	// allows any. Empty means Content-Type, Authorization, X-Request-Id,
	// X-Api-Key, Ferry-Timeout-Ms and Ferry-Transport.
	AllowedHeaders []string
	// ExposedHeaders are reply headers the browser lets scripts read.
	ExposedHeaders []string
	// AllowCredentials lets browsers send cookies and authorization and
	// read the reply.
	AllowCredentials bool
	// MaxAge is how long a browser may cache a preflight answer; 0 sends
	// no Access-Control-Max-Age. It is sent in whole seconds.
	MaxAge time.Duration
}

type filter struct {
	anyOrigin  bool
	exact      map[string]bool
	wild       []wildcard
	originFunc func(string) bool
	methods    []string
	anyHeader  bool
	headers    map[string]bool
	methodsHdr string
	exposed    string
	creds      bool
	maxAge     string
}

type wildcard struct{ prefix, suffix string } // "https://" and ".example.com"

// New returns the filter for o, or an error when o is inconsistent.
func New(o Options) (func(http.Handler) http.Handler, error) {
	f := &filter{exact: map[string]bool{}, headers: map[string]bool{}, originFunc: o.AllowOriginFunc, creds: o.AllowCredentials}
	if len(o.AllowedOrigins) == 0 && o.AllowOriginFunc == nil {
		return nil, errors.New("cors: no allowed origins")
	}
	for _, org := range o.AllowedOrigins {
		switch {
		case org == "*":
			f.anyOrigin = true
		case strings.Count(org, "*") == 1 && strings.Contains(org, "://*."):
			scheme, rest, _ := strings.Cut(org, "://*.")
			if scheme == "" || rest == "" || strings.ContainsAny(rest, "/*") {
				return nil, fmt.Errorf("cors: allowed origin %q: want scheme://*.domain", org)
			}
			f.wild = append(f.wild, wildcard{prefix: strings.ToLower(scheme) + "://", suffix: "." + strings.ToLower(rest)})
		default:
			u, err := url.Parse(org)
			if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || strings.Contains(org, "*") {
				return nil, fmt.Errorf("cors: allowed origin %q: want scheme://host[:port]", org)
			}
			f.exact[strings.ToLower(strings.TrimSuffix(org, "/"))] = true
		}
	}
	if f.anyOrigin && o.AllowCredentials {
		return nil, errors.New(`cors: AllowCredentials cannot be used with origin "*"`)
	}
	f.methods = slices.Clone(o.AllowedMethods)
	if len(f.methods) == 0 {
		f.methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	}
	for i, m := range f.methods {
		if !token(m) {
			return nil, fmt.Errorf("cors: method %q is not an HTTP token", m)
		}
		f.methods[i] = strings.ToUpper(m)
	}
	f.methodsHdr = strings.Join(f.methods, ", ")
	hdrs := o.AllowedHeaders
	if len(hdrs) == 0 {
		hdrs = []string{"Content-Type", "Authorization", "X-Request-Id", "X-Api-Key", "Ferry-Timeout-Ms", "Ferry-Transport"}
	}
	for _, h := range hdrs {
		if h == "*" {
			f.anyHeader = true
			continue
		}
		if !token(h) {
			return nil, fmt.Errorf("cors: header %q is not an HTTP token", h)
		}
		f.headers[strings.ToLower(h)] = true
	}
	for _, h := range o.ExposedHeaders {
		if !token(h) {
			return nil, fmt.Errorf("cors: exposed header %q is not an HTTP token", h)
		}
	}
	f.exposed = strings.Join(o.ExposedHeaders, ", ")
	if o.MaxAge < 0 {
		return nil, fmt.Errorf("cors: negative max age %v", o.MaxAge)
	}
	if o.MaxAge > 0 {
		f.maxAge = strconv.FormatInt(int64(o.MaxAge/time.Second), 10)
	}
	return f.wrap, nil
}

func token(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func (f *filter) allowed(origin string) bool {
	if f.anyOrigin {
		return true
	}
	lo := strings.ToLower(origin)
	if f.exact[lo] {
		return true
	}
	for _, w := range f.wild {
		if strings.HasPrefix(lo, w.prefix) && strings.HasSuffix(lo, w.suffix) && len(lo) > len(w.prefix)+len(w.suffix) {
			host := lo[len(w.prefix) : len(lo)-len(w.suffix)]
			if !strings.ContainsAny(host, "/.:@") { // one label, no path or userinfo
				return true
			}
		}
	}
	return f.originFunc != nil && f.originFunc(origin)
}

func (f *filter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if origin == "" {
			next.ServeHTTP(w, r) // not a CORS request
			return
		}
		h := w.Header()
		if preflight {
			h.Add("Vary", "Origin")
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			f.preflight(h, r, origin)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if !f.anyOrigin || f.creds {
			h.Add("Vary", "Origin")
		}
		if f.allowed(origin) {
			f.allowOrigin(h, origin)
			if f.exposed != "" {
				h.Set("Access-Control-Expose-Headers", f.exposed)
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (f *filter) allowOrigin(h http.Header, origin string) {
	if f.anyOrigin && !f.creds {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if f.creds {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

func (f *filter) preflight(h http.Header, r *http.Request, origin string) {
	if !f.allowed(origin) {
		return
	}
	method := strings.ToUpper(r.Header.Get("Access-Control-Request-Method"))
	if !slices.Contains(f.methods, method) {
		return
	}
	var asked []string
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				asked = append(asked, name)
			}
		}
	}
	if !f.anyHeader {
		for _, name := range asked {
			if !f.headers[strings.ToLower(name)] {
				return
			}
		}
	}
	f.allowOrigin(h, origin)
	h.Set("Access-Control-Allow-Methods", f.methodsHdr)
	if len(asked) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(asked, ", "))
	}
	if f.maxAge != "" {
		h.Set("Access-Control-Max-Age", f.maxAge)
	}
}
