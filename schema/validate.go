package schema

import (
	"encoding/json"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// rule is one validation of a validate tag: a name and its parameter.
type rule struct{ name, param string }

// tagLevel is the part of a validate tag that applies at one level: to the
// field, or after each "dive" to its elements.
type tagLevel struct {
	omit     string   // "omitempty", "omitnil" or "omitzero"; "" for none
	required bool     // "required"
	items    [][]rule // each item: its "|" alternatives
	keys     *tagLevel
	next     *tagLevel // after "dive"
}

// parseTag splits a validate tag as go-playground/validator does: "," between
// items, "|" between alternatives, "=" before a parameter, 0x2C and 0x7C
// for a comma and a pipe in a parameter, "dive" and "keys…endkeys". It
// accepts any string.
func parseTag(tag string) *tagLevel {
	top := &tagLevel{}
	if tag == "-" {
		return top
	}
	cur := top
	parts := strings.Split(tag, ",")
	for i := 0; i < len(parts); i++ {
		p := parts[i]
		switch p {
		case "":
		case "dive":
			cur.next = &tagLevel{}
			cur = cur.next
			if i+1 < len(parts) && parts[i+1] == "keys" {
				var keys []string
				for i += 2; i < len(parts) && parts[i] != "endkeys"; i++ {
					keys = append(keys, parts[i])
				}
				cur.keys = parseTag(strings.Join(keys, ","))
			}
		case "omitempty", "omitnil", "omitzero":
			if cur.omit == "" && len(cur.items) == 0 && !cur.required {
				cur.omit = p
			}
		case "required":
			cur.required = true
		default:
			var alts []rule
			for _, a := range strings.Split(p, "|") {
				name, param, _ := strings.Cut(a, "=")
				param = strings.ReplaceAll(strings.ReplaceAll(param, "0x2C", ","), "0x7C", "|")
				alts = append(alts, rule{name: name, param: param})
			}
			cur.items = append(cur.items, alts)
		}
	}
	return top
}

// constrain adds the rules of validate tag tag to s, the schema of a field
// of type t, and reports whether the field is required. The tag is kept as
// written under ValidateKey. Rules without a JSON Schema form add nothing;
// a schema is never made stricter than the validator.
func constrain(s *Schema, t reflect.Type, tag string, quoted bool) (*Schema, bool) {
	lv := parseTag(tag)
	out := s
	if !quoted {
		out = apply(s, t, lv)
	} else if lv.required && t.Kind() == reflect.Pointer {
		out = notNull(s)
	}
	if out == s {
		c := *s
		out = &c
	}
	if out.Extra == nil {
		out.Extra = map[string]any{}
	}
	out.Extra[ValidateKey] = tag
	return out, lv.required
}

// apply adds the rules of lv to s, the schema of type t.
func apply(s *Schema, t reflect.Type, lv *tagLevel) *Schema {
	nilable := t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map ||
		t.Kind() == reflect.Interface
	et := deref(t) // the validator checks what a pointer points to
	c := &Schema{}
	for _, alts := range lv.items {
		if r := alternatives(et, alts); r != nil {
			merge(c, r)
		}
	}
	if lv.required {
		merge(c, requiredRule(t, et))
	}
	// Rules after dive go to the elements and keys.
	if lv.next != nil {
		s = diveInto(s, et, lv.next)
	}
	if isEmpty(c) && !lv.required && (len(lv.items) == 0 || !nilable || lv.omit != "") {
		return s
	}
	switch {
	case t.Kind() == reflect.Pointer && lv.omit == "" && (lv.required || len(lv.items) > 0 && nilFails(lv.items[0])):
		// The validator refuses a nil pointer whose first rule is not
		// omitempty or one of those that run on nil (required_if…).
		s = notNull(s)
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Map) && lv.omit == "" &&
		(positive(c.MinItems) || positive(c.MinProperties) || lv.required):
		s = notNull(s) // null is an empty slice or map: too short
	case t.Kind() == reflect.Interface && lv.required:
		s = notNull(s)
	}
	if isEmpty(c) {
		return s
	}
	zero, skips := zeroSkipped(t, et, lv.omit)
	if skips && !accepts(c, zero) {
		alt := &Schema{Const: zero}
		if zero == nil {
			alt = &Schema{Type: []string{"null"}}
		}
		c = &Schema{AnyOf: []*Schema{alt, c}}
	}
	return combine(s, c)
}

