package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ferry-go/ferry/schema"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
)

// MetadataSchemas is the Instance.Metadata key under which a Ferry service
// publishes the JSON Schemas of its endpoints (package schema): a JSON
// object {endpoint: {"request": <JSON Schema 2020-12>, "response": <JSON
// Schema>}}, whose property schemas carry "x-validate" (the field's
// validator tag, verbatim). Dashboards and API explorers read it; routing
// does not. An endpoint whose types have no schema is left out, and the
// key is left out when the whole would exceed MaxSchemasMetadata.
const MetadataSchemas = "ferry.schemas"

// MaxSchemasMetadata bounds MetadataSchemas, so that a service with huge
// types still fits a registry entry and a NATS $SRV.INFO reply.
const MaxSchemasMetadata = 256 << 10

// Describe returns the metadata a Ferry service publishes about srv's
// endpoints: MetadataEndpoints (every endpoint, sorted; "" when there is
// none), MetadataStreams (when an endpoint streams), MetadataRoutes (when an
// endpoint has REST routes or is idempotent),
// MetadataIdempotent (when an endpoint is) and MetadataSchemas. ferry.Service registers it
// as Instance.Metadata, and the NATS transport answers $SRV.INFO with it as
// the service identity's metadata, so a registry and NATS discovery
// (registry/natssrv) describe a service alike. Each call returns a new map.
//
// It lives here, beside the readers of these keys (EndpointNames,
// RouteInfos, Idempotent), so that one file owns the format; package
// server does not import registry.
func Describe(srv *server.Server) (map[string]string, error) {
	var names, idem, streams []string
	routes := map[string]RouteInfo{}
	schemas := map[string]schema.Endpoint{}
	for _, ep := range srv.Endpoints() {
		names = append(names, ep.Name)
		if ep.Kind != transport.Unary {
			streams = append(streams, ep.Name+"="+ep.Kind.String())
		}
		if doc, err := schema.ForEndpoint(ep.RequestType, ep.ResponseType); err == nil {
			schemas[ep.Name] = doc
		}
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
	if len(schemas) > 0 {
		if b, err := json.Marshal(schemas); err == nil && len(b) <= MaxSchemasMetadata {
			md[MetadataSchemas] = string(b)
		}
	}
	if sd := srv.ProtoService(); sd != nil {
		md[MetadataGRPCService] = string(sd.FullName())
	}
	if len(streams) > 0 {
		slices.Sort(streams)
		md[MetadataStreams] = strings.Join(streams, ",")
	}
	if len(idem) > 0 {
		slices.Sort(idem)
		md[MetadataIdempotent] = strings.Join(idem, ",")
	}
	return md, nil
}
