package dashboard

import (
	"bytes"
	"encoding/json"
	"github.com/ferry-go/ferry/schema"
	"slices"
	"strings"
)

// Field is one row of a schema's field table: a property of the request or
// response object, nested ones with dotted names ("address.city", "items[].id").
type Field struct {
	Name        string
	Type        string
	Required    bool
	Rules       string // x-validate, verbatim
	Description string
	Depth       int
}

// schemaView is one published schema, ready to render.
type schemaView struct {
	Fields []Field
	Raw    string // indented JSON
	Title  string
	Err    string // why the schema could not be read
}

// node is the part of a JSON Schema the dashboard reads.
type node struct {
	Type        json.RawMessage            `json:"type"`
	Ref         string                     `json:"$ref"`
	Title       string                     `json:"title"`
	Description string                     `json:"description"`
	Format      string                     `json:"format"`
	Enum        []json.RawMessage          `json:"enum"`
	Const       json.RawMessage            `json:"const"`
	Default     json.RawMessage            `json:"default"`
	Examples    []json.RawMessage          `json:"examples"`
	Properties  json.RawMessage            `json:"properties"` // kept raw for the order of the keys
	Required    []string                   `json:"required"`
	Items       *node                      `json:"items"`
	Additional  json.RawMessage            `json:"additionalProperties"`
	AnyOf       []*node                    `json:"anyOf"`
	OneOf       []*node                    `json:"oneOf"`
	Defs        map[string]json.RawMessage `json:"$defs"`
	Definitions map[string]json.RawMessage `json:"definitions"`
	Validate    string                     `json:"x-validate"`
	Minimum     *float64                   `json:"minimum"`
}

// maxDepth bounds how deep nested objects are listed (and refs followed).
const maxDepth = 6

// parseSchema reads a JSON Schema document for display. It never fails: a
// schema it cannot read has Err set and its raw text kept.
func parseSchema(raw json.RawMessage) *schemaView {
	v := &schemaView{Raw: indent(raw)}
	var root node
	if err := json.Unmarshal(raw, &root); err != nil {
		v.Err = "the schema is not a JSON Schema object: " + err.Error()
		return v
	}
	r := &resolver{root: &root}
	top := r.deref(&root, 0)
	v.Title = cmpOr(top.Title, refName(root.Ref))
	r.fields(top, "", 0, &v.Fields)
	return v
}

type resolver struct{ root *node }

// deref follows a local $ref ("#/$defs/Name", "#/definitions/Name").
func (r *resolver) deref(n *node, depth int) *node {
	for n != nil && n.Ref != "" && depth < maxDepth {
		name := refName(n.Ref)
		var raw json.RawMessage
		switch {
		case strings.HasPrefix(n.Ref, "#/$defs/"):
			raw = r.root.Defs[name]
		case strings.HasPrefix(n.Ref, "#/definitions/"):
			raw = r.root.Definitions[name]
		case n.Ref == "#":
			return r.root
		}
		var next node
		if raw == nil || json.Unmarshal(raw, &next) != nil {
			return n
		}
		if next.Title == "" {
			next.Title = name
		}
		if next.Validate == "" {
			next.Validate = n.Validate
		}
		if next.Description == "" {
			next.Description = n.Description
		}
		n = &next
		depth++
	}
	return n
}

// refName is the last segment of a $ref.
func refName(ref string) string {
	if i := strings.LastIndexByte(ref, '/'); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

// properties returns an object node's properties in the order written.
func properties(n *node) (keys []string, props map[string]*node) {
	if len(n.Properties) == 0 {
		return nil, nil
	}
	props = map[string]*node{}
	if json.Unmarshal(n.Properties, &props) != nil {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(n.Properties))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return slices.Sorted(mapKeys(props)), props
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			break
		}
	}
	return keys, props
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// fields lists n's properties into out, nested objects after their parent.
func (r *resolver) fields(n *node, prefix string, depth int, out *[]Field) {
	if n == nil || depth >= maxDepth {
		return
	}
	keys, props := properties(n)
	for _, k := range keys {
		p := r.deref(props[k], depth)
		if p == nil {
			continue
		}
		name := prefix + k
		*out = append(*out, Field{
			Name: name, Type: r.typeName(p, depth), Required: slices.Contains(n.Required, k),
			Rules: p.Validate, Description: p.Description, Depth: depth,
		})
		switch {
		case p.Properties != nil:
			r.fields(p, name+".", depth+1, out)
		case p.Items != nil:
			if it := r.deref(p.Items, depth); it != nil && it.Properties != nil {
				r.fields(it, name+"[].", depth+1, out)
			}
		}
	}
}

// typeName describes a schema's type for the field table: "string",
// "integer", "string (date-time)", "array of string", "object Address",
// "one of: "a", "b"", "string | null".
func (r *resolver) typeName(n *node, depth int) string {
	if len(n.Enum) > 0 {
		vals := make([]string, 0, len(n.Enum))
		for _, e := range n.Enum {
			vals = append(vals, string(e))
		}
		return "one of " + strings.Join(vals, ", ")
	}
	if len(n.Const) > 0 {
		return "const " + string(n.Const)
	}
	alts := n.AnyOf
	if len(alts) == 0 {
		alts = n.OneOf
	}
	if len(alts) > 0 && depth < maxDepth {
		names := make([]string, 0, len(alts))
		for _, a := range alts {
			names = append(names, r.typeName(r.deref(a, depth+1), depth+1))
		}
		return strings.Join(names, " | ")
	}
	types := typeList(n.Type)
	var parts []string
	for _, t := range types {
		s := t
		switch t {
		case "array":
			if n.Items != nil && depth < maxDepth {
				s = "array of " + r.typeName(r.deref(n.Items, depth+1), depth+1)
			}
		case "object":
			if n.Title != "" {
				s = "object " + n.Title
			} else if len(n.Additional) > 0 && string(n.Additional) != "false" && string(n.Additional) != "true" {
				var add node
				if json.Unmarshal(n.Additional, &add) == nil && depth < maxDepth {
					s = "map of " + r.typeName(r.deref(&add, depth+1), depth+1)
				}
			}
		}
		if n.Format != "" && t != "null" {
			s += " (" + n.Format + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		if n.Title != "" {
			return n.Title
		}
		if n.Properties != nil {
			return "object"
		}
		return "any"
	}
	return strings.Join(parts, " | ")
}

// typeList reads "type", a string or an array of strings.
func typeList(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	return many
}

// skeleton is a JSON request body for the schema, indented: schema.Example
// of it (values the validator rules accept where the schema says enough).
// It is "{}" for a schema it cannot read.
func skeleton(raw json.RawMessage) string {
	var doc schema.Schema
	if json.Unmarshal(raw, &doc) != nil {
		return "{}"
	}
	ex, err := schema.Example(&doc)
	if err != nil {
		return "{}"
	}
	var out bytes.Buffer
	if json.Indent(&out, ex, "", "  ") != nil {
		return "{}"
	}
	return out.String()
}

func indent(raw json.RawMessage) string {
	var out bytes.Buffer
	if json.Indent(&out, raw, "", "  ") != nil {
		return string(raw)
	}
	return out.String()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
