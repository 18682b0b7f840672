package http

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
)

// The wire names of streams (see the package documentation, "Streams").
const (
	// SSEContentType is the media type of a server stream sent as
	// Server-Sent Events.
	SSEContentType = "text/event-stream"
	// NDJSONContentType is the media type of a server stream sent as
	// newline-delimited JSON, the default.
	NDJSONContentType = "application/x-ndjson"
	// JSONLContentType is accepted as a synonym of NDJSONContentType and
	// answered as itself.
	JSONLContentType = "application/jsonl"

	// StreamEndTrailer is the HTTP trailer that ends an NDJSON stream:
	// "ok", or "error" with the error in ErrorTrailer. A stream whose body
	// ends without it was cut off.
	StreamEndTrailer = "Ferry-Stream-End"
	// ErrorTrailer carries the problem+json document (compact, ASCII) of an
	// NDJSON stream that ended with an error.
	ErrorTrailer = "Ferry-Error"

	// WebSocketProtocol is the WebSocket subprotocol of Ferry's envelope
	// protocol with credit-based flow control both ways (see the package
	// documentation, "Streams"). The server agrees to it when asked and
	// does not require it: a WebSocket opened without it speaks the same
	// envelopes without credits, under TCP back-pressure.
	WebSocketProtocol = "ferry.v1"

	// DefaultStreamWindow is the default number of messages a side of a
	// WebSocket stream lets its peer send ahead of what its application
	// has received (WithStreamWindow, WithClientStreamWindow).
	DefaultStreamWindow = 32
)

// maxCredit bounds one credit envelope's value, and the credit a side
// holds.
const maxCredit = 1<<31 - 1

// StreamFormat is the wire format of server streams a Client asks for (see
// WithStreamFormat).
type StreamFormat uint8

// The server stream formats.
const (
	// NDJSON is newline-delimited JSON with the end of the stream in HTTP
	// trailers (application/x-ndjson), the default.
	NDJSON StreamFormat = iota + 1
	// SSE is Server-Sent Events (text/event-stream), what a browser's
	// EventSource reads.
	SSE
)

// String returns "ndjson" or "sse".
func (f StreamFormat) String() string {
	switch f {
	case NDJSON:
		return "ndjson"
	case SSE:
		return "sse"
	}
	return "StreamFormat(" + strconv.Itoa(int(f)) + ")"
}

// negotiate picks the reply format of a server stream from the request's
// Accept header values: the acceptable type with the highest quality,
// NDJSON on a tie or a wildcard, NDJSON when there is no Accept at all.
// It returns the Content-Type to answer with, or "" when neither format is
// acceptable.
func negotiate(accept []string) (StreamFormat, string) {
	if len(accept) == 0 {
		return NDJSON, NDJSONContentType
	}
	type cand struct {
		f  StreamFormat
		ct string
	}
	cands := [...]cand{{NDJSON, NDJSONContentType}, {NDJSON, JSONLContentType}, {SSE, SSEContentType}}
	var q [len(cands)]float64
	var spec [len(cands)]int // how specific the range that set q was: 0 none, 1 */*, 2 type/*, 3 exact
	empty := true
	for _, line := range accept {
		for part := range strings.SplitSeq(line, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			empty = false
			mt, params, err := mime.ParseMediaType(part)
			if err != nil {
				continue
			}
			quality := 1.0
			if v, ok := params["q"]; ok {
				if quality, err = strconv.ParseFloat(v, 64); err != nil || quality < 0 || quality > 1 {
					continue
				}
			}
			typ, sub, _ := strings.Cut(mt, "/")
			for i, c := range cands {
				ctyp, csub, _ := strings.Cut(c.ct, "/")
				s := 0
				switch {
				case typ == ctyp && sub == csub:
					s = 3
				case typ == ctyp && sub == "*":
					s = 2
				case typ == "*" && sub == "*":
					s = 1
				}
				if s > spec[i] {
					spec[i], q[i] = s, quality
				}
			}
		}
	}
	if empty {
		return NDJSON, NDJSONContentType
	}
	best := -1
	for i := range cands {
		if spec[i] > 0 && q[i] > 0 && (best < 0 || q[i] > q[best] || (q[i] == q[best] && spec[i] > spec[best])) {
			best = i
		}
	}
	if best < 0 {
		return 0, ""
	}
	if spec[best] < 3 { // a wildcard: the default spelling
		if cands[best].f == SSE {
			return SSE, SSEContentType
		}
		return NDJSON, NDJSONContentType
	}
	return cands[best].f, cands[best].ct
}

// streamProblem is the problem+json document of a stream that failed after
// it started, with its trailer: the data of an SSE "error" event and the
// "error" member of a WebSocket envelope.
func streamProblem(err error, trailer transport.Metadata) []byte {
	e := errs.FromError(err)
	body, _ := problemJSON(errs.HTTPStatus(e.Code()), e, trailer)
	return body
}

// parseStreamProblem turns a problem+json document received in a stream
// (an SSE "error" event, a WebSocket "error" envelope, the Ferry-Error
// trailer) back into the error and the trailer it carried.
func parseStreamProblem(doc []byte) (*errs.Error, transport.Metadata) {
	var p struct {
		Status  int                `json:"status"`
		Trailer transport.Metadata `json:"trailer"`
	}
	if json.Unmarshal(doc, &p) != nil {
		return errs.Newf(errs.Internal, "http: the stream ended with an unreadable error document %q", errs.Clip(string(doc))), nil
	}
	status := p.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	return parseProblem(status, ProblemContentType, doc), p.Trailer
}

// asciiJSON escapes every non-ASCII character of a JSON document as \uXXXX,
// so that the document can travel in a header value.
func asciiJSON(b []byte) []byte {
	i := 0
	for i < len(b) && b[i] < utf8.RuneSelf {
		i++
	}
	if i == len(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	out = append(out, b[:i]...)
	const hex = "0123456789abcdef"
	u := func(r rune) {
		out = append(out, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	for i < len(b) {
		if b[i] < utf8.RuneSelf {
			out = append(out, b[i])
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		i += n
		if r >= 0x10000 {
			r -= 0x10000
			u(0xd800 + (r>>10)&0x3ff)
			u(0xdc00 + r&0x3ff)
			continue
		}
		u(r)
	}
	return out
}

// oneLine returns a JSON document with no line break in it: JSON encoders
// write none, but a codec's MarshalJSON might.
func oneLine(b []byte) []byte {
	if bytes.IndexByte(b, '\n') < 0 && bytes.IndexByte(b, '\r') < 0 {
		return b
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

// trailerFromHeader returns the handler's trailer received as HTTP
// trailers, without Ferry's own.
func trailerFromHeader(h http.Header) transport.Metadata {
	var md transport.Metadata
	for k, vs := range h {
		if strings.EqualFold(k, StreamEndTrailer) || strings.EqualFold(k, ErrorTrailer) || len(vs) == 0 {
			continue
		}
		if md == nil {
			md = transport.Metadata{}
		}
		for _, v := range vs {
			md.Add(k, v)
		}
	}
	return md
}

// sendableTrailer reports whether key and value may go out as an HTTP
// trailer: a valid header that is not one of Ferry's own or one HTTP
// forbids in a trailer.
func sendableTrailer(k string, vs []string) bool {
	if !validHeaderName(k) || reserved(k) || strings.EqualFold(k, StreamEndTrailer) || strings.EqualFold(k, ErrorTrailer) {
		return false
	}
	for _, v := range vs {
		if !validHeaderValue(v) {
			return false
		}
	}
	return true
}
