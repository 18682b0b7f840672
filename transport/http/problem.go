package http

import (
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
)

// ProblemContentType is the media type of error bodies (RFC 9457).
const ProblemContentType = "application/problem+json"

// StatusClientClosedRequest is the status sent for a Canceled call; it is
// not in the IANA registry but is the common convention (nginx, gRPC
// gateways, Connect).
const StatusClientClosedRequest = 499

// problem is the RFC 9457 body with Ferry's extension members: "code" (the
// canonical code name), "reason", "domain", "metadata" and "details".
type problem struct {
	Type     string            `json:"type"`
	Title    string            `json:"title"`
	Status   int               `json:"status"`
	Detail   string            `json:"detail,omitempty"`
	Code     string            `json:"code"`
	Reason   string            `json:"reason,omitempty"`
	Domain   string            `json:"domain,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Details  []errs.Detail     `json:"details,omitempty"`
	// Trailer is a failed stream's trailer (see problemJSON).
	Trailer transport.Metadata `json:"trailer,omitempty"`
}

// statusText is http.StatusText that also names 499.
func statusText(status int) string {
	if status == StatusClientClosedRequest {
		return "Client Closed Request"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Status " + strconv.Itoa(status)
}

// writeProblem writes e as a problem+json response with the given status.
// Reply headers the handler already set stay in place.
func writeProblem(w http.ResponseWriter, status int, e *errs.Error) {
	body, status := problemJSON(status, e, nil)
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", ProblemContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// problemJSON is the problem+json document of e with the given status, and
// the status to send with it. trailer, when not empty, is added as the
// "trailer" extension member: a stream that failed after its first message
// carries its trailer there (SSE, WebSocket).
func problemJSON(status int, e *errs.Error, trailer transport.Metadata) ([]byte, int) {
	body, err := codec.MarshalJSON(problem{
		Type:     "about:blank",
		Title:    statusText(status),
		Status:   status,
		Detail:   e.Message(),
		Code:     e.Code().String(),
		Reason:   e.Reason(),
		Domain:   e.Domain(),
		Metadata: e.Metadata(),
		Details:  e.Details(),
		Trailer:  trailer,
	})
	if err != nil { // only reachable with details json cannot encode, which errs.Detail rules out
		return []byte(`{"type":"about:blank","status":500,"code":"internal"}`), http.StatusInternalServerError
	}
	return body, status
}

// WriteError writes err as the HTTP transport answers a failed call: the
// status of its code (errs.HTTPStatus) and an RFC 9457 problem+json body
// with Ferry's members (code, reason, domain, metadata, details) — for
// handlers outside the transport, such as the gateway's, that must answer
// exactly as a Ferry service does.
func WriteError(w http.ResponseWriter, err error) { writeError(w, err) }

// WriteProblem is WriteError with the status given: for answers whose
// status is HTTP's own rather than the code's, as the transport sends 405
// (Unimplemented) for a method a route does not take and 413
// (ResourceExhausted) for a body over the limit.
func WriteProblem(w http.ResponseWriter, status int, err error) {
	writeProblem(w, status, errs.FromError(err))
}

// writeError writes err, as seen by a caller, with the status of its code.
func writeError(w http.ResponseWriter, err error) {
	e := errs.FromError(err)
	writeProblem(w, errs.HTTPStatus(e.Code()), e)
}

// parseProblem turns an error response into an *errs.Error: the body's
// "code" member when it has one (a problem+json body, or Ferry's plain
// error JSON with "message"), else the code that best fits the status.
func parseProblem(status int, contentType string, body []byte) *errs.Error {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == ProblemContentType || mt == "application/json" || strings.HasSuffix(mt, "+json") {
		var p struct {
			Code     string            `json:"code"`
			Detail   string            `json:"detail"`
			Message  string            `json:"message"`
			Reason   string            `json:"reason"`
			Domain   string            `json:"domain"`
			Metadata map[string]string `json:"metadata"`
			Details  []errs.Detail     `json:"details"`
		}
		if json.Unmarshal(body, &p) == nil {
			if c, ok := errs.ParseCode(p.Code); ok {
				msg := p.Detail
				if msg == "" {
					msg = p.Message
				}
				e := errs.New(c, msg)
				if len(p.Details) > 0 {
					e = e.WithDetails(p.Details...)
				}
				return withInfo(e, p.Reason, p.Domain, p.Metadata)
			}
		}
	}
	return errs.New(errs.FromHTTPStatus(status), statusText(status))
}

// withInfo returns e with the reason, domain and metadata a wire error
// carried.
func withInfo(e *errs.Error, reason, domain string, md map[string]string) *errs.Error {
	if reason != "" {
		e = e.WithReason(reason)
	}
	if domain != "" {
		e = e.WithDomain(domain)
	}
	if len(md) > 0 {
		kv := make([]string, 0, 2*len(md))
		for k, v := range md {
			kv = append(kv, k, v)
		}
		e = e.WithMetadata(kv...)
	}
	return e
}
