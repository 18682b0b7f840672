package dashboard

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/ferry-go/ferry/registry"
)

// Catalog is the body of GET <prefix>api/catalog.
type Catalog struct {
	// Version grows with every change the dashboard sees (also served as
	// the ETag, so a page polling with If-None-Match gets 304 until then).
	Version uint64 `json:"version"`
	// Updated is when the registry last gave a set of instances.
	Updated time.Time `json:"updated"`
	// RegistryError is the registry's last failure while it is failing.
	RegistryError string           `json:"registry_error,omitempty"`
	Services      []CatalogService `json:"services"`
}

// CatalogService is one service in Catalog.
type CatalogService struct {
	Name      string            `json:"name"`
	Instances []CatalogInstance `json:"instances"`
	Endpoints []CatalogEndpoint `json:"endpoints"`
	Problems  []string          `json:"problems,omitempty"`
}

// CatalogInstance is one instance in Catalog; Since is when the dashboard
// first saw it in the registry.
type CatalogInstance struct {
	ID        string              `json:"id"`
	Version   string              `json:"version,omitempty"`
	Since     time.Time           `json:"since"`
	Endpoints []registry.Endpoint `json:"endpoints"`
}

// CatalogEndpoint is one endpoint in Catalog.
type CatalogEndpoint struct {
	Name       string   `json:"name"`
	Routes     []string `json:"routes,omitempty"`
	Idempotent bool     `json:"idempotent"`
	// Schemas is true when the service publishes its JSON Schemas.
	Schemas bool `json:"schemas"`
}

func (d *Dashboard) apiCatalog(w http.ResponseWriter, r *http.Request) {
	st := d.catalog()
	etag := `"` + strconv.FormatUint(st.version, 10) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	out := Catalog{Version: st.version, Updated: st.updated, Services: []CatalogService{}}
	if st.err != nil {
		out.RegistryError = st.err.Error()
	}
	for _, s := range services(st) {
		cs := CatalogService{Name: s.Name, Problems: s.Problems, Instances: []CatalogInstance{}, Endpoints: []CatalogEndpoint{}}
		for _, in := range s.Instances {
			cs.Instances = append(cs.Instances, CatalogInstance{ID: in.ID, Version: in.Version, Since: in.Since, Endpoints: in.Endpoints})
		}
		for _, e := range s.Endpoints {
			cs.Endpoints = append(cs.Endpoints, CatalogEndpoint{Name: e.Name, Routes: e.Routes, Idempotent: e.Idempotent,
				Schemas: e.Request != nil || e.Response != nil})
		}
		out.Services = append(out.Services, cs)
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Dashboard) apiFigures(w http.ResponseWriter, r *http.Request) {
	f := d.compute(time.Now(), endpointNames(services(d.catalog())))
	if f.Endpoints == nil {
		f.Endpoints = []EndpointFigures{}
	}
	writeJSON(w, http.StatusOK, f)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding the reply: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