// nilFails reports whether the validator surely refuses nil for a first
// tag item: a built-in rule that does not run on nil.
func nilFails(alts []rule) bool {
	for _, a := range alts {
		if _, ok := formats[a.name]; ok {
			continue
		}
		if _, ok := patterns[a.name]; ok {
			continue
		}
		switch a.name {
		case "min", "max", "len", "eq", "ne", "gt", "gte", "lt", "lte", "oneof", "unique", "ip", "ip_addr",
			"datetime", "contains", "startswith", "endswith", "json", "base64", "lowercase", "uppercase":
			continue
		}
		return false
	}
	return true
}

func positive(p *int) bool { return p != nil && *p > 0 }

// zeroSkipped returns the JSON form of the value that an omit rule exempts
// from the rules, if it has one.
func zeroSkipped(t, et reflect.Type, omit string) (any, bool) {
	if omit == "" {
		return nil, false
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return nil, true // null
	}
	if omit == "omitnil" {
		return nil, false
	}
	if special(et) && et.Kind() == reflect.Struct {
		return nil, false
	}
	switch k := et.Kind(); {
	case k == reflect.String:
		return "", true
	case k == reflect.Bool:
		return false, true
	case isInt(k), isUint(k), k == reflect.Float32, k == reflect.Float64:
		return json.Number("0"), true
	}
	return nil, false
}

// accepts reports whether c surely accepts zero; false when unsure.
func accepts(c *Schema, zero any) bool {
	if c.Const != nil || c.Enum != nil || c.Not != nil || c.AnyOf != nil || c.AllOf != nil || c.OneOf != nil {
		return false
	}
	switch z := zero.(type) {
	case nil:
		return true // the other keywords apply to strings, numbers, arrays and objects only
	case string:
		return !positive(c.MinLength) && c.Pattern == "" && c.Format == ""
	case json.Number:
		return (c.Minimum == "" || cmpNum(c.Minimum, z) <= 0) && (c.Maximum == "" || cmpNum(c.Maximum, z) >= 0) &&
			(c.ExclusiveMinimum == "" || cmpNum(c.ExclusiveMinimum, z) < 0) &&
			(c.ExclusiveMaximum == "" || cmpNum(c.ExclusiveMaximum, z) > 0)
	}
	return true
}

func cmpNum(a, b json.Number) int {
	x, _ := strconv.ParseFloat(string(a), 64)
	y, _ := strconv.ParseFloat(string(b), 64)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// combine adds the constraints c to s without changing s. Beside a $ref
// or a nullable wrapper they go in allOf, which keeps both readable.
func combine(s, c *Schema) *Schema {
	out := *s
	if out.Ref != "" || out.AnyOf != nil {
		out.AllOf = append(append([]*Schema{}, out.AllOf...), c)
		return &out
	}
	merge(&out, c)
	return &out
}

// requiredRule is what "required" asks of a value beyond its presence:
// not the zero value.
func requiredRule(t, et reflect.Type) *Schema {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return &Schema{} // not nil: handled by the caller
	}
	if special(et) {
		return &Schema{}
	}
	switch k := et.Kind(); {
	case k == reflect.String:
		return &Schema{MinLength: new(1)}
	case k == reflect.Bool:
		return &Schema{Const: true}
	case isInt(k), isUint(k), k == reflect.Float32, k == reflect.Float64:
		return &Schema{Not: &Schema{Const: json.Number("0")}}
	}
	return &Schema{}
}

