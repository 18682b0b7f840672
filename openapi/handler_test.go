package openapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/openapi"
	"github.com/ferry-go/ferry/server"
)

// serve serves h on 127.0.0.1:0 until the test ends and returns its base
// URL and a client whose connections close with the test.
func serve(t *testing.T, h http.Handler) (string, *http.Client) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	tr := &http.Transport{}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-done
	})
	return "http://" + ln.Addr().String(), &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func get(t *testing.T, c *http.Client, method, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestHandler: the handler serves the document built once, with an ETag
// that If-None-Match revalidates, HEAD without a body, and a problem for
// other methods.
func TestHandler(t *testing.T) {
	s := greeter()
	want, err := openapi.Document(s, openapi.WithServer("/", ""))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(openapi.Path, openapi.Handler(s, openapi.WithServer("/", "")))
	base, c := serve(t, mux)
	url := base + openapi.Path

	// Many first requests at once: one build, one answer for all.
	var wg sync.WaitGroup
	etags := make([]string, 8)
	for i := range etags {
		wg.Go(func() {
			resp, err := c.Get(url)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != string(want) {
				t.Errorf("GET: %d, body equal to Document: %v", resp.StatusCode, string(body) == string(want))
			}
			etags[i] = resp.Header.Get("ETag")
		})
	}
	wg.Wait()
	resp, body := get(t, c, http.MethodGet, url, nil)
	etag := resp.Header.Get("ETag")
	if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-cache" ||
		len(etag) < 3 || etag[0] != '"' || !json.Valid(body) {
		t.Errorf("GET: headers %v", resp.Header)
	}
	for _, e := range etags {
		if e != etag {
			t.Errorf("ETags differ: %q, %q", e, etag)
		}
	}

	// Endpoints registered after the first request are not in it: it is
	// built once.
	server.Handle(s, "Late", func(context.Context, *HelloRequest) (*HelloReply, error) { return nil, nil })
	if _, body := get(t, c, http.MethodGet, url, nil); string(body) != string(want) {
		t.Error("the document changed after the first request")
	}

	resp, body = get(t, c, http.MethodGet, url, http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match with its ETag: %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, _ = get(t, c, http.MethodGet, url, http.Header{"If-None-Match": {`"other"`}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match with another ETag: %d", resp.StatusCode)
	}
	resp, body = get(t, c, http.MethodHead, url, nil)
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("ETag") != etag {
		t.Errorf("HEAD: %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, body = get(t, c, http.MethodPost, url, nil)
	var p struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
	}
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" ||
		resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil ||
		p.Status != 405 || p.Code != "unimplemented" {
		t.Errorf("POST: %d %v %s", resp.StatusCode, resp.Header, body)
	}
}

// TestHandlerNoDocument: a server without a document is answered 500
// with a problem that says why.
func TestHandlerNoDocument(t *testing.T) {
	base, c := serve(t, openapi.Handler(server.New("bad name")))
	resp, body := get(t, c, http.MethodGet, base+openapi.Path, nil)
	var p struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != "application/problem+json" ||
		json.Unmarshal(body, &p) != nil || p.Code != "internal" || p.Detail == "" {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}
