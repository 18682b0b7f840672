package traces

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// DefaultMaxBody is the largest request body a Receiver reads, compressed
// or not, unless WithMaxBody says otherwise.
const DefaultMaxBody = 16 << 20

// The request encodings OTLP/HTTP allows.
const (
	contentTypeProto = "application/x-protobuf"
	contentTypeJSON  = "application/json"
)

// ReceiverOption configures a Receiver.
type ReceiverOption func(*Receiver)

// WithMaxBody sets the largest request body the receiver reads, before and
// after gzip decompression (DefaultMaxBody if n is 0 or less); a larger one
// is answered 413.
func WithMaxBody(n int64) ReceiverOption {
	return func(rc *Receiver) {
		if n > 0 {
			rc.maxBody = n
		}
	}
}

// Receiver is an OTLP/HTTP trace receiver: an http.Handler for the
// exporters' POST /v1/traces that puts every span it receives in a Store.
//
// It takes an ExportTraceServiceRequest encoded as protobuf
// (Content-Type: application/x-protobuf) or as OTLP/JSON (application/json:
// the protobuf JSON mapping, trace and span ids in hex as the OTLP spec
// writes them or in base64 as protojson does), plain or with
// Content-Encoding: gzip, and answers as the spec says: 200 with an
// ExportTraceServiceResponse in the request's encoding (its partial_success
// counting the spans not kept: without a valid trace or span id, or over
// the store's per-trace limit); 400 for a body that does not decode, 413
// for one over the size limit, each with a google.rpc.Status in the
// request's encoding whose message says what is wrong; 415 for another
// content type or encoding and 405 for another method, in plain text.
//
// It serves any path: mount it at /v1/traces.
type Receiver struct {
	store   *Store
	maxBody int64
	fwd     *forwarder // WithForward
}

// NewReceiver returns a receiver that adds the spans it receives to store.
func NewReceiver(store *Store, opts ...ReceiverOption) *Receiver {
	rc := &Receiver{store: store, maxBody: DefaultMaxBody}
	for _, o := range opts {
		o(rc)
	}
	return rc
}

// ServeHTTP handles one export request.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "OTLP/HTTP takes POST", http.StatusMethodNotAllowed)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var asJSON bool
	switch mt {
	case contentTypeProto, "application/protobuf":
	case contentTypeJSON:
		asJSON = true
	default:
		http.Error(w, fmt.Sprintf("content type %q: OTLP/HTTP takes %s or %s", mt, contentTypeProto, contentTypeJSON), http.StatusUnsupportedMediaType)
		return
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if enc != "" && enc != "identity" && enc != "gzip" {
		http.Error(w, fmt.Sprintf("content encoding %q: want gzip or none", enc), http.StatusUnsupportedMediaType)
		return
	}
	body, status, err := rc.read(w, r, enc == "gzip")
	if err == nil {
		var req coltracepb.ExportTraceServiceRequest
		if err = decode(body, asJSON, &req); err == nil {
			rc.export(w, &req, asJSON)
			return
		}
		status = http.StatusBadRequest
	}
	writeStatus(w, asJSON, status, err.Error())
}

// read reads the request body, unzipping it if gz, and says with which
// status to fail if it cannot.
func (rc *Receiver) read(w http.ResponseWriter, r *http.Request, gz bool) ([]byte, int, error) {
	tooLarge := fmt.Errorf("request body over the limit of %d bytes", rc.maxBody)
	if r.ContentLength > rc.maxBody {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	var in io.Reader = http.MaxBytesReader(w, r.Body, rc.maxBody)
	if gz {
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, readStatus(err), fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		in = zr
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 && !gz {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(in, rc.maxBody+1))
	switch {
	case err != nil && readStatus(err) == http.StatusRequestEntityTooLarge, n > rc.maxBody:
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	case err != nil && gz:
		return nil, http.StatusBadRequest, fmt.Errorf("gzip body: %w", err)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %w", err)
	}
	return buf.Bytes(), 0, nil
}

// readStatus is 413 for an error of the body size limit, 400 for others.
func readStatus(err error) int {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// decode reads an ExportTraceServiceRequest in protobuf or OTLP/JSON.
func decode(body []byte, asJSON bool, req *coltracepb.ExportTraceServiceRequest) error {
	if !asJSON {
		if err := proto.Unmarshal(body, req); err != nil {
			return fmt.Errorf("protobuf body is not an ExportTraceServiceRequest: %w", err)
		}
		return nil
	}
	// OTLP/JSON receivers must ignore fields they do not know.
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, req); err != nil {
		return fmt.Errorf("JSON body is not an ExportTraceServiceRequest: %w", err)
	}
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				fixHexIDs(sp)
			}
		}
	}
	return nil
}

