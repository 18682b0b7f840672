package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/server"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/typepb"
)

type Tenancy struct {
	Tenant string `json:"tenant"`
}

type searchReq struct {
	Tenancy
	ID     string    `json:"id"`
	Limit  int32     `json:"limit"`
	Offset *uint16   `json:"offset,omitempty"`
	Ratio  float64   `json:"ratio"`
	Active *bool     `json:"active,omitempty"`
	Tags   []string  `json:"tags"`
	Scores []int     `json:"scores"`
	Since  time.Time `json:"since"`
	UserID string
	Nested struct{ A int } `json:"nested"`
	Skip   string          `json:"-"`
	Note   string          `json:"note,omitempty"`
}

// restServer echoes bound requests back on REST routes.
func restServer() *server.Server {
	s := server.New("rest", server.WithLogger(quiet))
	server.Handle(s, "Search", func(_ context.Context, req *searchReq) (*searchReq, error) { return req, nil },
		server.WithRoute("GET /v1/items/{id}"),
		server.WithRoute("POST /v1/items/{id}"),
		server.WithRoute("GET /v1/files/{note...}"))
	server.Handle(s, "Field", func(_ context.Context, req *typepb.Field) (*typepb.Field, error) { return req, nil },
		server.WithRoute("GET /v1/fields/{name}"))
	server.Handle(s, "Mask", func(_ context.Context, req *fieldmaskpb.FieldMask) (*fieldmaskpb.FieldMask, error) { return req, nil },
		server.WithRoute("GET /v1/mask"))
	return s
}

func serve(t testing.TB, h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestBindStruct(t *testing.T) {
	h, err := fhttp.NewHandler(restServer())
	if err != nil {
		t.Fatalf("NewHandler() = %v", err)
	}
	u16, yes := uint16(7), true
	since := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name, method, target, body string
		want                       searchReq
	}{
		{name: "path only", method: "GET", target: "/v1/items/abc", want: searchReq{ID: "abc"}},
		{name: "escaped path", method: "GET", target: "/v1/items/a%20b%2Fc", want: searchReq{ID: "a b/c"}},
		{
			name: "every kind", method: "GET",
			target: "/v1/items/abc?limit=5&offset=7&ratio=0.5&active=true&tags=a&tags=b%20c&scores=1&scores=-2&since=2024-01-02T03:04:05Z&UserID=u1&tenant=t1",
			want: searchReq{Tenancy: Tenancy{"t1"}, ID: "abc", Limit: 5, Offset: &u16, Ratio: 0.5, Active: &yes,
				Tags: []string{"a", "b c"}, Scores: []int{1, -2}, Since: since, UserID: "u1"},
		},
		{name: "snake alias", method: "GET", target: "/v1/items/x?user_id=u2", want: searchReq{ID: "x", UserID: "u2"}},
		{name: "camel alias", method: "GET", target: "/v1/items/x?userID=u3", want: searchReq{ID: "x", UserID: "u3"}},
		{name: "any case", method: "GET", target: "/v1/items/x?LIMIT=3", want: searchReq{ID: "x", Limit: 3}},
		{name: "empty string value", method: "GET", target: "/v1/items/x?note=", want: searchReq{ID: "x"}},
		{name: "plus is space", method: "GET", target: "/v1/items/x?note=a+b", want: searchReq{ID: "x", Note: "a b"}},
		{name: "empty pairs skipped", method: "GET", target: "/v1/items/x?&&limit=1&", want: searchReq{ID: "x", Limit: 1}},
		{
			name: "body then path then query", method: "POST", target: "/v1/items/frompath?tags=q",
			body: `{"id":"frombody","limit":9,"tags":["b1","b2"]}`,
			want: searchReq{ID: "frompath", Limit: 9, Tags: []string{"q"}},
		},
		{name: "rest wildcard", method: "GET", target: "/v1/files/a/b/c.txt", want: searchReq{Note: "a/b/c.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, h, tt.method, tt.target, tt.body)
			if rec.Code != 200 {
				t.Fatalf("%s %s = %d %s, want 200", tt.method, tt.target, rec.Code, rec.Body)
			}
			var got searchReq
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s %s bound %+v, want %+v", tt.method, tt.target, got, tt.want)
			}
		})
	}
}

