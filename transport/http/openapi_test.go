package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

type petRequest struct {
	Name string `json:"name" validate:"required,max=20"`
	Age  int    `json:"age" validate:"gte=0,lte=40"`
}

type petReply struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func petServer() *server.Server {
	s := server.New("pets", server.WithLogger(slog.New(slog.DiscardHandler)))
	server.Handle(s, "Add", func(_ context.Context, r *petRequest) (*petReply, error) {
		return &petReply{ID: "p-1", Name: r.Name}, nil
	})
	server.HandleServerStream(s, "Watch", func(context.Context, *petRequest, server.Sender[petReply]) error { return nil })
	return s
}

// The transport serves its service's OpenAPI document at GET /openapi.json:
// it validates, and a request built from it is answered as documented.
func TestServedOpenAPI(t *testing.T) {
	_, base := start(t, petServer())
	hc := rawClient(t)
	resp, err := hc.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatalf("load the document: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("the served document is not valid OpenAPI: %v", err)
	}
	if doc.Paths.Find("/pets/Add") == nil || doc.Paths.Find("/pets/Watch") == nil {
		t.Fatalf("document paths = %v, want /pets/Add and /pets/Watch", doc.Paths.InMatchingOrder())
	}
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	reqBody := []byte(`{"name":"Rex","age":3}`)
	req, _ := http.NewRequest(http.MethodPost, base+"/pets/Add", bytes.NewReader(reqBody))
	req.Header.Set("Content-Type", "application/json")
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("the document has no route for POST /pets/Add: %v", err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		t.Fatalf("the request does not match the document: %v", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var reply petReply
	if resp.StatusCode != http.StatusOK || json.Unmarshal(out, &reply) != nil || reply.Name != "Rex" {
		t.Fatalf("POST /pets/Add = %d %s", resp.StatusCode, out)
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(out)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(ctx, rin); err != nil {
		t.Errorf("the reply does not match the document: %v", err)
	}
}

func TestWithoutOpenAPI(t *testing.T) {
	_, base := start(t, petServer(), fhttp.WithoutOpenAPI())
	resp, err := rawClient(t).Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /openapi.json WithoutOpenAPI = %d, want 404", resp.StatusCode)
	}
}

// A unary handler's trailer goes out as a real HTTP trailer, after a
// chunked body.
func TestUnaryTrailer(t *testing.T) {
	s := server.New("trl", server.WithLogger(slog.New(slog.DiscardHandler)))
	server.Handle(s, "Get", func(ctx context.Context, r *petRequest) (*petReply, error) {
		c, _ := transport.CallFromContext(ctx)
		c.SetTrailer("x-checksum", "abc")
		return &petReply{Name: r.Name}, nil
	})
	_, base := start(t, s)
	resp, err := rawClient(t).Post(base+"/trl/Get", "application/json", strings.NewReader(`{"name":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Trailer.Get("X-Checksum") != "abc" || resp.Header.Get("X-Checksum") != "" {
		t.Errorf("reply %d %s: trailer %v, header %v; want X-Checksum: abc as a trailer only", resp.StatusCode, body, resp.Trailer, resp.Header)
	}
}
