package http

import (
	"net/http"
	"slices"
	"strings"

	"github.com/ferry-go/ferry/transport"
)

// Header adapts an http.Header to transport.Header without copying: the
// server hands handlers the request headers and the response headers
// through it, and the client hands back the reply headers. Keys are
// case-insensitive, as in http.Header.
type Header http.Header

var _ transport.Header = Header(nil)

// Get implements transport.Header.
func (h Header) Get(key string) string {
	if v := h.Values(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values implements transport.Header.
func (h Header) Values(key string) []string {
	var buf [maxFastKey]byte
	if k, ok := canonicalKey(buf[:0], key); ok {
		return h[string(k)] // a map look-up by converted bytes allocates nothing
	}
	return http.Header(h).Values(key)
}

// maxFastKey bounds the keys canonicalKey writes on the stack.
const maxFastKey = 64

// canonicalKey appends key in canonical MIME form ("traceparent" →
// "Traceparent", "x-request-id" → "X-Request-Id") to dst, as
// http.CanonicalHeaderKey does but without allocating a string for a key
// that is not canonical already; ok is false for a key longer than
// maxFastKey or with a byte that is not a token character, which
// http.CanonicalHeaderKey leaves as it is.
func canonicalKey(dst []byte, key string) ([]byte, bool) {
	if len(key) == 0 || len(key) > maxFastKey {
		return nil, false
	}
	upper := true
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !tokenByte(c) {
			return nil, false
		}
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst, true
}

// tokenByte reports whether c may appear in a header name (RFC 9110 token).
func tokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// Set implements transport.Header.
func (h Header) Set(key, value string) { http.Header(h).Set(key, value) }

// Add implements transport.Header.
func (h Header) Add(key, value string) { http.Header(h).Add(key, value) }

// Del implements transport.Header.
func (h Header) Del(key string) { http.Header(h).Del(key) }

// Keys implements transport.Header: the keys present, lower-cased, sorted
// and without duplicates.
func (h Header) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, strings.ToLower(k))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}
