package openapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/schema"
)

// problemType is the media type of every error reply (RFC 9457).
const problemType = "application/problem+json"

// TimeoutHeader is the request header that carries a call's deadline, as
// the HTTP transport reads it.
const TimeoutHeader = "Ferry-Timeout-Ms"

// Component names of the shared parts.
const (
	timeoutParam = "FerryTimeoutMs"
	defaultError = "Error"
)

// problemSchema describes the body the HTTP transport writes for every
// error: RFC 9457's members and Ferry's (code, reason, domain, metadata,
// details), those that may be empty left out of "required". RFC 9457 lets
// a problem type add members, so the object is left open.
func problemSchema() *schema.Schema {
	str := func(desc string) *schema.Schema {
		return &schema.Schema{Type: []string{"string"}, Description: desc}
	}
	codes := []any{}
	for _, c := range errs.Codes() {
		codes = append(codes, c.String())
	}
	detail := &schema.Schema{
		Type: []string{"object"},
		Properties: []schema.Property{
			{Name: "field", Schema: str("The request field the fact is about, by its JSON path (\"items[0].sku\"); absent when it is about no one field.")},
			{Name: "reason", Schema: str("What is wrong with it.")},
		},
		Required:             []string{"reason"},
		AdditionalProperties: schema.False(),
	}
	return &schema.Schema{
		Type:        []string{"object"},
		Description: "An error, as an RFC 9457 problem details object with Ferry's members: the canonical code, and the facts the handler attached.",
		Properties: []schema.Property{
			{Name: "type", Schema: &schema.Schema{Type: []string{"string"}, Format: "uri-reference", Const: "about:blank",
				Description: "Always about:blank: the status and the code say what happened."}},
			{Name: "title", Schema: str("The status's reason phrase, such as \"Not Found\".")},
			{Name: "status", Schema: &schema.Schema{Type: []string{"integer"}, Minimum: "400", Maximum: "599",
				Description: "The HTTP status of the reply."}},
			{Name: "detail", Schema: str("The error's message, for the caller.")},
			{Name: "code", Schema: &schema.Schema{Type: []string{"string"}, Enum: codes,
				Description: "The canonical error code (the gRPC set, in snake_case)."}},
			{Name: "reason", Schema: str("A machine-readable reason, UPPER_SNAKE_CASE and unique within its domain.")},
			{Name: "domain", Schema: str("The domain of the reason, such as the service's name.")},
			{Name: "metadata", Schema: &schema.Schema{Type: []string{"object"}, AdditionalProperties: &schema.Schema{Type: []string{"string"}},
				Description: "Facts about the reason, as string pairs."}},
			{Name: "details", Schema: &schema.Schema{Type: []string{"array"}, Items: detail,
				Description: "Facts about the error, most often one per invalid request field."}},
		},
		Required: []string{"type", "title", "status", "code"},
	}
}

// errorStatus is one error status a call can be answered with, and the
// codes that give it.
type errorStatus struct {
	status   int
	name     string // of its component response
	codes    []string
	bodyOnly bool // only for operations that read a body
	note     string
}

func (es errorStatus) key() string { return strconv.Itoa(es.status) }

// response is the component response: a problem with this status and one
// of these codes.
func (es errorStatus) response(problem string) *response {
	codes := make([]any, len(es.codes))
	for i, c := range es.codes {
		codes[i] = c
	}
	desc := http.StatusText(es.status) + " (code " + strings.Join(es.codes, ", ") + ")."
	if es.note != "" {
		desc += " " + es.note
	}
	return &response{
		Description: desc,
		Content: map[string]*mediaType{problemType: {Schema: &schema.Schema{
			AllOf: []*schema.Schema{refTo(problem), {
				Properties: []schema.Property{
					{Name: "status", Schema: &schema.Schema{Const: json.Number(es.key())}},
					{Name: "code", Schema: &schema.Schema{Enum: codes}},
				},
			}},
		}}},
	}
}

var statusNotes = map[int]string{
	http.StatusBadRequest: "A body or parameter that does not decode, an invalid " + TimeoutHeader +
		" header, or a request that fails validation: details name the fields.",
	http.StatusNotFound:              "The handler found no such thing, or no route matched.",
	http.StatusRequestEntityTooLarge: "The body exceeds the server's limit (4 MiB unless configured).",
	http.StatusUnsupportedMediaType:  "A Content-Type other than JSON or protobuf, or a compressed body.",
	http.StatusTooManyRequests:       "Overloaded or rate limited: try again later.",
	http.StatusServiceUnavailable:    "The service cannot take the call now, such as while it shuts down: try again.",
	http.StatusGatewayTimeout:        "The call's deadline passed.",
}

// errorStatuses lists the statuses of errs.HTTPStatus, with their codes,
// then the two the transport adds for bodies (413 and 415), by status.
// 499 (the caller went away) reaches no caller; it is left to "default".
func errorStatuses() []errorStatus {
	by := map[int][]string{}
	for _, c := range errs.Codes() {
		st := errs.HTTPStatus(c)
		by[st] = append(by[st], c.String())
	}
	var out []errorStatus
	for st, codes := range by {
		if st < 400 || st > 599 || st == 499 {
			continue
		}
		out = append(out, errorStatus{status: st, codes: codes})
	}
	out = append(out,
		errorStatus{status: http.StatusRequestEntityTooLarge, codes: []string{errs.ResourceExhausted.String()}, bodyOnly: true},
		errorStatus{status: http.StatusUnsupportedMediaType, codes: []string{errs.InvalidArgument.String()}, bodyOnly: true},
	)
	slices.SortFunc(out, func(a, b errorStatus) int { return a.status - b.status })
	for i := range out {
		out[i].name = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
				return r
			}
			return -1
		}, http.StatusText(out[i].status))
		out[i].note = statusNotes[out[i].status]
	}
	return out
}

// timeoutParameter is the optional deadline header.
func timeoutParameter() *parameter {
	return &parameter{
		Name: TimeoutHeader,
		In:   "header",
		Description: "The call's deadline, in whole milliseconds from now. The server cuts it to its maximum (5 minutes " +
			"unless configured) and applies its default (30 seconds unless configured) when the header is absent.",
		Schema: &schema.Schema{Type: []string{"integer"}, Minimum: "1", Examples: []any{json.Number("30000")}},
	}
}
