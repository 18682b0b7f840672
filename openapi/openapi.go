package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/schema"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Version is the OpenAPI version of every document this package writes.
const Version = "3.1.0"

// Path is where a service serves its document: GET /openapi.json, beside
// the endpoints' own /{service}/{Endpoint} paths (see Handler).
const Path = "/openapi.json"

// The media types and extensions the document uses for streams.
const (
	// EventStream and NDJSON are the media types of a server stream's
	// reply, chosen by the request's Accept header.
	EventStream = "text/event-stream"
	NDJSON      = "application/x-ndjson"

	// ItemSchemaKey, on a media type of a streamed body, holds the schema
	// of each message in it (OpenAPI 3.2 calls it itemSchema).
	ItemSchemaKey = "x-ferry-item-schema"
	// StreamKey, on an operation that streams its reply over HTTP, holds
	// the endpoint's stream kind ("server_streaming").
	StreamKey = "x-ferry-stream"
	// WebSocketKey, on the GET operation of a client or bidirectional
	// stream, describes the WebSocket: {"kind", "request", "response"}.
	WebSocketKey = "x-ferry-websocket"
)

// refPrefix is where the schemas of the document live.
const refPrefix = "#/components/schemas/"

// Option configures Document and Handler.
type Option func(*config)

type config struct {
	servers []serverObject
}

// WithServer adds a server (a base URL, such as "https://api.example.com"
// or "/" for the host the document was fetched from, and a description,
// which may be empty) to the document's "servers". Without one the
// document has none, which OpenAPI reads as "/": the host serving it.
func WithServer(url, description string) Option {
	return func(c *config) {
		if url != "" {
			c.servers = append(c.servers, serverObject{URL: url, Description: description})
		}
	}
}

// Document returns the OpenAPI 3.1 document (JSON) of the HTTP surface of
// srv, as Ferry's HTTP transport serves it: see the package documentation
// for what it holds. It fails when srv has registration errors, when a
// request or reply type has no JSON form, or when two operations would
// share a method and path.
func Document(srv *server.Server, opts ...Option) ([]byte, error) {
	if srv == nil {
		return nil, errors.New("openapi: nil server")
	}
	if err := srv.Err(); err != nil {
		return nil, fmt.Errorf("openapi: %s: %w", srv.Name(), err)
	}
	var cfg config
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	b := &builder{
		service: srv.Name(),
		gen:     schema.NewGenerator(schema.WithRefPrefix(refPrefix)),
		paths:   map[string]*pathItem{},
		ids:     map[string]bool{},
	}
	eps := srv.Endpoints()
	for _, ep := range eps {
		b.ids[ep.Name] = true // the default operations' ids, reserved first
	}
	var errList []error
	for _, ep := range eps {
		if err := b.endpoint(ep); err != nil {
			errList = append(errList, fmt.Errorf("openapi: endpoint %s: %w", ep.Name, err))
		}
	}
	if len(errList) > 0 {
		return nil, errors.Join(errList...)
	}

	schemas := b.gen.Defs()
	problem := freeName(schemas, "Problem")
	schemas[problem] = problemSchema()
	responses := map[string]any{}
	for _, es := range errorStatuses() {
		responses[es.name] = es.response(problem)
	}
	responses[defaultError] = &response{
		Description: "Any other error, as an RFC 9457 problem.",
		Content:     map[string]*mediaType{problemType: {Schema: refTo(problem)}},
	}

	doc := &document{
		OpenAPI: Version,
		Info:    info{Title: srv.Name(), Version: srv.Version(), Description: srv.Description()},
		Servers: cfg.servers,
		Tags:    []tag{{Name: srv.Name(), Description: srv.Description()}},
		Paths:   b.paths,
		Components: components{
			Schemas:    schemas,
			Responses:  responses,
			Parameters: map[string]*parameter{timeoutParam: timeoutParameter()},
		},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // patterns hold < > and &
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("openapi: encode the document of %s: %w", srv.Name(), err)
	}
	return buf.Bytes(), nil
}