// fixHexIDs turns the ids of a span decoded by protojson from OTLP/JSON
// back into the ids the sender meant.
//
// OTLP/JSON writes trace and span ids in hex, where the protobuf JSON
// mapping protojson follows reads bytes as base64: the 32 hex digits of a
// trace id arrive as the 24 bytes they decode to as base64, the 16 of a span
// id as 12. Every hex digit is a base64 character and both lengths are
// multiples of 4, so encoding those bytes in base64 again gives the digits
// back exactly. Ids of the right length (sent in base64) stay as they are.
func fixHexIDs(sp *tracepb.Span) {
	sp.TraceId = fromHex(sp.TraceId, 16)
	sp.SpanId = fromHex(sp.SpanId, 8)
	sp.ParentSpanId = fromHex(sp.ParentSpanId, 8)
	for _, l := range sp.GetLinks() {
		l.TraceId = fromHex(l.TraceId, 16)
		l.SpanId = fromHex(l.SpanId, 8)
	}
}

// fromHex is the n-byte id whose hex digits b holds as base64-decoded bytes,
// or b if it holds none.
func fromHex(b []byte, n int) []byte {
	if len(b) != n*3/2 {
		return b
	}
	id, err := hex.DecodeString(base64.StdEncoding.EncodeToString(b))
	if err != nil {
		return b
	}
	return id
}

// export stores the request's spans and answers 200.
func (rc *Receiver) export(w http.ResponseWriter, req *coltracepb.ExportTraceServiceRequest, asJSON bool) {
	if rc.fwd != nil {
		rc.fwd.forward(req)
	}
	spans, invalid := flatten(req.GetResourceSpans())
	dropped := rc.store.Add(spans)
	var resp coltracepb.ExportTraceServiceResponse
	if invalid > 0 || dropped > 0 {
		var why []string
		if invalid > 0 {
			why = append(why, strconv.Itoa(invalid)+" without a 16-byte trace id and an 8-byte span id")
		}
		if dropped > 0 {
			why = append(why, strconv.Itoa(dropped)+" over the limit of "+strconv.Itoa(rc.store.maxSpans)+" spans per trace")
		}
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{
			RejectedSpans: int64(invalid + dropped),
			ErrorMessage:  "spans not kept: " + strings.Join(why, "; "),
		}
	}
	write(w, asJSON, http.StatusOK, &resp)
}

// writeStatus answers a failed request with a google.rpc.Status, as OTLP/HTTP
// says to.
func writeStatus(w http.ResponseWriter, asJSON bool, status int, msg string) {
	const invalidArgument, resourceExhausted = 3, 8 // google.rpc.Code
	code := int32(invalidArgument)
	if status == http.StatusRequestEntityTooLarge {
		code = resourceExhausted
	}
	// A decoding error may quote the body, which need not be UTF-8; the
	// message must be, or the Status does not marshal.
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	write(w, asJSON, status, &statuspb.Status{Code: code, Message: "traces: " + msg})
}

// write answers with m in the request's encoding.
func write(w http.ResponseWriter, asJSON bool, status int, m proto.Message) {
	ct, marshal := contentTypeProto, proto.Marshal
	if asJSON {
		ct, marshal = contentTypeJSON, protojson.Marshal
	}
	b, err := marshal(m)
	if err != nil { // these messages always marshal; say so if one does not
		http.Error(w, "traces: encoding the response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
