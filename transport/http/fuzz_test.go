package http_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/ferry-go/ferry/server"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type decodeReq struct {
	Name   string            `json:"name"`
	Count  int8              `json:"count"`
	Ratio  float32           `json:"ratio"`
	Tags   []string          `json:"tags"`
	Labels map[string]string `json:"labels"`
	Next   *decodeReq        `json:"next"`
	When   time.Time         `json:"when"`
}

// FuzzDecode sends arbitrary bodies with arbitrary content types through
// the server's handler: bad input must get a 4xx, never a panic or a 5xx.
func FuzzDecode(f *testing.F) {
	s := server.New("fuzz", server.WithLogger(quiet))
	server.Handle(s, "Struct", func(context.Context, *decodeReq) (*helloResp, error) { return &helloResp{Message: "ok"}, nil })
	server.Handle(s, "Proto", func(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return wrapperspb.String("ok"), nil
	})
	h, err := fhttp.NewHandler(s, fhttp.WithMaxBodyBytes(1<<16))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("application/json", []byte(`{"name":"a","count":1,"tags":["x"],"labels":{"k":"v"},"next":{"name":"b"}}`))
	f.Add("", []byte(`{"count":300}`))
	f.Add("application/x-www-form-urlencoded", []byte(`name=a&count=1`))
	f.Add("application/protobuf", []byte{0x0a, 0x02, 'h', 'i'})
	f.Add("application/json; charset=utf-8", []byte(`{"when":"not a time"}`))
	f.Add("text/plain", []byte(`hello`))
	f.Add("application/json", []byte(`{"ratio":1e999}`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		for _, ep := range []string{"/fuzz/Struct", "/fuzz/Proto"} {
			req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
			req.URL = &url.URL{Path: ep}
			if contentType != "" {
				req.Header.Set("Content-Type", contentType)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("POST %s (%q, %q) = %d %s, want < 500", ep, contentType, body, rec.Code, rec.Body)
			}
			if rec.Code != http.StatusOK && rec.Header().Get("Content-Type") != fhttp.ProblemContentType {
				t.Fatalf("POST %s = %d with Content-Type %q, want a problem body", ep, rec.Code, rec.Header().Get("Content-Type"))
			}
		}
	})
}
