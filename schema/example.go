package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Example returns a JSON value that doc describes, for an API explorer to
// pre-fill a request body: the first of "examples" where there are some,
// otherwise every property present (only the first of each protobuf
// oneof), values as small as the
// keywords allow (the first of an enum, strings as short as minLength,
// numbers at or just inside their bounds, one element in arrays), "$ref"s
// resolved against doc's "$defs" (or the last segment of the reference,
// for other prefixes). A reference back to a definition already being
// filled becomes null, or is left out. Strings, arrays and objects stay
// within 4,096 characters, elements or members. It is best effort for patterns and
// formats; it never fails on a schema this package wrote.
func Example(doc *Schema) ([]byte, error) {
	if doc == nil {
		return nil, errors.New("schema: Example of a nil schema")
	}
	e := &exampler{defs: doc.Defs, stack: map[string]bool{}}
	v, ok := e.value(doc, 0)
	if !ok {
		v = nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if e.err != nil {
		return nil, e.err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

type exampler struct {
	defs  map[string]*Schema
	stack map[string]bool
	flat  map[*Schema]bool // allOf already merged in
	err   error
}

// maxDepth bounds nesting in case of schemas written elsewhere.
const maxDepth = 32

// maxSize bounds the strings, arrays and objects of an example: a
// minLength or minItems above it is not met.
const maxSize = 4096

// object keeps its members in order.
type object []member

type member struct {
	name  string
	value any
}

func (o object) MarshalJSON() ([]byte, error) {
	w := &objWriter{}
	for _, m := range o {
		w.put(m.name, m.value)
	}
	return w.bytes(), w.err
}

// value returns an example of s; false when none can be given without
// recursing forever.
func (e *exampler) value(s *Schema, depth int) (any, bool) {
	if s == nil {
		return nil, true
	}
	if s.never || depth > maxDepth {
		return nil, false
	}
	if s.Ref != "" {
		name := s.Ref[strings.LastIndexByte(s.Ref, '/')+1:]
		def, ok := e.defs[name]
		if !ok {
			if e.err == nil {
				e.err = fmt.Errorf("schema: Example: unresolved $ref %q", s.Ref)
			}
			return nil, false
		}
		if e.stack[name] {
			return nil, false
		}
		e.stack[name] = true
		defer delete(e.stack, name)
		rest := *s
		rest.Ref, rest.Extra, rest.Description, rest.Title, rest.Deprecated = "", nil, "", "", false
		rest.Schema, rest.Defs = "", nil
		if isEmpty(&rest) {
			return e.value(def, depth+1)
		}
		return e.value(&Schema{AllOf: []*Schema{def, &rest}}, depth+1)
	}
	if s.Const != nil {
		return s.Const, true
	}
	if len(s.Examples) > 0 {
		return s.Examples[0], true
	}
	for _, v := range s.Enum {
		if v != nil {
			return v, true
		}
	}
	if s.Enum != nil {
		return nil, true
	}
	if s.AnyOf != nil || s.OneOf != nil {
		for _, alt := range append(append([]*Schema{}, s.AnyOf...), s.OneOf...) {
			rest := *s
			rest.AnyOf, rest.OneOf = nil, nil
			if v, ok := e.value(flatten(&rest, alt), depth+1); ok {
				return v, true
			}
		}
		return nil, false
	}
	if s.AllOf != nil && !e.flat[s] {
		merged := *s
		merged.AllOf = nil
		pending, checks := s.AllOf, []*Schema(nil)
		for round := 0; len(pending) > 0 && round < maxDepth; round++ {
			var next []*Schema
			for _, part := range pending {
				if part.Ref != "" {
					name := part.Ref[strings.LastIndexByte(part.Ref, '/')+1:]
					def := e.defs[name]
					if def == nil || e.stack[name] {
						return e.value(part, depth+1)
					}
					part = def
				}
				p := *part
				p.AllOf = nil
				m := flatten(&merged, &p)
				checks = append(checks, m.AllOf...) // keywords both set: kept for checks only
				m.AllOf = nil
				merged = *m
				next = append(next, part.AllOf...)
			}
			pending = next
		}
		merged.AllOf = checks
		if e.flat == nil {
			e.flat = map[*Schema]bool{}
		}
		e.flat[&merged] = true
		return e.value(&merged, depth+1)
	}
	typ := ""
	for _, t := range s.Type {
		if t != "null" {
			typ = t
			break
		}
	}
	if typ == "" {
		switch {
		case len(s.Type) > 0:
			return nil, true
		case s.Properties != nil:
			typ = "object"
		case s.Items != nil:
			typ = "array"
		case s.Not != nil:
			return object{}, true
		default:
			return nil, true
		}
	}
	switch typ {
	case "object":
		return e.object(s, depth)
	case "array":
		return e.array(s, depth)
	case "string":
		return exampleString(s), true
	case "integer", "number":
		return exampleNumber(s, typ == "integer"), true
	case "boolean":
		if s.Not != nil && s.Not.Const == false {
			return true, true
		}
		return false, true
	}
	return nil, true
}

// flatten returns s with the keywords of part added (the first wins).
func flatten(s, part *Schema) *Schema {
	out := *s
	if part.Ref != "" {
		out.AllOf = append(append([]*Schema{}, out.AllOf...), part)
		return &out
	}
	if len(out.Type) == 0 {
		out.Type = part.Type
	} else if len(part.Type) > 0 {
		var both []string
		for _, t := range out.Type {
			if hasType(part, t) || t == "integer" && hasType(part, "number") {
				both = append(both, t)
			}
		}
		if len(both) == 0 && hasType(part, "integer") && hasType(&out, "number") {
			both = []string{"integer"}
		}
		out.Type = both
	}
	if out.Properties == nil {
		out.Properties, out.Required = part.Properties, part.Required
	}
	if out.Items == nil {
		out.Items = part.Items
	}
	if out.AdditionalProperties == nil {
		out.AdditionalProperties = part.AdditionalProperties
	}
	if out.PropertyNames == nil {
		out.PropertyNames = part.PropertyNames
	}
	if out.Extra == nil {
		out.Extra = part.Extra
	}
	c := *part
	c.Type, c.Properties, c.Required, c.Items, c.AdditionalProperties, c.PropertyNames = nil, nil, nil, nil, nil, nil
	c.Defs, c.Extra, c.Description, c.Title = nil, nil, "", ""
	merge(&out, &c)
	return &out
}

func (e *exampler) object(s *Schema, depth int) (any, bool) {
	obj := object{}
	required := map[string]bool{}
	for _, r := range s.Required {
		required[r] = true
	}
	skip := oneofRest(s)
	for _, p := range s.Properties {
		if skip[p.Name] {
			continue
		}
		v, ok := e.value(p.Schema, depth+1)
		if !ok {
			if required[p.Name] {
				return nil, false
			}
			continue
		}
		obj = append(obj, member{p.Name, v})
	}
	if s.MinProperties != nil && s.AdditionalProperties != nil && !s.AdditionalProperties.never {
		for i := 0; len(obj) < min(*s.MinProperties, maxSize); i++ {
			key := "key" + strconv.Itoa(i+1)
			if s.PropertyNames != nil {
				key = exampleString(s.PropertyNames)
				if i > 0 {
					key += strconv.Itoa(i)
				}
			}
			v, ok := e.value(s.AdditionalProperties, depth+1)
			if !ok {
				return nil, false
			}
			obj = append(obj, member{key, v})
		}
	}
	return obj, true
}

// oneofRest names the members of each "x-oneof" group (which protobuf
// sets at most one of) after the first.
func oneofRest(s *Schema) map[string]bool {
	groups, _ := s.Extra["x-oneof"].(map[string]any)
	skip := map[string]bool{}
	for _, g := range groups {
		switch names := g.(type) {
		case []string:
			for _, n := range names[min(1, len(names)):] {
				skip[n] = true
			}
		case []any:
			for _, n := range names[min(1, len(names)):] {
				if n, ok := n.(string); ok {
					skip[n] = true
				}
			}
		}
	}
	return skip
}

func (e *exampler) array(s *Schema, depth int) (any, bool) {
	n := 1
	if s.MinItems != nil && *s.MinItems > n {
		n = *s.MinItems
	}
	if s.MaxItems != nil && *s.MaxItems < n {
		n = *s.MaxItems
	}
	n = min(n, maxSize)
	v, ok := e.value(s.Items, depth+1)
	if !ok || v == nil && (s.MinItems == nil || *s.MinItems == 0) {
		// No element, rather than [null] (a reference back, say).
		if !ok && s.MinItems != nil && *s.MinItems > 0 {
			return nil, false
		}
		return []any{}, true
	}
	out := make([]any, n)
	for i := range out {
		out[i] = v
		if s.UniqueItems && i > 0 {
			out[i] = distinct(v, i)
		}
	}
	return out, true
}

func distinct(v any, i int) any {
	switch x := v.(type) {
	case string:
		return x + strconv.Itoa(i)
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return json.Number(strconv.FormatFloat(f+float64(i), 'f', -1, 64))
	}
	return v
}

var formatExamples = map[string]string{
	"email": "user@example.com", "uri": "https://example.com", "uri-reference": "https://example.com",
	"uuid": "00000000-0000-4000-8000-000000000000", "hostname": "example.com", "ipv4": "192.0.2.1",
	"ipv6": "2001:db8::1", "date-time": "1970-01-01T00:00:00Z", "date": "1970-01-01", "int64": "0",
	"uint64": "0",
}

// exampleString returns the first candidate that satisfies s's length,
// pattern and not-const keywords (as far as Go's regexp reads ECMA-262),
// or the first candidate.
func exampleString(s *Schema) string {
	minLen := 0
	if s.MinLength != nil {
		minLen = min(*s.MinLength, maxSize)
	}
	var patterns []*regexp.Regexp
	var sources []string
	collectPatterns(s, &sources)
	for _, p := range sources {
		if re, err := regexp.Compile(p); err == nil {
			patterns = append(patterns, re)
		}
	}
	var cands []string
	if f, ok := formatExamples[s.Format]; ok {
		cands = append(cands, f)
	}
	for _, p := range sources {
		for _, reps := range []int{0, 1, 2, minLen} {
			if g, ok := fromPattern(p, reps); ok {
				cands = append(cands, g)
			}
		}
	}
	cands = append(cands, "", "a")
	pad := "a"
	for _, p := range sources {
		if g, ok := fromPattern(p, 1); ok && g != "" {
			r, _ := utf8.DecodeLastRuneInString(g)
			pad = string(r)
			break
		}
	}
	base := len(cands)
	for _, c := range cands[:base] {
		if n := utf8.RuneCountInString(c); n < minLen {
			fill := strings.Repeat(pad, minLen-n)
			if s.Format == "email" {
				cands = append(cands, fill+c)
			} else {
				cands = append(cands, c+fill, fill+c)
			}
		}
	}
	for _, c := range cands {
		if okString(s, c, minLen, patterns) {
			return c
		}
	}
	return cands[0]
}

func collectPatterns(s *Schema, out *[]string) {
	if s.Pattern != "" {
		*out = append(*out, s.Pattern)
	}
	for _, p := range s.AllOf {
		collectPatterns(p, out)
	}
}

func okString(s *Schema, c string, minLen int, patterns []*regexp.Regexp) bool {
	n := utf8.RuneCountInString(c)
	if n < minLen || s.MaxLength != nil && n > *s.MaxLength {
		return false
	}
	if s.Not != nil && s.Not.Const == c {
		return false
	}
	for _, re := range patterns {
		if !re.MatchString(c) {
			return false
		}
	}
	return true
}

// fromPattern builds a short string that pattern matches, repeating
// starred parts reps times.
func fromPattern(pattern string, reps int) (string, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	if !generate(&b, re.Simplify(), reps, 0) {
		return "", false
	}
	return b.String(), true
}

func generate(b *strings.Builder, re *syntax.Regexp, reps, depth int) bool {
	if depth > 100 || b.Len() > 4096 {
		return false
	}
	switch re.Op {
	case syntax.OpLiteral:
		b.WriteString(string(re.Rune))
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return false
		}
		b.WriteRune(pickRune(re.Rune))
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteByte('a')
	case syntax.OpCapture:
		return generate(b, re.Sub[0], reps, depth+1)
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		n := reps
		switch re.Op {
		case syntax.OpPlus:
			n = max(n, 1)
		case syntax.OpQuest:
			n = min(n, 1)
		case syntax.OpRepeat:
			n = max(n, re.Min)
			if re.Max >= 0 {
				n = min(n, re.Max)
			}
		}
		for range n {
			if !generate(b, re.Sub[0], reps, depth+1) {
				return false
			}
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !generate(b, sub, reps, depth+1) {
				return false
			}
		}
	case syntax.OpAlternate:
		return generate(b, re.Sub[0], reps, depth+1)
	case syntax.OpNoMatch:
		return false
	}
	return true
}

// pickRune prefers a letter or digit from a class given as ranges.
func pickRune(ranges []rune) rune {
	for _, want := range []rune{'a', 'A', '0', '1'} {
		for i := 0; i+1 < len(ranges); i += 2 {
			if ranges[i] <= want && want <= ranges[i+1] {
				return want
			}
		}
	}
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1] && r < ranges[i]+256; r++ {
			if unicode.IsGraphic(r) {
				return r
			}
		}
	}
	return ranges[0]
}