// freeName returns want, or the first of "ferry.<want>", "ferry.<want>_2"…
// that no schema of the service's own types holds.
func freeName(schemas map[string]*schema.Schema, want string) string {
	if _, taken := schemas[want]; !taken {
		return want
	}
	name := "ferry." + want
	for i := 2; ; i++ {
		if _, taken := schemas[name]; !taken {
			return name
		}
		name = fmt.Sprintf("ferry.%s_%d", want, i)
	}
}

// builder collects the paths of one document; the generator keeps one
// definition per named type, shared by every endpoint.
type builder struct {
	service string
	gen     *schema.Generator
	paths   map[string]*pathItem
	ids     map[string]bool // operationIds in use
}

// field is one request field a path or query can set.
type field struct {
	name     string
	schema   *schema.Schema
	required bool // the request schema lists it in "required"
}

func (b *builder) endpoint(ep *server.Endpoint) error {
	req, err := b.gen.Ref(ep.RequestType)
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	resp, err := b.gen.Ref(ep.ResponseType)
	if err != nil {
		return fmt.Errorf("response: %w", err)
	}
	obj := resolve(b.gen.Defs(), req)
	e := &epDoc{
		ep: ep, req: req, resp: resp, def: obj,
		fields: paramFields(ep, obj),
		proto:  protostruct.Check(ep.RequestType) == nil && protostruct.Check(ep.ResponseType) == nil,
	}
	path := "/" + b.service + "/" + ep.Name

	switch ep.Kind {
	case transport.ClientStreaming, transport.BidiStreaming:
		// One WebSocket per call, opened with a GET; the messages flow on it.
		return b.add(http.MethodGet, path, b.websocket(e))
	}

	if err := b.add(http.MethodPost, path, b.defaultPost(e)); err != nil {
		return err
	}
	routes := ep.Routes
	if (ep.Idempotent || ep.Kind == transport.ServerStreaming) &&
		!slices.ContainsFunc(routes, func(r server.Route) bool { return r.Method() == http.MethodGet && r.Path() == path }) {
		// As the HTTP transport does: GET on the default path, the request
		// from the query (first here, so that it gets the plainer id).
		routes = append([]server.Route{{Pattern: http.MethodGet + " " + path}}, routes...)
	}
	for _, r := range routes {
		op, at := b.route(e, r, r.Path() == path && r.Method() == http.MethodGet)
		if err := b.add(r.Method(), at, op); err != nil {
			return err
		}
	}
	return nil
}

// epDoc is what every operation of one endpoint is built from.
type epDoc struct {
	ep        *server.Endpoint
	req, resp *schema.Schema // the request and reply schemas ($refs for named types)
	def       *schema.Schema // the request's object definition, nil when it is not an object
	fields    []field        // the request fields a path or query can set
	proto     bool           // the endpoint also speaks application/protobuf
}

// add puts op at method and path, refusing a second operation there.
func (b *builder) add(method, path string, op *operation) error {
	pi := b.paths[path]
	if pi == nil {
		pi = &pathItem{}
		b.paths[path] = pi
	}
	slot := pi.slot(method)
	if slot == nil {
		return fmt.Errorf("route %s %s: method not supported", method, path)
	}
	if *slot != nil {
		return fmt.Errorf("route %s %s: operation %s is there already", method, path, (*slot).OperationID)
	}
	*slot = op
	return nil
}

// id returns an unused operationId: want, or want with a number.
func (b *builder) id(want string) string {
	name := want
	for i := 2; b.ids[name]; i++ {
		name = fmt.Sprintf("%s%d", want, i)
	}
	b.ids[name] = true
	return name
}

func (b *builder) newOp(id, summary, description string) *operation {
	return &operation{
		Tags:        []string{b.service},
		Summary:     summary,
		Description: description,
		OperationID: id,
		Parameters:  []any{refParam(timeoutParam)},
	}
}