// diveInto applies lv to the elements (and keys) of s, a slice, array or
// map schema.
func diveInto(s *Schema, t reflect.Type, lv *tagLevel) *Schema {
	out := *s
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if out.Items != nil {
			out.Items = apply(out.Items, t.Elem(), lv)
		}
	case reflect.Map:
		if out.AdditionalProperties != nil {
			out.AdditionalProperties = apply(out.AdditionalProperties, t.Elem(), lv)
		}
		if lv.keys != nil && t.Key().Kind() == reflect.String {
			names := out.PropertyNames
			if names == nil {
				names = &Schema{}
			}
			k := apply(&Schema{Type: []string{"string"}}, t.Key(), lv.keys)
			k.Type = nil
			if !isEmpty(k) {
				merge(names, k)
				out.PropertyNames = names
			}
		}
	}
	return &out
}

// alternatives is the schema of one tag item: one rule, or "|" between
// several, nil when any of them has no JSON Schema form.
func alternatives(t reflect.Type, alts []rule) *Schema {
	if len(alts) == 1 {
		return ruleSchema(t, alts[0])
	}
	any := &Schema{}
	for _, a := range alts {
		r := ruleSchema(t, a)
		if r == nil || isEmpty(r) {
			return nil
		}
		any.AnyOf = append(any.AnyOf, r)
	}
	return any
}

type sizeKind int

const (
	notSized sizeKind = iota
	sizedString
	sizedArray
	sizedObject
)

func sizing(t reflect.Type) sizeKind {
	if special(t) {
		return notSized
	}
	switch t.Kind() {
	case reflect.String:
		return sizedString
	case reflect.Slice, reflect.Array:
		return sizedArray
	case reflect.Map:
		return sizedObject
	}
	return notSized
}

var formats = map[string]string{
	"email": "email", "url": "uri", "uri": "uri-reference", "uuid": "uuid", "uuid_rfc4122": "uuid",
	"hostname": "hostname", "hostname_rfc1123": "hostname", "fqdn": "hostname", "ipv4": "ipv4", "ipv6": "ipv6",
	"ip4_addr": "ipv4", "ip6_addr": "ipv6",
}

var patterns = map[string]string{
	"alpha":       "^[a-zA-Z]+$",
	"alphanum":    "^[a-zA-Z0-9]+$",
	"numeric":     `^[-+]?[0-9]+(?:\.[0-9]+)?$`,
	"number":      "^[0-9]+$",
	"hexadecimal": "^(0[xX])?[0-9a-fA-F]+$",
	"uuid4":       "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
	"uuid":        "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
	"ascii":       "^[\x00-\x7F]*$",
	"printascii":  "^[\x20-\x7E]*$",
	"e164":        `^\+?[1-9][0-9]{7,14}$`,
	"hexcolor":    "^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$",
}

// ruleSchema maps one rule on a value of type t (pointers followed) to
// keywords; nil when it has none.
func ruleSchema(t reflect.Type, r rule) *Schema {
	size := sizing(t)
	k := t.Kind()
	numeric := !special(t) && (isInt(k) || isUint(k) || k == reflect.Float32 || k == reflect.Float64)
	switch r.name {
	case "min", "max", "len", "gt", "gte", "lt", "lte", "eq", "ne":
		if size == sizedString && r.name == "eq" {
			return &Schema{Const: r.param}
		}
		if size == sizedString && r.name == "ne" {
			return &Schema{Not: &Schema{Const: r.param}}
		}
		if size != notSized {
			return sizeRule(size, r)
		}
		if numeric {
			return numberRule(t, r)
		}
		if k == reflect.Bool && (r.name == "eq" || r.name == "ne") {
			b, err := strconv.ParseBool(r.param)
			if err != nil {
				return nil
			}
			if r.name == "eq" {
				return &Schema{Const: b}
			}
			return &Schema{Const: !b}
		}
	case "oneof":
		return oneOf(t, r.param)
	case "unique":
		if (k == reflect.Slice || k == reflect.Array) && r.param == "" && size == sizedArray {
			return &Schema{UniqueItems: true}
		}
	}
	if size != sizedString {
		return nil
	}
	if f, ok := formats[r.name]; ok && r.param == "" {
		return &Schema{Format: f}
	}
	if p := patterns[r.name]; p != "" && r.param == "" {
		return &Schema{Pattern: p}
	}
	switch r.name {
	case "ip", "ip_addr":
		return &Schema{AnyOf: []*Schema{{Format: "ipv4"}, {Format: "ipv6"}}}
	case "datetime":
		switch r.param {
		case time.RFC3339:
			return &Schema{Format: "date-time"}
		case time.DateOnly:
			return &Schema{Format: "date"}
		}
	case "contains":
		if r.param != "" {
			return &Schema{Pattern: regexp.QuoteMeta(r.param)}
		}
	case "startswith":
		if r.param != "" {
			return &Schema{Pattern: "^" + regexp.QuoteMeta(r.param)}
		}
	case "endswith":
		if r.param != "" {
			return &Schema{Pattern: regexp.QuoteMeta(r.param) + "$"}
		}
	case "json":
		return &Schema{ContentMediaType: "application/json"}
	case "base64":
		return &Schema{ContentEncoding: "base64"}
	}
	return nil
}

