package openapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/openapi"
	"github.com/ferry-go/ferry/server"
	"github.com/getkin/kin-openapi/openapi3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// document returns the document of s, checked by kin-openapi: it loads,
// validates as OpenAPI 3.1, and every $ref in it, extensions included,
// points into it.
func document(t testing.TB, s *server.Server, opts ...openapi.Option) ([]byte, *openapi3.T) {
	t.Helper()
	b, err := openapi.Document(s, opts...)
	if err != nil {
		t.Fatalf("Document() = %v", err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(b)
	if err != nil {
		t.Fatalf("LoadFromData: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		t.Fatal(err)
	}
	checkRefs(t, tree, tree, "#")
	return b, doc
}

// checkRefs fails on a "$ref" that is not a JSON pointer into root or
// does not resolve.
func checkRefs(t testing.TB, root, node any, at string) {
	t.Helper()
	switch n := node.(type) {
	case map[string]any:
		if ref, ok := n["$ref"].(string); ok {
			if _, ok := pointer(root, ref); !ok {
				t.Errorf("%s: $ref %q does not resolve", at, ref)
			}
		}
		for k, v := range n {
			checkRefs(t, root, v, at+"/"+k)
		}
	case []any:
		for _, v := range n {
			checkRefs(t, root, v, at+"/[]")
		}
	}
}

func pointer(root any, ref string) (any, bool) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	cur := root
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// TestShopValidates: the document of a service using every feature is
// valid OpenAPI 3.1 and has an operation for each way to call it.
func TestShopValidates(t *testing.T) {
	raw, doc := document(t, shop(), openapi.WithServer("https://shop.example.com", "production"))

	if doc.OpenAPI != "3.1.0" || doc.Info.Title != "shop" || doc.Info.Version != "1.4.2" ||
		doc.Info.Description != "Orders and their lines." {
		t.Errorf("openapi %q, info %+v", doc.OpenAPI, doc.Info)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "https://shop.example.com" {
		t.Errorf("servers = %+v", doc.Servers)
	}
	want := map[string]string{ // method path → operationId
		"POST /shop/Place": "Place", "POST /v1/orders": "Place_post",
		"POST /shop/Get": "Get", "GET /shop/Get": "Get_get", "GET /v1/orders/{id}": "Get_get2",
		"POST /shop/Update": "Update", "PUT /v1/orders/{id}": "Update_put", "PATCH /v1/orders/{id}/status": "Update_patch",
		"POST /shop/Cancel": "Cancel", "DELETE /v1/orders/{id}": "Cancel_delete",
		"POST /shop/Fail": "Fail",
		"POST /shop/Echo": "Echo", "GET /shop/Echo": "Echo_get", "GET /v1/echo/{value}": "Echo_get2",
		"POST /shop/Span": "Span", "GET /v1/spans/{name}": "Span_get", "POST /v1/spans/{name}": "Span_post",
		"POST /shop/Ticks": "Ticks", "GET /shop/Ticks": "Ticks_get",
		"GET /shop/Upload": "Upload", "GET /shop/Chat": "Chat",
	}
	got := map[string]string{}
	for path, pi := range doc.Paths.Map() {
		for method, op := range pi.Operations() {
			got[method+" "+path] = op.OperationID
			if !slices.Equal(op.Tags, []string{"shop"}) {
				t.Errorf("%s %s: tags %v", method, path, op.Tags)
			}
			if p := op.Parameters.GetByInAndName("header", openapi.TimeoutHeader); p == nil {
				t.Errorf("%s %s: no %s parameter", method, path, openapi.TimeoutHeader)
			}
			for _, st := range []string{"400", "404", "429", "500", "503", "default"} {
				r := op.Responses.Value(st)
				if r == nil || r.Value.Content.Get("application/problem+json") == nil {
					t.Errorf("%s %s: no problem+json response %s", method, path, st)
				}
			}
			body := op.RequestBody != nil
			for _, st := range []string{"413", "415"} {
				if (op.Responses.Value(st) != nil) != body {
					t.Errorf("%s %s: response %s present = %v, want %v (reads a body)", method, path, st, !body, body)
				}
			}
		}
	}
	for k, id := range want {
		if got[k] != id {
			t.Errorf("%s: operationId %q, want %q", k, got[k], id)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected operation %s", k)
		}
	}

	// Path and query parameters: the wildcard is a required path
	// parameter with the field's schema and constraints; the other
	// fields a query can set are query parameters, required on a GET
	// when the validator requires them.
	get := doc.Paths.Find("/v1/orders/{id}").Get
	id := get.Parameters.GetByInAndName("path", "id")
	if id == nil || !id.Required || id.Schema.Value.Format != "uuid" {
		t.Errorf("GET /v1/orders/{id}: path parameter id = %+v", id)
	}
	for name, typ := range map[string]string{"fields": "array", "verbose": "boolean", "limit": "integer", "since": "string", "page": "integer"} {
		p := get.Parameters.GetByInAndName("query", name)
		if p == nil || !p.Schema.Value.Type.Is(typ) {
			t.Errorf("GET /v1/orders/{id}: query parameter %s = %+v, want type %s", name, p, typ)
			continue
		}
		if p.Required {
			t.Errorf("query parameter %s is required", name)
		}
	}
	if p := get.Parameters.GetByInAndName("query", "id"); p != nil {
		t.Error("the path parameter id is a query parameter too")
	}
	if p := doc.Paths.Find("/shop/Get").Get.Parameters.GetByInAndName("query", "id"); p == nil || !p.Required {
		t.Errorf("GET /shop/Get: query parameter id = %+v, want required", p)
	}
	if e := get.Parameters.GetByInAndName("query", "fields").Schema.Value.Items.Value; !slices.Equal(e.Enum, []any{"items", "total"}) {
		t.Errorf("fields items enum = %v", e.Enum)
	}
	// Protobuf: parameters by JSON name, enums by value name.
	span := doc.Paths.Find("/v1/spans/{name}").Get
	if p := span.Parameters.GetByInAndName("query", "kind"); p == nil || len(p.Schema.Value.Enum) == 0 {
		t.Errorf("span kind parameter = %+v", p)
	}
	if p := span.Parameters.GetByInAndName("query", "startTimeUnixNano"); p == nil {
		t.Error("no startTimeUnixNano parameter")
	}
	if p := doc.Paths.Find("/shop/Echo").Get.Parameters.GetByInAndName("query", "value"); p == nil || !p.Schema.Value.Type.Is("string") {
		t.Errorf("Echo value parameter = %+v", p)
	}

	// A body beside a path parameter need not repeat the field the path
	// gives; the default route's body must hold it.
	put := doc.Paths.Find("/v1/orders/{id}").Put.RequestBody.Value.Content.Get("application/json").Schema.Value
	if !slices.Equal(put.Required, []string{"status"}) || put.Properties["id"] == nil {
		t.Errorf("PUT body: required %v, properties %v", put.Required, keys(put.Properties))
	}
	upd := doc.Paths.Find("/shop/Update").Post.RequestBody.Value
	if s := upd.Content.Get("application/json").Schema; s.Ref != "#/components/schemas/UpdateOrder" || !upd.Required {
		t.Errorf("POST /shop/Update body: %s, required %v", s.Ref, upd.Required)
	}
	// Protobuf bodies where the HTTP transport takes them: types that map
	// to messages (Order embeds a struct without a json name: it does not).
	for path, want := range map[string]bool{"/shop/Update": false, "/shop/Fail": true, "/shop/Echo": true, "/v1/spans/{name}": true} {
		op := doc.Paths.Find(path).Post
		if got := op.RequestBody.Value.Content.Get("application/protobuf") != nil; got != want {
			t.Errorf("POST %s: application/protobuf body %v, want %v", path, got, want)
		}
		if got := op.Responses.Value("200").Value.Content.Get("application/protobuf") != nil; got != want {
			t.Errorf("POST %s: application/protobuf reply %v, want %v", path, got, want)
		}
	}
	if doc.Paths.Find("/shop/Echo").Get.Responses.Value("200").Value.Content.Get("application/protobuf") != nil {
		t.Error("GET /shop/Echo: a GET is answered in JSON only")
	}

	// Validator constraints reach the components.
	po := doc.Components.Schemas["PlaceOrder"].Value
	if po.Properties["customer"].Value.Format != "email" || po.Properties["by"] == nil ||
		!slices.Contains(po.Required, "items") || po.Properties["customer"].Value.Extensions["x-validate"] != "required,email" {
		t.Errorf("PlaceOrder = %s", mustJSON(t, po))
	}

	// A server stream: two streamed media types naming the message schema.
	ok := doc.Paths.Find("/shop/Ticks").Post.Responses.Value("200").Value
	for _, ct := range []string{openapi.EventStream, openapi.NDJSON} {
		mt := ok.Content.Get(ct)
		if mt == nil {
			t.Errorf("Ticks: no %s reply", ct)
			continue
		}
		if item, _ := mt.Extensions[openapi.ItemSchemaKey].(map[string]any); item["$ref"] != "#/components/schemas/Tick" {
			t.Errorf("Ticks %s: %s = %v", ct, openapi.ItemSchemaKey, mt.Extensions[openapi.ItemSchemaKey])
		}
	}
	if k := doc.Paths.Find("/shop/Ticks").Post.Extensions[openapi.StreamKey]; k != "server_streaming" {
		t.Errorf("Ticks: %s = %v", openapi.StreamKey, k)
	}
	// Client and bidirectional streams: a GET upgraded to a WebSocket.
	for name, kind := range map[string]string{"Upload": "client_streaming", "Chat": "bidi_streaming"} {
		op := doc.Paths.Find("/shop/" + name).Get
		if op.Responses.Value("101") == nil {
			t.Errorf("%s: no 101 response", name)
		}
		ws, _ := op.Extensions[openapi.WebSocketKey].(map[string]any)
		req, _ := ws["request"].(map[string]any)
		resp, _ := ws["response"].(map[string]any)
		if ws["kind"] != kind || req["$ref"] != "#/components/schemas/Line" || resp["$ref"] == nil {
			t.Errorf("%s: %s = %v", name, openapi.WebSocketKey, ws)
		}
	}

	// The shared error parts.
	if doc.Components.Schemas["Problem"] == nil || doc.Components.Parameters["FerryTimeoutMs"] == nil {
		t.Error("no Problem schema or FerryTimeoutMs parameter")
	}
	if !json.Valid(raw) || strings.Contains(string(raw), `\u003c`) {
		t.Error("document is not plain JSON")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDeterministic: the same server gives the same bytes.
func TestDeterministic(t *testing.T) {
	a, err := openapi.Document(shop())
	if err != nil {
		t.Fatal(err)
	}
	b, err := openapi.Document(shop())
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Error("two documents of one server differ")
	}
}

// TestProblemNameClash: a service type called Problem keeps its name;
// Ferry's takes another, and both are referenced rightly.
func TestProblemNameClash(t *testing.T) {
	type Problem struct {
		Severity int `json:"severity"`
	}
	s := server.New("clash")
	server.Handle(s, "Report", func(context.Context, *Problem) (*Problem, error) { return &Problem{}, nil })
	_, doc := document(t, s)
	if p := doc.Components.Schemas["Problem"]; p == nil || p.Value.Properties["severity"] == nil {
		t.Errorf("Problem = %+v", p)
	}
	ferry := doc.Components.Schemas["ferry.Problem"]
	if ferry == nil || ferry.Value.Properties["code"] == nil {
		t.Fatalf("ferry.Problem = %+v", ferry)
	}
	bad := doc.Components.Responses["BadRequest"].Value.Content.Get("application/problem+json").Schema.Value
	if bad.AllOf[0].Ref != "#/components/schemas/ferry.Problem" {
		t.Errorf("BadRequest refers to %s", bad.AllOf[0].Ref)
	}
}

// TestErrors: what Document refuses.
func TestErrors(t *testing.T) {
	if _, err := openapi.Document(nil); err == nil {
		t.Error("Document(nil) = nil error")
	}
	bad := server.New("bad name")
	if _, err := openapi.Document(bad); err == nil {
		t.Error("a server with registration errors has a document")
	}
	type Chan struct {
		C chan int `json:"c"`
	}
	s := server.New("chans")
	server.Handle(s, "Send", func(context.Context, *Chan) (*Chan, error) { return nil, nil })
	if _, err := openapi.Document(s); err == nil || !strings.Contains(err.Error(), "Send") {
		t.Errorf("a type without a JSON form: %v", err)
	}
	// Two endpoints on one method and path: the HTTP transport refuses
	// to start, and there is no document.
	s = server.New("twice")
	type R struct{}
	server.Handle(s, "A", func(context.Context, *R) (*R, error) { return nil, nil }, server.WithRoute("GET /x"))
	server.Handle(s, "B", func(context.Context, *R) (*R, error) { return nil, nil }, server.WithRoute("GET /x"))
	if _, err := openapi.Document(s); err == nil {
		t.Error("two operations on GET /x: no error")
	}
	_ = http.MethodGet
}