// defaultPost is POST /{service}/{Endpoint}: the request as the body.
func (b *builder) defaultPost(e *epDoc) *operation {
	name := e.ep.Name
	var op *operation
	if e.ep.Kind == transport.ServerStreaming {
		op = b.newOp(name, name+" (server stream)",
			"Calls "+name+" with the request as the body; the replies stream back as they are sent, "+
				"as Server-Sent Events or newline-delimited JSON by the Accept header.")
	} else {
		op = b.newOp(name, name,
			"Calls "+name+" with the request as the body, JSON or protobuf; the reply comes in the request's encoding.")
	}
	op.RequestBody = e.body(e.req, e.required())
	b.replies(e, op, true)
	return op
}

// route is a REST route, or the GET on the default path (defaultGet) of
// an idempotent endpoint or a server stream.
func (b *builder) route(e *epDoc, r server.Route, defaultGet bool) (*operation, string) {
	method := r.Method()
	path, wild := openapiPath(r.Path())
	body := method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
	name := e.ep.Name
	var op *operation
	if defaultGet {
		op = b.newOp(b.id(name+"_get"), name+" (GET)",
			"Calls "+name+" with the request's fields as query parameters; repeat a parameter for each element of a list.")
	} else {
		op = b.newOp(b.id(name+"_"+strings.ToLower(method)), name+" ("+r.Pattern+")",
			"Calls "+name+" on the REST route "+r.Pattern+
				bodyNote(body)+"path parameters and query parameters set the request's fields by their JSON names.")
	}
	inPath := map[string]bool{}
	for _, w := range wild {
		f := e.lookup(w.name)
		p := &parameter{Name: w.name, In: "path", Required: true, Schema: &schema.Schema{Type: []string{"string"}}}
		if f != nil {
			inPath[f.name] = true
			p.Schema = f.schema
		}
		if len(p.Schema.Type) == 1 && p.Schema.Type[0] == "string" && (p.Schema.MinLength == nil || *p.Schema.MinLength < 1) {
			// A wildcard matches a segment that is not empty.
			c := *p.Schema
			c.MinLength = new(1)
			p.Schema = &c
		}
		if w.rest {
			p.Description = "The rest of the path, slashes included."
		}
		op.Parameters = append(op.Parameters, p)
	}
	for _, f := range e.fields {
		if inPath[f.name] {
			continue
		}
		p := &parameter{Name: f.name, In: "query", Schema: f.schema, Required: f.required && !body}
		if f.schema.Type != nil && f.schema.Type[0] == "array" {
			p.Explode, p.Style = new(true), "form" // name=a&name=b
		}
		op.Parameters = append(op.Parameters, p)
	}
	if body {
		req, required := e.req, e.required()
		if e.def != nil && slices.ContainsFunc(e.def.Required, func(n string) bool { return inPath[n] }) {
			// The path gives these fields: the body may leave them out.
			c := *e.def
			c.Required = slices.DeleteFunc(slices.Clone(c.Required), func(n string) bool { return inPath[n] })
			if len(c.Required) == 0 {
				c.Required = nil
			}
			req, required = &c, len(c.Required) > 0
		}
		op.RequestBody = e.body(req, required)
	}
	b.replies(e, op, body)
	return op, path
}

func bodyNote(body bool) string {
	if body {
		return ": the body is decoded first, then "
	}
	return ": "
}

// required reports whether the request has required fields (so an empty
// body, the zero request, fails validation).
func (e *epDoc) required() bool { return e.def != nil && len(e.def.Required) > 0 }

// body is a request body of schema s: JSON, and protobuf when the types
// allow it. It is required when s has required fields: an empty body is
// the zero request, which fails validation then.
func (e *epDoc) body(s *schema.Schema, required bool) *requestBody {
	rb := &requestBody{
		Description: "The request. An empty body is the zero request.",
		Required:    required,
		Content:     map[string]*mediaType{codec.JSON.ContentType(): {Schema: s}},
	}
	if e.proto && e.ep.Kind == transport.Unary {
		rb.Content[codec.Proto.ContentType()] = &mediaType{}
	}
	return rb
}

