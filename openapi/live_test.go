package openapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/openapi"
	"github.com/ferry-go/ferry/schema"
	"github.com/ferry-go/ferry/server"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// live is a service served by the HTTP transport on 127.0.0.1:0, with its
// document (naming that server), parsed twice: by kin-openapi, to route
// and validate, and as package schema's values, to build examples from.
type live struct {
	base   string
	doc    *openapi3.T
	router routers.Router
	raw    rawDoc
	client *http.Client
}

// rawDoc is the part of the document requests are built from.
type rawDoc struct {
	Paths      map[string]map[string]rawOp `json:"paths"`
	Components struct {
		Schemas    map[string]*schema.Schema `json:"schemas"`
		Parameters map[string]rawParam       `json:"parameters"`
	} `json:"components"`
}

type rawOp struct {
	OperationID string     `json:"operationId"`
	Parameters  []rawParam `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema *schema.Schema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Stream    string `json:"x-ferry-stream"`
	WebSocket any    `json:"x-ferry-websocket"`
}

type rawParam struct {
	Ref      string         `json:"$ref"`
	Name     string         `json:"name"`
	In       string         `json:"in"`
	Required bool           `json:"required"`
	Schema   *schema.Schema `json:"schema"`
}

func startLive(t *testing.T, s *server.Server, opts ...fhttp.ServerOption) *live {
	t.Helper()
	hs := fhttp.NewServer("127.0.0.1:0", opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Start(ctx, s); err != nil {
		t.Fatalf("Start() = %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Stop(ctx); err != nil {
			t.Errorf("Stop() = %v", err)
		}
	})
	l := &live{base: "http://" + hs.Addr().String()}
	var raw []byte
	raw, l.doc = document(t, s, openapi.WithServer(l.base, "the test server"))
	if err := json.Unmarshal(raw, &l.raw); err != nil {
		t.Fatalf("document as schema values: %v", err)
	}
	var err error
	if l.router, err = legacy.NewRouter(l.doc); err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	l.client = &http.Client{Transport: tr, Timeout: 20 * time.Second}
	return l
}

// example returns a value s describes, its $refs resolved against the
// document's components.
func (l *live) example(t testing.TB, s *schema.Schema) any {
	t.Helper()
	c := *s
	c.Defs = l.raw.Components.Schemas
	b, err := schema.Example(&c)
	if err != nil {
		t.Fatalf("Example: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// call is one request built from an operation of the document.
type call struct {
	method, path string // path is the template
	op           rawOp
	pathValues   map[string]string
	query        url.Values
	header       http.Header
	body         any // nil: none
	hasBody      bool
}

// build fills c from the document's examples: every parameter (a list
// parameter with its example's elements) and the JSON body.
func (l *live) build(t testing.TB, method, path string, op rawOp) *call {
	t.Helper()
	c := &call{method: method, path: path, op: op, pathValues: map[string]string{}, query: url.Values{}, header: http.Header{}}
	for _, p := range op.Parameters {
		if p.Ref != "" {
			p = l.raw.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
		}
		vals := strValues(l.example(t, p.Schema))
		switch p.In {
		case "path":
			c.pathValues[p.Name] = vals[0]
		case "query":
			c.query[p.Name] = vals
		case "header":
			c.header[http.CanonicalHeaderKey(p.Name)] = vals
		}
	}
	if op.RequestBody != nil {
		c.body, c.hasBody = l.example(t, op.RequestBody.Content["application/json"].Schema), true
	}
	return c
}

// strValues spells a parameter's example as the query or path gives it.
func strValues(v any) []string {
	switch x := v.(type) {
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, strValues(e)...)
		}
		return out
	case string:
		return []string{x}
	case nil:
		return []string{""}
	}
	return []string{fmt.Sprint(v)}
}

func (c *call) request(t testing.TB, base string) *http.Request {
	t.Helper()
	path := c.path
	for name, v := range c.pathValues {
		path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(v))
	}
	u := base + path
	if len(c.query) > 0 {
		u += "?" + c.query.Encode()
	}
	var body io.Reader
	if c.hasBody {
		b, err := json.Marshal(c.body)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(c.method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// validateRequest routes req by the document and checks it against its
// operation.
func (l *live) validateRequest(t testing.TB, req *http.Request, wantOp string) (*openapi3filter.RequestValidationInput, error) {
	t.Helper()
	route, params, err := l.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: no route in the document: %v", req.Method, req.URL, err)
	}
	if route.Operation.OperationID != wantOp {
		t.Fatalf("%s %s: routed to %s, want %s", req.Method, req.URL, route.Operation.OperationID, wantOp)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route}
	return in, openapi3filter.ValidateRequest(context.Background(), in)
}

// send sends c and returns the reply, checked against the document: its
// status is one the operation lists and its body validates against that
// response's schema.
func (l *live) send(t testing.TB, c *call, in *openapi3filter.RequestValidationInput) (*http.Response, []byte) {
	t.Helper()
	resp, err := l.client.Do(c.request(t, l.base))
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s: the %d reply does not match the document: %v\n%s", c.method, c.path, resp.StatusCode, err, body)
	}
	return resp, body
}

// operations lists the document's operations sorted by path and method.
func (l *live) operations() [][3]string {
	var out [][3]string
	for path, item := range l.raw.Paths {
		for method := range item {
			out = append(out, [3]string{strings.ToUpper(method), path, item[method].OperationID})
		}
	}
	slices.SortFunc(out, func(a, b [3]string) int { return strings.Compare(a[1]+a[0], b[1]+b[0]) })
	return out
}

// TestRequestsFromDocument: for every unary operation, a request built
// from the document alone (its examples) validates against the document,
// and the real service answers it 200 with a reply that validates against
// the documented response schema.
func TestRequestsFromDocument(t *testing.T) {
	l := startLive(t, shop())
	n := 0
	for _, o := range l.operations() {
		method, path, id := o[0], o[1], o[2]
		op := l.raw.Paths[path][strings.ToLower(method)]
		if op.Stream != "" || op.WebSocket != nil {
			continue // streams: described, not called here
		}
		n++
		t.Run(id, func(t *testing.T) {
			c := l.build(t, method, path, op)
			in, err := l.validateRequest(t, c.request(t, l.base), id)
			if err != nil {
				t.Fatalf("the request built from the document does not validate against it: %v", err)
			}
			resp, body := l.send(t, c, in)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s = %d, want 200\n%s", method, path, resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	if n != 17 {
		t.Errorf("%d unary operations called, want 17", n)
	}
}

// TestProtobufBody: an operation that lists application/protobuf takes a
// protobuf body and answers in protobuf.
func TestProtobufBody(t *testing.T) {
	l := startLive(t, shop())
	if l.doc.Paths.Find("/shop/Echo").Post.RequestBody.Value.Content.Get("application/protobuf") == nil {
		t.Fatal("POST /shop/Echo lists no protobuf body")
	}
	b, _ := proto.Marshal(wrapperspb.String("ada"))
	resp, err := l.client.Post(l.base+"/shop/Echo", "application/protobuf", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var got wrapperspb.StringValue
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/protobuf" || proto.Unmarshal(body, &got) != nil ||
		got.GetValue() != "echo: ada" {
		t.Errorf("protobuf call: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// mutation breaks one documented constraint of an example request.
type mutation struct {
	name  string
	field string // the field the server's details should name
	apply func(c *call)
}

// bodyMutations derives, from the body schema of op alone, requests that
// violate it: each required field left out, and each property's enum,
// maxLength, maximum or maxItems exceeded.
func (l *live) bodyMutations(t testing.TB, op rawOp) []mutation {
	t.Helper()
	s := op.RequestBody.Content["application/json"].Schema
	if s.Ref != "" {
		s = l.raw.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	var out []mutation
	set := func(name string, v any) func(c *call) {
		return func(c *call) { c.body.(map[string]any)[name] = v }
	}
	for _, name := range s.Required {
		out = append(out, mutation{"without " + name, name, func(c *call) { delete(c.body.(map[string]any), name) }})
	}
	for _, p := range s.Properties {
		ps := p.Schema
		switch {
		case len(ps.Enum) > 0 && slices.Contains(ps.Type, "string"):
			out = append(out, mutation{p.Name + " not in enum", p.Name, set(p.Name, "not-one-of-them")})
		case len(ps.Enum) > 0:
			out = append(out, mutation{p.Name + " not in enum", p.Name, set(p.Name, 987654)})
		case ps.MaxLength != nil:
			out = append(out, mutation{p.Name + " too long", p.Name, set(p.Name, strings.Repeat("a", *ps.MaxLength+1))})
		case ps.Maximum != "":
			m, _ := strconv.ParseFloat(string(ps.Maximum), 64)
			out = append(out, mutation{p.Name + " over its maximum", p.Name, set(p.Name, m+1)})
		case ps.MaxItems != nil && !ps.UniqueItems:
			v := l.example(t, ps).([]any)
			long := make([]any, *ps.MaxItems+1)
			for i := range long {
				long[i] = v[0]
			}
			out = append(out, mutation{p.Name + " too many items", p.Name, set(p.Name, long)})
		}
	}
	return out
}

// TestInvalidRequests: a request that breaks a constraint the document
// states is refused by the document (kin-openapi) and by the service,
// with a 400 problem+json naming the field, which validates against the
// documented error response.
func TestInvalidRequests(t *testing.T) {
	l := startLive(t, shop())
	type target struct {
		method, path string
		mutations    []mutation
	}
	var targets []target
	// Unary endpoints only: how a stream refuses its request is the
	// streaming transport's business.
	for _, p := range []string{"/shop/Place", "/shop/Update"} {
		op := l.raw.Paths[p]["post"]
		targets = append(targets, target{"POST", p, l.bodyMutations(t, op)})
	}
	query := func(name, v string) func(c *call) { return func(c *call) { c.query.Set(name, v) } }
	targets = append(targets,
		target{"GET", "/v1/orders/{id}", []mutation{
			{"limit over its maximum", "limit", query("limit", "51")},
			{"fields not in enum", "fields[0]", query("fields", "bogus")},
			{"id not a uuid", "id", func(c *call) { c.pathValues["id"] = "nope" }},
		}},
		target{"GET", "/shop/Get", []mutation{{"without id", "id", func(c *call) { c.query.Del("id") }}}},
		target{"PUT", "/v1/orders/{id}", []mutation{{"status not in enum", "status", func(c *call) {
			c.body.(map[string]any)["status"] = "lost"
			c.query.Del("status") // which would replace the body's
		}}}},
	)
	seen := 0
	for _, tg := range targets {
		if len(tg.mutations) == 0 {
			t.Errorf("%s %s: no constraint to break", tg.method, tg.path)
		}
		op := l.raw.Paths[tg.path][strings.ToLower(tg.method)]
		for _, m := range tg.mutations {
			t.Run(tg.method+" "+tg.path+" "+m.name, func(t *testing.T) {
				c := l.build(t, tg.method, tg.path, op)
				m.apply(c)
				in, err := l.validateRequest(t, c.request(t, l.base), op.OperationID)
				if err == nil && m.name != "id not a uuid" { // formats are annotations to kin-openapi's 2020-12 validator
					t.Errorf("the document accepts the request")
				}
				resp, body := l.send(t, c, in)
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" {
					t.Fatalf("status %d %s, want 400 problem+json\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
				}
				var p struct {
					Code    string        `json:"code"`
					Details []errs.Detail `json:"details"`
				}
				if err := json.Unmarshal(body, &p); err != nil || p.Code != "invalid_argument" {
					t.Fatalf("problem %s", body)
				}
				if !slices.ContainsFunc(p.Details, func(d errs.Detail) bool {
					return d.Field == m.field || strings.HasPrefix(d.Field, m.field+".")
				}) {
					t.Errorf("details %+v do not name %s", p.Details, m.field)
				}
			})
			seen++
		}
	}
	if seen < 12 {
		t.Errorf("only %d invalid requests tried", seen)
	}
}

// TestErrorReplies: every error the service can answer with — each code a
// handler returns, an oversized body, an unsupported content type, a bad
// deadline header — validates against the documented response for its
// status, and has no member the Problem schema does not list.
func TestErrorReplies(t *testing.T) {
	l := startLive(t, shop(), fhttp.WithMaxBodyBytes(1<<10))
	op := l.raw.Paths["/shop/Fail"]["post"]
	problem := l.raw.Components.Schemas["Problem"]
	members := map[string]bool{}
	for _, p := range problem.Properties {
		members[p.Name] = true
	}
	check := func(t *testing.T, c *call, req *http.Request, wantStatus int) {
		t.Helper()
		in, _ := l.validateRequest(t, req, "Fail")
		resp, body := l.send(t, c, in)
		if resp.StatusCode != wantStatus || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status %d %s, want %d problem+json\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), wantStatus, body)
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		for k := range got {
			if !members[k] {
				t.Errorf("member %q is not in the Problem schema", k)
			}
		}
	}
	for _, code := range errs.Codes() {
		t.Run(code.String(), func(t *testing.T) {
			c := l.build(t, "POST", "/shop/Fail", op)
			c.body = map[string]any{"code": code.String()}
			check(t, c, c.request(t, l.base), errs.HTTPStatus(code))
		})
	}
	t.Run("too large", func(t *testing.T) {
		c := l.build(t, "POST", "/shop/Fail", op)
		c.body = map[string]any{"code": strings.Repeat("x", 2<<10)}
		check(t, c, c.request(t, l.base), http.StatusRequestEntityTooLarge)
	})
	t.Run("content type", func(t *testing.T) {
		c := l.build(t, "POST", "/shop/Fail", op)
		req := c.request(t, l.base)
		req.Header.Set("Content-Type", "text/plain")
		c.header.Set("Content-Type", "text/plain")
		c.hasBody = false // sent without the JSON content type
		c.body = nil
		check(t, c, req, http.StatusUnsupportedMediaType)
	})
	t.Run("timeout header", func(t *testing.T) {
		c := l.build(t, "POST", "/shop/Fail", op)
		c.header.Set(openapi.TimeoutHeader, "soon")
		check(t, c, c.request(t, l.base), http.StatusBadRequest)
	})
}

// TestValidationBites: the checks above can fail. A reply that breaks the
// documented schema, a problem whose code does not go with its status
// and a problem without its required members are refused.
func TestValidationBites(t *testing.T) {
	l := startLive(t, shop())
	op := l.raw.Paths["/shop/Fail"]["post"]
	c := l.build(t, "POST", "/shop/Fail", op)
	in, err := l.validateRequest(t, c.request(t, l.base), "Fail")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		status int
		ct     string
		body   string
	}{
		{200, "application/json", `{"ok":"yes"}`},
		{200, "application/json", `{"ok":true,"extra":1}`},
		{400, "application/problem+json", `{"type":"about:blank","title":"Bad Request","status":400,"code":"not_found"}`},
		{400, "application/problem+json", `{"type":"about:blank","title":"Bad Request","status":404,"code":"invalid_argument"}`},
		{404, "application/problem+json", `{"type":"about:blank","title":"Not Found","status":404}`},
		{404, "application/problem+json", `{"type":"about:blank","title":"Not Found","status":404,"code":"not_found","details":[{"field":"x"}]}`},
		{418, "text/plain", `teapot`},
	} {
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: tc.status, Header: http.Header{"Content-Type": {tc.ct}},
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		}
		out.SetBodyBytes([]byte(tc.body))
		if err := openapi3filter.ValidateResponse(context.Background(), out); err == nil {
			t.Errorf("%d %s is accepted", tc.status, tc.body)
		}
	}
}

type File struct {
	Path   string `json:"path"`
	UserID int64  `json:"userId"`
	Kind   string `json:"kind,omitempty"`
}

// TestPathPatterns: net/http's pattern forms become OpenAPI templates —
// {name...} one parameter, {$} dropped, a wildcard spelled in another
// case or in snake_case still the field's — and requests built from them
// reach the service.
func TestPathPatterns(t *testing.T) {
	s := server.New("files", server.WithLogger(quiet))
	server.Handle(s, "Read", func(_ context.Context, f *File) (*File, error) { return f, nil },
		server.WithRoute("GET /files/{path...}"), server.WithRoute("GET /users/{user_id}/files/{PATH}"),
		server.WithRoute("GET /root/{$}"))
	l := startLive(t, s)
	for path, params := range map[string][]string{
		"/files/{path}":                 {"path"},
		"/users/{user_id}/files/{PATH}": {"user_id", "PATH"},
		"/root/":                        nil,
	} {
		op := l.doc.Paths.Find(path)
		if op == nil || op.Get == nil {
			t.Errorf("no GET %s", path)
			continue
		}
		for _, name := range params {
			if p := op.Get.Parameters.GetByInAndName("path", name); p == nil || !p.Required {
				t.Errorf("%s: path parameter %s = %+v", path, name, p)
			}
		}
		if p := op.Get.Parameters.GetByInAndName("query", "userId"); (p == nil) != (path == "/users/{user_id}/files/{PATH}") {
			t.Errorf("%s: query parameter userId = %+v", path, p)
		}
	}
	if p := l.doc.Paths.Find("/users/{user_id}/files/{PATH}").Get.Parameters.GetByInAndName("path", "user_id"); !p.Schema.Value.Type.Is("integer") {
		t.Errorf("user_id has the schema %+v, not userId's", p.Schema.Value)
	}
	for _, path := range []string{"/files/{path}", "/users/{user_id}/files/{PATH}", "/root/"} {
		op := l.raw.Paths[path]["get"]
		c := l.build(t, "GET", path, op)
		in, err := l.validateRequest(t, c.request(t, l.base), op.OperationID)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
		}
		if resp, body := l.send(t, c, in); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d\n%s", path, resp.StatusCode, body)
		}
	}
}
