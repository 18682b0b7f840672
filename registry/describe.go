package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ferry-go/ferry/server"
)

// Describe returns the metadata a Ferry service publishes about srv's
// endpoints: MetadataEndpoints (every endpoint, sorted; "" when there is
// none), MetadataRoutes (when an endpoint has REST routes or is idempotent)
// and MetadataIdempotent (when an endpoint is). ferry.Service registers it
// as Instance.Metadata, and the NATS transport answers $SRV.INFO with it as
// the service identity's metadata, so a registry and NATS discovery
// (registry/natssrv) describe a service alike. Each call returns a new map.
//
// It lives here, beside the readers of these keys (EndpointNames,
// RouteInfos, Idempotent), so that one file owns the format; package
// server does not import registry.
func Describe(srv *server.Server) (map[string]string, error) {
	var names, idem []string
	routes := map[string]RouteInfo{}
	for _, ep := range srv.Endpoints() {
		names = append(names, ep.Name)
		if ep.Idempotent {
			idem = append(idem, ep.Name)
		}
		if ep.Idempotent || len(ep.Routes) > 0 {
			ri := RouteInfo{Params: ep.ParamKinds()}
			for _, r := range ep.Routes {
				ri.Routes = append(ri.Routes, r.Pattern)
			}
			routes[ep.Name] = ri
		}
	}
	slices.Sort(names)
	md := map[string]string{MetadataEndpoints: strings.Join(names, ",")}
	if len(routes) > 0 {
		b, err := json.Marshal(routes)
		if err != nil {
			return nil, fmt.Errorf("registry: describe the routes of %s: %w", srv.Name(), err)
		}
		md[MetadataRoutes] = string(b)
	}
	if len(idem) > 0 {
		slices.Sort(idem)
		md[MetadataIdempotent] = strings.Join(idem, ",")
	}
	return md, nil
}
