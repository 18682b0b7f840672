package nats

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/internal/timeoutms"
	"github.com/ferry-go/ferry/transport"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Header names of Ferry's NATS wire format, besides micro.ErrorHeader and
// micro.ErrorCodeHeader.
const (
	// TimeoutHeader carries the caller's remaining time in whole
	// milliseconds (at least 1).
	TimeoutHeader = "Ferry-Timeout-Ms"
	// ErrorCodeHeader carries the canonical code name of an error reply,
	// such as "not_found".
	ErrorCodeHeader = "Ferry-Error-Code"

	contentTypeHeader = "Content-Type"
	jsonContentType   = "application/json"
)

// maxTimeoutMs keeps a parsed timeout inside time.Duration.
const maxTimeoutMs = math.MaxInt64 / int64(time.Millisecond)

// header adapts nats.Header, whose keys are case-sensitive, to
// transport.Header. Reads try the exact key first, then any key equal under
// case folding; writes use lower-case keys.
type header nats.Header

var _ transport.Header = header(nil)

// lookup returns the values for key, merging every spelling of it.
func (h header) lookup(key string) []string {
	if vs, ok := h[key]; ok {
		return vs
	}
	var found []string
	var keys []string
	for k := range h {
		if strings.EqualFold(k, key) {
			keys = append(keys, k)
		}
	}
	switch len(keys) {
	case 0:
		return nil
	case 1:
		return h[keys[0]]
	}
	sort.Strings(keys) // deterministic order when a key comes in several spellings
	for _, k := range keys {
		found = append(found, h[k]...)
	}
	return found
}

// Get implements transport.Header.
func (h header) Get(key string) string {
	if vs := h.lookup(key); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// Values implements transport.Header.
func (h header) Values(key string) []string { return h.lookup(key) }

// Set implements transport.Header.
func (h header) Set(key, value string) {
	h.Del(key)
	h[strings.ToLower(key)] = []string{value}
}

// Add implements transport.Header.
func (h header) Add(key, value string) {
	if _, ok := h[key]; !ok {
		for k := range h {
			if strings.EqualFold(k, key) {
				key = k
				break
			}
		}
	}
	if _, ok := h[key]; !ok {
		key = strings.ToLower(key)
	}
	h[key] = append(h[key], value)
}

// Del implements transport.Header.
func (h header) Del(key string) {
	for k := range h {
		if strings.EqualFold(k, key) {
			delete(h, k)
		}
	}
}

// Keys implements transport.Header.
func (h header) Keys() []string {
	keys := make([]string, 0, len(h))
	seen := make(map[string]bool, len(h))
	for k := range h {
		lk := strings.ToLower(k)
		if !seen[lk] {
			seen[lk] = true
			keys = append(keys, lk)
		}
	}
	sort.Strings(keys)
	return keys
}

// msgHeader is the request metadata of a server call: the headers of the
// request message, read case-insensitively. A request without headers gets
// a header map only if the handler writes to it.
type msgHeader nats.Msg

var _ transport.Header = (*msgHeader)(nil)

func (m *msgHeader) writable() header {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	return header(m.Header)
}

// Get implements transport.Header.
func (m *msgHeader) Get(key string) string { return header(m.Header).Get(key) }

// Values implements transport.Header.
func (m *msgHeader) Values(key string) []string { return header(m.Header).Values(key) }

// Set implements transport.Header.
func (m *msgHeader) Set(key, value string) { m.writable().Set(key, value) }

// Add implements transport.Header.
func (m *msgHeader) Add(key, value string) { m.writable().Add(key, value) }

// Del implements transport.Header.
func (m *msgHeader) Del(key string) { header(m.Header).Del(key) }

// Keys implements transport.Header.
func (m *msgHeader) Keys() []string { return header(m.Header).Keys() }

// parseTimeout parses a TimeoutHeader value, a whole number of
// milliseconds > 0, cut to limit.
func parseTimeout(v string, limit time.Duration) (time.Duration, error) {
	d, ok := timeoutms.Parse(v, limit)
	if !ok {
		return 0, errs.Newf(errs.InvalidArgument, "header %s: want a positive whole number of milliseconds, got %q", TimeoutHeader, errs.Clip(v))
	}
	return d, nil
}

// formatTimeout renders d for TimeoutHeader: rounded up to whole
// milliseconds, at least 1, so a caller never sends a deadline that has
// already passed or none at all, and at most what parseTimeout accepts.
func formatTimeout(d time.Duration) string {
	return strconv.FormatInt(timeoutMillis(d), 10)
}

// timeoutMillis is d as formatTimeout renders it.
func timeoutMillis(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond > 0 {
		ms++
	}
	return min(max(ms, 1), maxTimeoutMs)
}

// isReserved reports whether key is a header of the wire format itself,
// which metadata may not set and which is not reported as metadata.
func isReserved(key string) bool {
	return strings.EqualFold(key, contentTypeHeader) ||
		strings.EqualFold(key, TimeoutHeader) ||
		strings.EqualFold(key, ErrorCodeHeader) ||
		strings.EqualFold(key, micro.ErrorHeader) ||
		strings.EqualFold(key, micro.ErrorCodeHeader)
}

// setErrorHeaders writes e's code and message into h.
func setErrorHeaders(h nats.Header, e *errs.Error) {
	msg := e.Message()
	if msg == "" {
		msg = e.Code().String() // micro clients treat an empty description as no error
	}
	h[micro.ErrorHeader] = []string{msg}
	h[micro.ErrorCodeHeader] = []string{strconv.Itoa(errs.HTTPStatus(e.Code()))}
	h[ErrorCodeHeader] = []string{e.Code().String()}
}

// replyError returns the error an error reply stands for, or nil if the
// reply is not an error. A Ferry-Error-Code header gives the code (and the
// body the exact message and details); otherwise the micro convention's
// Nats-Service-Error-Code is read as an HTTP status.
func replyError(h nats.Header, body []byte) *errs.Error {
	if len(h) == 0 {
		return nil
	}
	hh := header(h)
	if name := hh.Get(ErrorCodeHeader); name != "" {
		if code, ok := errs.ParseCode(name); ok {
			var e errs.Error
			if json.Unmarshal(body, &e) == nil && e.Code() == code {
				return &e
			}
			return errs.New(code, hh.Get(micro.ErrorHeader))
		}
	}
	status, msg := hh.Get(micro.ErrorCodeHeader), hh.Get(micro.ErrorHeader)
	if status == "" && msg == "" {
		return nil
	}
	code := errs.Unknown
	if n, err := strconv.Atoi(strings.TrimSpace(status)); err == nil {
		code = errs.FromHTTPStatus(n)
	}
	if msg == "" {
		msg = "error status " + errs.Clip(status)
	}
	return errs.New(code, msg)
}

// replyMetadata returns the metadata of a reply: its headers with
// lower-case keys, without the wire format's own. It is nil when there is
// none.
func replyMetadata(h nats.Header) transport.Metadata {
	var md transport.Metadata
	for k, vs := range h {
		if isReserved(k) {
			continue
		}
		if md == nil {
			md = make(transport.Metadata, len(h))
		}
		lk := strings.ToLower(k)
		md[lk] = append(md[lk], vs...)
	}
	return md
}
