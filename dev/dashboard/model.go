package dashboard

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ferry-go/ferry/registry"
)

// serviceView is one service as the pages show it.
type serviceView struct {
	Name      string
	Color     int // index of the service's colour in the palette
	Instances []instanceView
	Endpoints []*endpointView
	Versions  []string
	// Problems are what could not be read of the instances' metadata.
	Problems []string
	// Open is true when an instance lists no endpoints: it may be called
	// on any name.
	Open bool
}

type instanceView struct {
	ID, Version string
	Since       time.Time
	Endpoints   []registry.Endpoint
	Metadata    []kv // other than Ferry's own keys
}

type kv struct{ Key, Value string }

// endpointView is one endpoint of a service.
type endpointView struct {
	Service, Name string
	Routes        []string
	Params        []kv
	Idempotent    bool
	// Schemas: nil when the service does not publish them (registry.MetadataSchemas).
	Request, Response *schemaView
	// RawSchemas holds the request schema for the explorer's skeleton.
	requestRaw json.RawMessage
	// RequestType and ResponseType are the Go types from $SRV.INFO, if known.
	RequestType, ResponseType string
	// Instances counts the instances that list the endpoint.
	Instances int
}

// Key is "service/Endpoint".
func (e *endpointView) Key() string { return e.Service + "/" + e.Name }

// ferryKeys are the metadata keys the pages show in their own way.
var ferryKeys = map[string]bool{
	registry.MetadataEndpoints: true, registry.MetadataRoutes: true,
	registry.MetadataIdempotent: true, registry.MetadataSchemas: true, registry.MetadataTransports: true,
}

// schemaDoc is what registry.MetadataSchemas says of one endpoint.
type schemaDoc struct {
	Request  json.RawMessage `json:"request"`
	Response json.RawMessage `json:"response"`
}

// services builds the views of every service in the catalogue, sorted by
// name. It never fails: what it cannot read it reports in Problems.
func services(st catalogState) []*serviceView {
	by := map[string]*serviceView{}
	var order []string
	for _, in := range st.instances {
		s := by[in.Service]
		if s == nil {
			s = &serviceView{Name: in.Service, Color: colorOf(in.Service)}
			by[in.Service] = s
			order = append(order, in.Service)
		}
		iv := instanceView{ID: in.ID, Version: in.Version, Since: st.since[in.Service+"/"+in.ID], Endpoints: in.Endpoints}
		for _, k := range slices.Sorted(maps.Keys(in.Metadata)) {
			if !ferryKeys[k] {
				iv.Metadata = append(iv.Metadata, kv{k, in.Metadata[k]})
			}
		}
		s.Instances = append(s.Instances, iv)
		if in.Version != "" && !slices.Contains(s.Versions, in.Version) {
			s.Versions = append(s.Versions, in.Version)
		}
	}
	slices.Sort(order)
	out := make([]*serviceView, 0, len(order))
	for _, name := range order {
		s := by[name]
		s.Endpoints = endpoints(s, st.instances)
		out = append(out, s)
	}
	return out
}

// endpoints merges what the service's instances say of their endpoints:
// the union of the names; routes, params and schemas from the first
// instance (newest version first) that gives them; idempotent when every
// instance listing the endpoint says so (as client.Client decides).
func endpoints(s *serviceView, all []registry.Instance) []*endpointView {
	var ins []registry.Instance
	for _, in := range all {
		if in.Service == s.Name {
			ins = append(ins, in)
		}
	}
	slices.SortStableFunc(ins, func(a, b registry.Instance) int { return cmp.Compare(b.Version, a.Version) })
	by := map[string]*endpointView{}
	idem := map[string]bool{}
	problem := func(format string, args ...any) {
		p := fmt.Sprintf(format, args...)
		if !slices.Contains(s.Problems, p) {
			s.Problems = append(s.Problems, p)
		}
	}
	for _, in := range ins {
		names, ok := in.EndpointNames()
		if !ok {
			s.Open = true
			continue
		}
		for _, n := range names {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			e := by[n]
			if e == nil {
				e = &endpointView{Service: s.Name, Name: n}
				by[n] = e
				idem[n] = true
			}
			e.Instances++
			idem[n] = idem[n] && in.Idempotent(n)
		}
		infos, err := in.RouteInfos()
		if err != nil {
			problem("instance %s: %s is not valid JSON", in.ID, registry.MetadataRoutes)
		}
		for ep, info := range infos {
			if e := by[ep]; e != nil && e.Routes == nil && e.Params == nil {
				e.Routes = slices.Clone(info.Routes)
				for _, k := range slices.Sorted(maps.Keys(info.Params)) {
					e.Params = append(e.Params, kv{k, info.Params[k]})
				}
			}
		}
		if raw := in.Metadata[registry.MetadataSchemas]; raw != "" {
			var docs map[string]schemaDoc
			if err := json.Unmarshal([]byte(raw), &docs); err != nil {
				problem("instance %s: %s is not valid JSON", in.ID, registry.MetadataSchemas)
			}
			for ep, doc := range docs {
				e := by[ep]
				if e == nil || e.Request != nil || e.Response != nil {
					continue
				}
				if len(doc.Request) > 0 {
					e.Request, e.requestRaw = parseSchema(doc.Request), doc.Request
				}
				if len(doc.Response) > 0 {
					e.Response = parseSchema(doc.Response)
				}
			}
		}
	}
	out := make([]*endpointView, 0, len(by))
	for _, n := range slices.Sorted(maps.Keys(by)) {
		e := by[n]
		e.Idempotent = idem[n]
		out = append(out, e)
	}
	return out
}

// colorOf picks one of the palette's 8 colours for a service.
func colorOf(service string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(service))
	return int(h.Sum32() % 8)
}

// find returns the service and endpoint named, if the catalogue has them.
func find(svcs []*serviceView, service, endpoint string) (*serviceView, *endpointView) {
	for _, s := range svcs {
		if s.Name != service {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Name == endpoint {
				return s, e
			}
		}
		return s, nil
	}
	return nil, nil
}

// endpointNames maps each service to its endpoint names, for the figures.
func endpointNames(svcs []*serviceView) map[string][]string {
	out := map[string][]string{}
	for _, s := range svcs {
		for _, e := range s.Endpoints {
			out[s.Name] = append(out[s.Name], e.Name)
		}
	}
	return out
}
