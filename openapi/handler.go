package openapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/server"
)

// Handler returns an http.Handler that serves the document of srv
// (Document with opts) to GET and HEAD, meant for GET /openapi.json
// (Path). The document is built on the first request, once: endpoints
// registered later are not in it, so mount it when registration is done.
// It carries a strong ETag, so a client that sends If-None-Match gets 304
// Not Modified, and Cache-Control: no-cache, so clients revalidate rather
// than keep a document a new version of the service replaced. Other
// methods are answered 405; a server that has no document (see Document)
// is answered 500, both as application/problem+json.
func Handler(srv *server.Server, opts ...Option) http.Handler {
	return &handler{build: sync.OnceValues(func() (*built, error) {
		doc, err := Document(srv, opts...)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(doc)
		return &built{doc: doc, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}, nil
	})}
}

type handler struct {
	build func() (*built, error)
}

type built struct {
	doc  []byte
	etag string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		problem(w, http.StatusMethodNotAllowed, errs.Newf(errs.Unimplemented,
			"method %s is not allowed on %q; allowed: GET, HEAD", r.Method, r.URL.Path))
		return
	}
	b, err := h.build()
	if err != nil {
		problem(w, http.StatusInternalServerError, errs.Newf(errs.Internal, "no OpenAPI document: %v", err))
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("ETag", b.etag)
	// ServeContent answers If-None-Match (304), HEAD and ranges.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b.doc))
}

// problem writes e as the HTTP transport writes errors (which this package
// does not import: the transport is to serve the document).
func problem(w http.ResponseWriter, status int, e *errs.Error) {
	body, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail,omitempty"`
		Code   string `json:"code"`
	}{"about:blank", http.StatusText(status), status, e.Message(), e.Code().String()})
	w.Header().Set("Content-Type", problemType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