// exampleNumber is 0 moved inside the bounds (and away from a not-const).
func exampleNumber(s *Schema, integer bool) json.Number {
	v := 0.0
	f := func(n json.Number) (float64, bool) {
		if n == "" {
			return 0, false
		}
		x, err := strconv.ParseFloat(string(n), 64)
		return x, err == nil
	}
	step := 1.0
	if x, ok := f(s.Minimum); ok && v < x {
		v = x
	}
	if x, ok := f(s.ExclusiveMinimum); ok && v <= x {
		v = x + step
	}
	if x, ok := f(s.Maximum); ok && v > x {
		v = x
	}
	if x, ok := f(s.ExclusiveMaximum); ok && v >= x {
		v = x - step
	}
	if integer {
		v = math.Ceil(v)
	}
	if s.Not != nil && s.Not.Const != nil {
		if x, ok := f(toNumber(s.Not.Const)); ok && x == v {
			if mx, ok := f(s.Maximum); ok && v+step > mx {
				v -= step
			} else {
				v += step
			}
		}
	}
	// Keep an exact bound (a large uint64) as written.
	for _, b := range []json.Number{s.Minimum, s.Maximum} {
		if x, ok := f(b); ok && x == v {
			return b
		}
	}
	return json.Number(strconv.FormatFloat(v, 'f', -1, 64))
}

func toNumber(v any) json.Number {
	switch n := v.(type) {
	case json.Number:
		return n
	case float64:
		return json.Number(strconv.FormatFloat(n, 'f', -1, 64))
	}
	return ""
}
