package openapi

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"

	"github.com/ferry-go/ferry/schema"
)

// The objects of an OpenAPI document this package writes, with their
// members in the specification's order. Maps marshal with sorted keys, so
// the same server always gives the same bytes.

type document struct {
	OpenAPI    string               `json:"openapi"`
	Info       info                 `json:"info"`
	Servers    []serverObject       `json:"servers,omitempty"`
	Tags       []tag                `json:"tags,omitempty"`
	Paths      map[string]*pathItem `json:"paths"`
	Components components           `json:"components"`
}

type info struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Version     string `json:"version"`
}

type serverObject struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
}

type tag struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

type components struct {
	Schemas    map[string]*schema.Schema `json:"schemas,omitempty"`
	Responses  map[string]any            `json:"responses,omitempty"`
	Parameters map[string]*parameter     `json:"parameters,omitempty"`
}

type pathItem struct {
	Get    *operation `json:"get,omitempty"`
	Put    *operation `json:"put,omitempty"`
	Post   *operation `json:"post,omitempty"`
	Delete *operation `json:"delete,omitempty"`
	Patch  *operation `json:"patch,omitempty"`
}

// slot returns the field of method, nil for a method Ferry routes do not
// take.
func (p *pathItem) slot(method string) **operation {
	switch method {
	case http.MethodGet:
		return &p.Get
	case http.MethodPut:
		return &p.Put
	case http.MethodPost:
		return &p.Post
	case http.MethodDelete:
		return &p.Delete
	case http.MethodPatch:
		return &p.Patch
	}
	return nil
}

type operation struct {
	Tags        []string       `json:"tags,omitempty"`
	Summary     string         `json:"summary,omitempty"`
	Description string         `json:"description,omitempty"`
	OperationID string         `json:"operationId"`
	Parameters  []any          `json:"parameters,omitempty"` // *parameter or ref
	RequestBody *requestBody   `json:"requestBody,omitempty"`
	Responses   map[string]any `json:"responses"` // *response or ref
	Extensions  map[string]any `json:"-"`
}

func (o *operation) MarshalJSON() ([]byte, error) {
	type plain operation
	return withExtensions((*plain)(o), o.Extensions)
}

type parameter struct {
	Name        string         `json:"name"`
	In          string         `json:"in"`
	Description string         `json:"description,omitempty"`
	Required    bool           `json:"required,omitempty"`
	Style       string         `json:"style,omitempty"`
	Explode     *bool          `json:"explode,omitempty"`
	Schema      *schema.Schema `json:"schema"`
}

type requestBody struct {
	Description string                `json:"description,omitempty"`
	Content     map[string]*mediaType `json:"content"`
	Required    bool                  `json:"required,omitempty"`
}

type response struct {
	Description string                `json:"description"`
	Content     map[string]*mediaType `json:"content,omitempty"`
}

type mediaType struct {
	Schema     *schema.Schema `json:"schema,omitempty"`
	Extensions map[string]any `json:"-"`
}

func (m *mediaType) MarshalJSON() ([]byte, error) {
	type plain mediaType
	return withExtensions((*plain)(m), m.Extensions)
}

// ref is a Reference Object.
type ref struct {
	Ref string `json:"$ref"`
}

func refResponse(name string) ref { return ref{"#/components/responses/" + name} }
func refParam(name string) ref    { return ref{"#/components/parameters/" + name} }
func refTo(name string) *schema.Schema {
	return &schema.Schema{Ref: refPrefix + name}
}

// withExtensions marshals v, a struct, with the "x-" members of ext after
// its own.
func withExtensions(v any, ext map[string]any) ([]byte, error) {
	b, err := marshal(v)
	if err != nil || len(ext) == 0 {
		return b, err
	}
	out := b[:len(b)-1] // without the closing brace
	for _, k := range slices.Sorted(maps.Keys(ext)) {
		kb, err := marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := marshal(ext[k])
		if err != nil {
			return nil, err
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(append(out, kb...), ':'), vb...)
	}
	return append(out, '}'), nil
}

// marshal is json.Marshal without HTML escaping, as the document is
// written: patterns hold < > and &.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