// sizeRule maps a size rule to the length keywords of a string, array or
// object; lengths count characters (runes), as both the validator and
// JSON Schema do.
func sizeRule(size sizeKind, r rule) *Schema {
	n, err := strconv.ParseInt(r.param, 0, 64)
	if err != nil || n < 0 || n > math.MaxInt32 {
		return nil
	}
	lo, hi := -1, -1
	switch r.name {
	case "min", "gte":
		lo = int(n)
	case "max", "lte":
		hi = int(n)
	case "len", "eq":
		lo, hi = int(n), int(n)
	case "gt":
		lo = int(n) + 1
	case "lt":
		if n == 0 {
			return nil
		}
		hi = int(n) - 1
	case "ne":
		eq := sizeRule(size, rule{name: "len", param: r.param})
		return &Schema{Not: eq}
	}
	s := &Schema{}
	set := func(min, max **int) {
		if lo >= 0 {
			*min = new(lo)
		}
		if hi >= 0 {
			*max = new(hi)
		}
	}
	switch size {
	case sizedString:
		set(&s.MinLength, &s.MaxLength)
	case sizedArray:
		set(&s.MinItems, &s.MaxItems)
	case sizedObject:
		set(&s.MinProperties, &s.MaxProperties)
	}
	return s
}

// numberRule maps a comparison of a number, with the parameter read as the
// validator reads it for t (time.Duration accepts "1s").
func numberRule(t reflect.Type, r rule) *Schema {
	var n json.Number
	k := t.Kind()
	switch {
	case t == durationType:
		d, err := time.ParseDuration(r.param)
		if err != nil {
			i, err := strconv.ParseInt(r.param, 0, 64)
			if err != nil {
				return nil
			}
			d = time.Duration(i)
		}
		n = num(int64(d))
	case isInt(k):
		i, err := strconv.ParseInt(r.param, 0, 64)
		if err != nil {
			return nil
		}
		n = num(i)
	case isUint(k):
		u, err := strconv.ParseUint(r.param, 0, 64)
		if err != nil {
			return nil
		}
		n = json.Number(strconv.FormatUint(u, 10))
	default:
		bits := 64
		if k == reflect.Float32 {
			bits = 32
		}
		f, err := strconv.ParseFloat(r.param, bits)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil
		}
		n = json.Number(strconv.FormatFloat(f, 'g', -1, 64))
	}
	switch r.name {
	case "min", "gte":
		return &Schema{Minimum: n}
	case "max", "lte":
		return &Schema{Maximum: n}
	case "gt":
		return &Schema{ExclusiveMinimum: n}
	case "lt":
		return &Schema{ExclusiveMaximum: n}
	case "len", "eq":
		return &Schema{Const: n}
	case "ne":
		return &Schema{Not: &Schema{Const: n}}
	}
	return nil
}

