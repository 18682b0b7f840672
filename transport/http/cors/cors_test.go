package cors_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/server"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"github.com/ferry-go/ferry/transport/http/cors"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type Req struct {
	Name string `json:"name"`
}

func do(t *testing.T, h http.Handler, method, origin string, hdr map[string]string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, "/svc/Hello", strings.NewReader(`{"name":"ada"}`))
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func TestFilter(t *testing.T) {
	f, err := cors.New(cors.Options{
		AllowedOrigins:   []string{"https://app.example.com", "https://*.example.org"},
		ExposedHeaders:   []string{"X-Request-Id"},
		AllowCredentials: true,
		MaxAge:           10 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	var reached int
	h := f(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++; w.WriteHeader(http.StatusOK) }))
	pre := func(origin, method, headers string) *http.Response {
		hdr := map[string]string{"Access-Control-Request-Method": method}
		if headers != "" {
			hdr["Access-Control-Request-Headers"] = headers
		}
		return do(t, h, http.MethodOptions, origin, hdr)
	}

	// An allowed preflight.
	resp := pre("https://app.example.com", "POST", "content-type, authorization")
	if resp.StatusCode != http.StatusNoContent ||
		resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		resp.Header.Get("Access-Control-Allow-Headers") != "content-type, authorization" ||
		resp.Header.Get("Access-Control-Max-Age") != "600" ||
		!strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
		t.Errorf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if reached != 0 {
		t.Error("preflight reached the service")
	}
	// Refused preflights carry no Allow headers.
	for name, r := range map[string]*http.Response{
		"origin":        pre("https://evil.example.com", "POST", ""),
		"method":        pre("https://app.example.com", "TRACE", ""),
		"header":        pre("https://app.example.com", "POST", "x-secret"),
		"deep wildcard": pre("https://a.b.example.org", "POST", ""),
		"scheme":        pre("http://app.example.com", "POST", ""),
	} {
		if r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: %d %v", name, r.StatusCode, r.Header)
		}
	}
	// The wildcard subdomain.
	if r := pre("https://shop.example.org", "GET", ""); r.Header.Get("Access-Control-Allow-Origin") != "https://shop.example.org" {
		t.Errorf("wildcard: %v", r.Header)
	}

	// Actual requests go through; allowed origins get the headers.
	resp = do(t, h, http.MethodPost, "https://app.example.com", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		resp.Header.Get("Access-Control-Expose-Headers") != "X-Request-Id" {
		t.Errorf("actual: %v", resp.Header)
	}
	resp = do(t, h, http.MethodPost, "https://evil.example.com", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Vary") != "Origin" {
		t.Errorf("other origin: %v", resp.Header)
	}
	resp = do(t, h, http.MethodPost, "", nil)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no origin: %v", resp.Header)
	}
	if reached != 3 {
		t.Errorf("service reached %d times, want 3", reached)
	}
}

func TestAnyOrigin(t *testing.T) {
	f, err := cors.New(cors.Options{AllowedOrigins: []string{"*"}, AllowedHeaders: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	h := f(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	resp := do(t, h, http.MethodOptions, "https://x.test", map[string]string{
		"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "X-Anything"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Headers") != "X-Anything" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("%v", resp.Header)
	}
	f, _ = cors.New(cors.Options{AllowOriginFunc: func(o string) bool { return strings.HasSuffix(o, ".test") }})
	h = f(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	if r := do(t, h, http.MethodGet, "https://y.test", nil); r.Header.Get("Access-Control-Allow-Origin") != "https://y.test" {
		t.Errorf("origin func: %v", r.Header)
	}
}

func TestInvalidOptions(t *testing.T) {
	for name, o := range map[string]cors.Options{
		"no origins":       {},
		"credentials any":  {AllowedOrigins: []string{"*"}, AllowCredentials: true},
		"origin with path": {AllowedOrigins: []string{"https://a.com/x"}},
		"bare host":        {AllowedOrigins: []string{"a.com"}},
		"odd wildcard":     {AllowedOrigins: []string{"https://a*.com"}},
		"bad method":       {AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GE T"}},
		"bad header":       {AllowedOrigins: []string{"*"}, AllowedHeaders: []string{"a:b"}},
		"bad exposed":      {AllowedOrigins: []string{"*"}, ExposedHeaders: []string{""}},
		"negative max age": {AllowedOrigins: []string{"*"}, MaxAge: -time.Second},
	} {
		if f, err := cors.New(o); err == nil || f != nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestWithFerryServer plugs the filter into the HTTP transport and calls a
// real endpoint from a "browser".
func TestWithFerryServer(t *testing.T) {
	f, err := cors.New(cors.Options{AllowedOrigins: []string{"https://app.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New("svc")
	server.Handle(srv, "Hello", func(ctx context.Context, req *Req) (*Req, error) { return req, nil })
	tr := fhttp.NewServer("127.0.0.1:0", fhttp.WithFilter(f))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.Start(ctx, srv); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Stop(ctx) }()
	base := "http://" + tr.Addr().String() + "/svc/Hello"
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodOptions, base, nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "Content-Type")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	req, _ = http.NewRequest(http.MethodPost, base, strings.NewReader(`{"name":"ada"}`))
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Content-Type", "application/json")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"name":"ada"}` || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("call: %d %s %v", resp.StatusCode, body, resp.Header)
	}
}