// replies adds the success and error responses; withBody says whether the
// operation reads a body (413 and 415 apply, and a protobuf request gets a
// protobuf reply).
func (b *builder) replies(e *epDoc, op *operation, withBody bool) {
	op.Responses = map[string]any{}
	switch e.ep.Kind {
	case transport.ServerStreaming:
		item := map[string]any{ItemSchemaKey: e.resp}
		op.Responses["200"] = &response{
			Description: "The replies, one message at a time, as " + EventStream + " (a data field per event) or " +
				NDJSON + " (a line per message); each message is the JSON of " + ItemSchemaKey + ".",
			Content: map[string]*mediaType{
				EventStream: {Schema: &schema.Schema{Type: []string{"string"}}, Extensions: item},
				NDJSON:      {Schema: &schema.Schema{Type: []string{"string"}}, Extensions: item},
			},
		}
		op.Extensions = map[string]any{StreamKey: e.ep.Kind.String()}
	default:
		content := map[string]*mediaType{codec.JSON.ContentType(): {Schema: e.resp}}
		if withBody && e.proto {
			content[codec.Proto.ContentType()] = &mediaType{}
		}
		op.Responses["200"] = &response{Description: "The reply.", Content: content}
	}
	b.errorReplies(op, withBody)
}

func (b *builder) errorReplies(op *operation, withBody bool) {
	for _, es := range errorStatuses() {
		if es.bodyOnly && !withBody {
			continue
		}
		op.Responses[es.key()] = refResponse(es.name)
	}
	op.Responses["default"] = refResponse(defaultError)
}

// websocket is the GET that opens a client or bidirectional stream.
func (b *builder) websocket(e *epDoc) *operation {
	name := e.ep.Name
	sends := "a stream of messages"
	if e.ep.Kind == transport.ClientStreaming {
		sends = "one reply when the caller has closed its side"
	}
	op := b.newOp(name, name+" (WebSocket, "+e.ep.Kind.String()+")",
		"Opens a WebSocket for "+name+": the caller sends request messages and the server "+sends+
			", each message one JSON value (the schemas in "+WebSocketKey+"). OpenAPI 3.1 describes the upgrade only.")
	op.Responses = map[string]any{"101": &response{
		Description: "Switching Protocols: the connection is now a WebSocket carrying the messages of " + name + ".",
	}}
	op.Extensions = map[string]any{WebSocketKey: map[string]any{
		"kind": e.ep.Kind.String(), "request": e.req, "response": e.resp,
	}}
	b.errorReplies(op, false)
	return op
}

// lookup finds the request field a path wildcard names: by JSON name, then
// ignoring case, then ignoring underscores too — the HTTP transport also
// takes a field's snake_case spelling ("user_id" for "userId").
func (e *epDoc) lookup(name string) *field {
	for _, same := range []func(a, b string) bool{
		func(a, b string) bool { return a == b },
		strings.EqualFold,
		func(a, b string) bool {
			return strings.EqualFold(strings.ReplaceAll(a, "_", ""), strings.ReplaceAll(b, "_", ""))
		},
	} {
		for i := range e.fields {
			if same(e.fields[i].name, name) {
				return &e.fields[i]
			}
		}
	}
	return nil
}

// resolve follows $refs to the definition of an object schema; nil when
// s is not an object.
func resolve(defs map[string]*schema.Schema, s *schema.Schema) *schema.Schema {
	for i := 0; s != nil && s.Ref != "" && i < 16; i++ {
		s = defs[strings.TrimPrefix(s.Ref, refPrefix)]
	}
	if s == nil || s.Ref != "" || s.Properties == nil {
		return nil
	}
	return s
}

