package traces

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/ferry-go/ferry/errs"
	fhttp "github.com/ferry-go/ferry/transport/http"
)

// List is the body of GET /traces.
type List struct {
	// Version is the store's Version when the list was taken.
	Version uint64    `json:"version"`
	Traces  []Summary `json:"traces"`
}

// API returns the JSON API a dashboard reads the store through:
//
//   - GET /traces: a List, the newest trace first. Its ETag is the store's
//     version, so a page that polls with If-None-Match is answered 304,
//     without a body, until a span arrives.
//   - GET /traces/{id}: one Trace with its spans, for the waterfall; 404
//     with an RFC 9457 problem (code not_found) for a trace the store does
//     not hold.
//
// Mount it under a prefix with http.StripPrefix.
func API(store *Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /traces", func(w http.ResponseWriter, r *http.Request) {
		list, version := store.snapshot()
		etag := `"` + strconv.FormatUint(version, 10) + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "no-cache")
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		writeJSON(w, List{Version: version, Traces: list})
	})
	mux.HandleFunc("GET /traces/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		t, ok := store.Get(id)
		if !ok {
			fhttp.WriteProblem(w, http.StatusNotFound, errs.New(errs.NotFound, "no trace "+strconv.Quote(id)+" in the store"))
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		writeJSON(w, t)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil { // the store holds only values JSON can carry
		fhttp.WriteError(w, errs.New(errs.Internal, "encoding the reply: "+err.Error()))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}
