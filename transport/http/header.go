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
func (h Header) Get(key string) string { return http.Header(h).Get(key) }

// Values implements transport.Header.
func (h Header) Values(key string) []string { return http.Header(h).Values(key) }

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
