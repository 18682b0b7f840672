package transport

import (
	"slices"
	"sort"
	"strings"
)

// Header is read-write access to call metadata. Keys are case-insensitive.
// Each transport adapts its native carrier (http.Header, gRPC metadata, NATS
// headers) to Header without copying.
type Header interface {
	// Get returns the first value for key, or "".
	Get(key string) string
	// Values returns every value for key.
	Values(key string) []string
	// Set replaces the values for key with value.
	Set(key, value string)
	// Add appends value to key's values.
	Add(key, value string)
	// Del removes key.
	Del(key string)
	// Keys returns the keys present, lower-cased and sorted.
	Keys() []string
}

// Metadata is a case-insensitive multi-map. Its methods write lower-case
// keys; a map literal may use any case ({"X-Tenant": {"t1"}}) and reads
// still find it. The zero value (nil) is readable; use make or a literal
// before writing.
type Metadata map[string][]string

var _ Header = Metadata(nil)

// Pairs returns Metadata built from alternating keys and values. A trailing
// key without a value is ignored.
func Pairs(kv ...string) Metadata {
	md := make(Metadata, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		md.Add(kv[i], kv[i+1])
	}
	return md
}

func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// Get implements Header.
func (m Metadata) Get(key string) string {
	if vs := m.Values(key); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// Values implements Header.
func (m Metadata) Values(key string) []string {
	k := lower(key)
	if vs, ok := m[k]; ok {
		return vs
	}
	// A key written in another case, by a map literal.
	for mk, vs := range m {
		if mk != k && strings.EqualFold(mk, k) {
			return vs
		}
	}
	return nil
}

// Set implements Header.
func (m Metadata) Set(key, value string) {
	k := lower(key)
	m.dropVariants(k)
	m[k] = []string{value}
}

// Add implements Header.
func (m Metadata) Add(key, value string) {
	k := lower(key)
	if _, ok := m[k]; !ok {
		m[k] = m.Values(k) // values a literal put under another case
		m.dropVariants(k)
	}
	m[k] = append(m[k], value)
}

// Del implements Header.
func (m Metadata) Del(key string) {
	k := lower(key)
	delete(m, k)
	m.dropVariants(k)
}

// dropVariants deletes the keys other than k that equal it but for case.
func (m Metadata) dropVariants(k string) {
	for mk := range m {
		if mk != k && strings.EqualFold(mk, k) {
			delete(m, mk)
		}
	}
}

// Keys implements Header: lower-cased, sorted, each once.
func (m Metadata) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, lower(k))
	}
	sort.Strings(keys)
	return slices.Compact(keys)
}

// LazyMetadata is a Header whose Metadata is made on the first write: a
// served call's reply metadata, which most handlers never set, costs no
// map then. MD is what was written (nil if nothing was).
type LazyMetadata struct{ MD Metadata }

var _ Header = (*LazyMetadata)(nil)

func (h *LazyMetadata) writable() Metadata {
	if h.MD == nil {
		h.MD = Metadata{}
	}
	return h.MD
}

// Get implements Header.
func (h *LazyMetadata) Get(key string) string { return h.MD.Get(key) }

// Values implements Header.
func (h *LazyMetadata) Values(key string) []string { return h.MD.Values(key) }

// Set implements Header.
func (h *LazyMetadata) Set(key, value string) { h.writable().Set(key, value) }

// Add implements Header.
func (h *LazyMetadata) Add(key, value string) { h.writable().Add(key, value) }

// Del implements Header.
func (h *LazyMetadata) Del(key string) { h.MD.Del(key) }

// Keys implements Header.
func (h *LazyMetadata) Keys() []string { return h.MD.Keys() }

// Clone returns a deep copy of m with lower-case keys; Clone of nil is an
// empty, writable map.
func (m Metadata) Clone() Metadata {
	out := make(Metadata, len(m))
	for k, vs := range m {
		lk := lower(k)
		out[lk] = append(out[lk], vs...)
	}
	return out
}

// Copy returns h's contents as Metadata.
func Copy(h Header) Metadata {
	if h == nil {
		return Metadata{}
	}
	if md, ok := h.(Metadata); ok {
		return md.Clone()
	}
	out := Metadata{}
	for _, k := range h.Keys() {
		out[k] = append([]string(nil), h.Values(k)...)
	}
	return out
}