// oneOf maps "oneof" to an enum: space-separated values, 'quoted' ones may
// hold spaces. A number matches only when written as the validator
// formats it ("1", not "01" or "+1").
func oneOf(t reflect.Type, param string) *Schema {
	vals := splitOneOf(param)
	k := t.Kind()
	enum := []any{}
	switch {
	case special(t):
		return nil
	case k == reflect.String:
		for _, v := range vals {
			enum = append(enum, v)
		}
	case isInt(k):
		for _, v := range vals {
			if i, err := strconv.ParseInt(v, 10, 64); err == nil && strconv.FormatInt(i, 10) == v {
				enum = append(enum, json.Number(v))
			}
		}
	case isUint(k):
		for _, v := range vals {
			if u, err := strconv.ParseUint(v, 10, 64); err == nil && strconv.FormatUint(u, 10) == v {
				enum = append(enum, json.Number(v))
			}
		}
	default:
		return nil // the validator refuses oneof on other kinds
	}
	return &Schema{Enum: enum}
}

func splitOneOf(s string) []string {
	var out []string
	for s != "" {
		s = strings.TrimLeft(s, " \t\n\r\v\f\u0085\u00a0")
		if s == "" {
			break
		}
		if s[0] == '\'' {
			if end := strings.IndexByte(s[1:], '\''); end >= 0 {
				out = append(out, s[1:1+end])
				s = s[end+2:]
				continue
			}
		}
		end := strings.IndexAny(s, " \t\n\r\v\f")
		if end < 0 {
			end = len(s)
		}
		out = append(out, strings.ReplaceAll(s[:end], "'", ""))
		s = s[end:]
	}
	return out
}

// isEmpty reports whether s has no keywords.
func isEmpty(s *Schema) bool {
	return reflect.ValueOf(*s).IsZero()
}

// merge adds the keywords of src to dst: a bound already set keeps the
// tighter of the two, any other keyword set on both goes to allOf.
func merge(dst, src *Schema) {
	extra := &Schema{}
	bound := func(d *json.Number, v json.Number, tighter int) {
		switch {
		case v == "":
		case *d == "":
			*d = v
		case cmpNum(v, *d) == tighter:
			*d = v
		}
	}
	length := func(d **int, v *int, lower bool) {
		switch {
		case v == nil:
		case *d == nil, lower && *v > **d, !lower && *v < **d:
			*d = new(*v)
		}
	}
	bound(&dst.Minimum, src.Minimum, 1)
	bound(&dst.Maximum, src.Maximum, -1)
	bound(&dst.ExclusiveMinimum, src.ExclusiveMinimum, 1)
	bound(&dst.ExclusiveMaximum, src.ExclusiveMaximum, -1)
	length(&dst.MinLength, src.MinLength, true)
	length(&dst.MaxLength, src.MaxLength, false)
	length(&dst.MinItems, src.MinItems, true)
	length(&dst.MaxItems, src.MaxItems, false)
	length(&dst.MinProperties, src.MinProperties, true)
	length(&dst.MaxProperties, src.MaxProperties, false)
	str := func(d *string, v string, e *string) {
		switch {
		case v == "" || v == *d:
		case *d == "":
			*d = v
		default:
			*e = v
		}
	}
	str(&dst.Pattern, src.Pattern, &extra.Pattern)
	str(&dst.Format, src.Format, &extra.Format)
	str(&dst.ContentEncoding, src.ContentEncoding, &extra.ContentEncoding)
	str(&dst.ContentMediaType, src.ContentMediaType, &extra.ContentMediaType)
	dst.UniqueItems = dst.UniqueItems || src.UniqueItems
	if src.Const != nil {
		if dst.Const == nil {
			dst.Const = src.Const
		} else {
			extra.Const = src.Const
		}
	}
	if src.Enum != nil {
		if dst.Enum == nil {
			dst.Enum = src.Enum
		} else {
			extra.Enum = src.Enum
		}
	}
	if src.Not != nil {
		if dst.Not == nil {
			dst.Not = src.Not
		} else {
			extra.Not = src.Not
		}
	}
	if src.AnyOf != nil {
		if dst.AnyOf == nil {
			dst.AnyOf = src.AnyOf
		} else {
			extra.AnyOf = src.AnyOf
		}
	}
	dst.AllOf = append(dst.AllOf, src.AllOf...)
	if !isEmpty(extra) {
		dst.AllOf = append(dst.AllOf, extra)
	}
}