// paramFields lists the request fields a path or query can set, in the
// order of the request's properties: for a plain struct those
// Endpoint.ParamKinds names, for a protobuf message its scalar and
// repeated scalar fields by JSON name (what the HTTP transport binds).
// Each gets its property's schema, null left out (a parameter is a
// value), or one from its kind.
func paramFields(ep *server.Endpoint, def *schema.Schema) []field {
	kinds := ep.ParamKinds()
	names := map[string]string{} // wire name → kind
	if t := ep.RequestType; t != nil && reflect.PointerTo(t).Implements(reflect.TypeFor[proto.Message]()) {
		md := reflect.New(t).Interface().(proto.Message).ProtoReflect().Descriptor()
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			if fd.IsMap() || fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
				continue
			}
			k := kinds[string(fd.Name())]
			if k == "" {
				k = "string"
			}
			names[fd.JSONName()] = k
		}
	} else {
		names = kinds
	}
	var out []field
	add := func(name string, prop *schema.Schema) {
		f := field{name: name, schema: fromKind(names[name])}
		if prop != nil {
			f.schema = notNull(prop)
		}
		if def != nil {
			f.required = slices.Contains(def.Required, name)
		}
		out = append(out, f)
		delete(names, name)
	}
	if def != nil {
		for _, p := range def.Properties {
			if _, ok := names[p.Name]; ok {
				add(p.Name, p.Schema)
			}
		}
	}
	for _, name := range sortedKeys(names) {
		add(name, nil)
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// fromKind is the schema of a ParamKinds kind.
func fromKind(kind string) *schema.Schema {
	if item, ok := strings.CutPrefix(kind, "array:"); ok {
		return &schema.Schema{Type: []string{"array"}, Items: fromKind(item)}
	}
	switch kind {
	case "integer", "number", "boolean":
		return &schema.Schema{Type: []string{kind}}
	}
	return &schema.Schema{Type: []string{"string"}}
}

// notNull returns s without null among its values: a parameter that is
// given has a value. s is not changed.
func notNull(s *schema.Schema) *schema.Schema {
	c := *s
	if i := slices.Index(c.Type, "null"); i >= 0 && len(c.Type) > 1 {
		c.Type = slices.Delete(slices.Clone(c.Type), i, i+1)
		if c.Enum != nil {
			c.Enum = slices.DeleteFunc(slices.Clone(c.Enum), func(v any) bool { return v == nil })
		}
		return &c
	}
	if len(c.AnyOf) == 2 && len(c.Type) == 0 && c.Ref == "" {
		for i, alt := range c.AnyOf {
			if len(alt.Type) == 1 && alt.Type[0] == "null" && alt.Ref == "" && alt.AnyOf == nil {
				// {"anyOf": [X, null]}, the nullable wrapper: X, with the
				// wrapper's other keywords beside it.
				x := notNull(c.AnyOf[1-i])
				c.AnyOf = nil
				c.AllOf = append([]*schema.Schema{x}, c.AllOf...)
				return &c
			}
		}
	}
	return &c
}

// wildcard is one {name} or {name...} of a path pattern.
type wildcard struct {
	name string
	rest bool // {name...}: the rest of the path
}

// openapiPath turns a net/http path pattern into an OpenAPI path template:
// {name...} becomes {name} and a final {$} is dropped.
func openapiPath(p string) (string, []wildcard) {
	segs := strings.Split(p, "/")
	var wild []wildcard
	out := segs[:0:0]
	for i, seg := range segs {
		if len(seg) >= 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
			name := seg[1 : len(seg)-1]
			if name == "$" && i == len(segs)-1 {
				out = append(out, "")
				continue
			}
			w := wildcard{name: strings.TrimSuffix(name, "...")}
			w.rest = w.name != name
			wild = append(wild, w)
			seg = "{" + w.name + "}"
		}
		out = append(out, seg)
	}
	return strings.Join(out, "/"), wild
}