func TestBindErrors(t *testing.T) {
	h, err := fhttp.NewHandler(restServer())
	if err != nil {
		t.Fatalf("NewHandler() = %v", err)
	}
	tests := []struct {
		target string
		status int
		want   string // in the detail
		field  string
	}{
		{"/v1/items/x?limit=abc", 400, `query parameter "limit": "abc" is not a valid int32`, "limit"},
		{"/v1/items/x?limit=99999999999", 400, `is not a valid int32`, "limit"},
		{"/v1/items/x?offset=-1", 400, `"-1" is not a valid uint16`, "offset"},
		{"/v1/items/x?active=maybe", 400, `is not a valid bool`, "active"},
		{"/v1/items/x?ratio=NaN", 400, `is not a valid float64`, "ratio"},
		{"/v1/items/x?scores=1&scores=x", 400, `"x" is not a valid int`, "scores"},
		{"/v1/items/x?since=yesterday", 400, `"yesterday" is not a valid time.Time: parsing time`, "since"},
		{"/v1/items/x?bogus=1", 400, `unknown query parameter "bogus"`, "bogus"},
		{"/v1/items/x?Skip=1", 400, `unknown query parameter "Skip"`, "Skip"},
		{"/v1/items/x?nested=1", 400, `names a field of type struct { A int }`, "nested"},
		{"/v1/items/x?limit=1&limit=2", 400, `"limit" given more than once`, "limit"},
		{"/v1/items/x?id=y", 400, `sets the path parameter {id}`, "id"},
		{"/v1/items/x?note=%zz", 400, `malformed value "%zz"`, "note"},
		{"/v1/items/x?note=%ff", 400, `not valid UTF-8`, "note"},
		{"/v1/fields/f?kind=NOPE", 400, `"NOPE" is not a valid enum google.protobuf.Field.Kind`, "kind"},
		{"/v1/fields/f?options=x", 400, `names a field of type message google.protobuf.Option`, "options"},
		{"/v1/fields/f?number=1.5", 400, `"1.5" is not a valid int32`, "number"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			rec := serve(t, h, "GET", tt.target, "")
			var p problemBody
			_ = json.Unmarshal(rec.Body.Bytes(), &p)
			if rec.Code != tt.status || p.Code != "invalid_argument" {
				t.Fatalf("GET %s = %d %s, want %d invalid_argument", tt.target, rec.Code, rec.Body, tt.status)
			}
			if !strings.Contains(p.Detail, tt.want) {
				t.Errorf("GET %s detail = %q, want it to contain %q", tt.target, p.Detail, tt.want)
			}
			if len(p.Details) != 1 || p.Details[0].Field != tt.field {
				t.Errorf("GET %s details = %+v, want one naming field %q", tt.target, p.Details, tt.field)
			}
		})
	}
}

func TestRESTWrongMethod(t *testing.T) {
	h, err := fhttp.NewHandler(restServer())
	if err != nil {
		t.Fatal(err)
	}
	rec := serve(t, h, "DELETE", "/v1/items/x", "")
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("DELETE /v1/items/x = %d, Allow %q, want 405, GET, HEAD, POST", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestBindProto(t *testing.T) {
	h, err := fhttp.NewHandler(restServer())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		target string
		want   proto.Message
		got    proto.Message
	}{
		{
			"/v1/fields/f1?number=3&kind=TYPE_STRING&packed=true&json_name=jn&oneofIndex=2&cardinality=1",
			&typepb.Field{Name: "f1", Number: 3, Kind: typepb.Field_TYPE_STRING, Packed: true, JsonName: "jn", OneofIndex: 2,
				Cardinality: typepb.Field_CARDINALITY_OPTIONAL},
			new(typepb.Field),
		},
		{"/v1/mask?paths=a.b&paths=c", &fieldmaskpb.FieldMask{Paths: []string{"a.b", "c"}}, new(fieldmaskpb.FieldMask)},
	}
	for _, tt := range tests {
		rec := serve(t, h, "GET", tt.target, "")
		if rec.Code != 200 {
			t.Fatalf("GET %s = %d %s, want 200", tt.target, rec.Code, rec.Body)
		}
		if err := protojson.Unmarshal(rec.Body.Bytes(), tt.got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(tt.got, tt.want) {
			t.Errorf("GET %s bound %v, want %v", tt.target, tt.got, tt.want)
		}
	}
}

func TestBindStartErrors(t *testing.T) {
	tests := []struct {
		route string
		want  string
	}{
		{"GET /v1/x/{missing}", "path wildcard {missing} matches no field"},
		{"GET /v1/x/{tags}", "path wildcard {tags} names a list field"},
		{"GET /v1/x/{nested}", "path wildcard {nested} names a field of type struct"},
		{"GET /v1/x/{bad", `"GET /v1/x/{bad"`},
	}
	for _, tt := range tests {
		s := server.New("svc", server.WithLogger(quiet))
		server.Handle(s, "Search", func(_ context.Context, req *searchReq) (*searchReq, error) { return req, nil }, server.WithRoute(tt.route))
		_, err := fhttp.NewHandler(s)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.route) {
			t.Errorf("NewHandler(route %q) = %v, want an error naming the route and %q", tt.route, err, tt.want)
		}
	}
}

// FuzzBind feeds arbitrary path values and query strings to a REST route:
// bad input must get a 4xx, never a panic or a 5xx.
func FuzzBind(f *testing.F) {
	h, err := fhttp.NewHandler(restServer())
	if err != nil {
		f.Fatal(err)
	}
	f.Add("abc", "limit=5&tags=a&tags=b")
	f.Add("x", "offset=70000")
	f.Add("%zz", "since=2024-01-02T03:04:05Z&active=1")
	f.Add("f", "ratio=1e400&scores=-0")
	f.Fuzz(func(t *testing.T, path, query string) {
		for _, prefix := range []string{"/v1/items/", "/v1/fields/", "/v1/mask/"} {
			req := &http.Request{
				Method:     "GET",
				URL:        &url.URL{Path: prefix + path, RawQuery: query},
				Proto:      "HTTP/1.1",
				ProtoMajor: 1, ProtoMinor: 1,
				Header:     http.Header{},
				Body:       http.NoBody,
				Host:       "example.com",
				RemoteAddr: "192.0.2.1:1234",
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("GET %s?%s = %d %s, want < 500", req.URL.Path, query, rec.Code, rec.Body)
			}
		}
	})
}
