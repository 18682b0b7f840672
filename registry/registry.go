// Package registry is Ferry's service discovery: services register the
// addresses their transports listen on, and clients look them up and watch
// them change.
//
// The interfaces are small and context-first. A Registrar is what a
// Service uses; a Discovery is what a client uses; an implementation
// usually provides both. Implementations live in sub-packages: memory (in
// process), nats (a JetStream key-value bucket whose entries expire
// after a TTL unless heartbeated: the distributed default), static (a fixed list from config), dns (SRV/A
// records, e.g. a Kubernetes headless service) and natssrv (NATS $SRV
// discovery, for services that register nowhere). Each passes
// ferrytest.RegistryConformance or its read-only part, and each is also a
// Catalog, whose WatchAll follows every service at once. Describe builds
// the metadata a Ferry service publishes about itself; Feed and Equal are
// what an implementation builds its Watcher from.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/ferry-go/ferry/transport"
)

// Instance is one running instance of a service.
type Instance struct {
	// ID is unique among the service's instances (e.g. a NUID).
	ID string `json:"id"`
	// Service is the service name.
	Service string `json:"service"`
	// Version is the service version.
	Version string `json:"version,omitempty"`
	// Endpoints are the addresses the instance serves on, one per transport.
	Endpoints []Endpoint `json:"endpoints"`
	// Metadata holds free-form labels (zone, build, ...).
	Metadata map[string]string `json:"metadata,omitempty"`
}

// MetadataIdempotent is the Instance.Metadata key under which a Ferry
// service lists its idempotent endpoints (server.WithIdempotent),
// comma-separated: "Get,Hello". client.Client retries failures of calls to
// them that may have been processed, as it would for an endpoint configured
// idempotent.
const MetadataIdempotent = "ferry.idempotent"

// Clone returns a copy of in that shares no memory with it.
func (in Instance) Clone() Instance {
	in.Endpoints = slices.Clone(in.Endpoints)
	in.Metadata = maps.Clone(in.Metadata)
	return in
}

// Clone returns a copy of ins that shares no memory with it, as a
// registry hands out so that callers cannot change what it holds.
func Clone(ins []Instance) []Instance {
	out := make([]Instance, len(ins))
	for i, in := range ins {
		out[i] = in.Clone()
	}
	return out
}

// Equal reports whether a and b hold the same instances in the same order,
// every field alike: ID, Service, Version, Endpoints and Metadata (a nil
// slice or map equals an empty one). A registry keeps its sets sorted, so
// Equal tells whether a set differs from one a Watcher returned before.
func Equal(a, b []Instance) bool {
	return slices.EqualFunc(a, b, func(x, y Instance) bool {
		return x.ID == y.ID && x.Service == y.Service && x.Version == y.Version &&
			slices.Equal(x.Endpoints, y.Endpoints) && maps.Equal(x.Metadata, y.Metadata)
	})
}

// MetadataEndpoints is the Instance.Metadata key under which a Ferry
// service lists all its endpoints, comma-separated: "Fail,Hello" (see
// Describe). An API gateway routes exactly these; an instance without the
// key (registered by hand, or by something other than Ferry) may be called
// on any name, while one whose list is empty serves none.
const MetadataEndpoints = "ferry.endpoints"

// EndpointNames returns the endpoints in lists (MetadataEndpoints); ok is
// false when it has no such key. An empty list is no names and ok true.
func (in Instance) EndpointNames() (names []string, ok bool) {
	list, ok := in.Metadata[MetadataEndpoints]
	switch {
	case !ok:
		return nil, false
	case list == "":
		return nil, true
	}
	return strings.Split(list, ","), true
}

// MetadataStreams is the Instance.Metadata key under which a Ferry service
// lists its streaming endpoints with their kinds, comma-separated
// name=kind pairs: "Watch=server_streaming,Chat=bidi_streaming"
// (transport.StreamKind's names). Endpoints it does not list are unary.
// `ferry call` opens a listed endpoint as a stream; a gateway knows not to
// call it as a unary one.
const MetadataStreams = "ferry.streams"

// StreamKinds returns the streaming endpoints MetadataStreams lists, by
// name, with their kinds. Unknown kinds are left out.
func (in Instance) StreamKinds() map[string]transport.StreamKind {
	list := in.Metadata[MetadataStreams]
	if list == "" {
		return nil
	}
	out := map[string]transport.StreamKind{}
	for _, pair := range strings.Split(list, ",") {
		name, kind, _ := strings.Cut(pair, "=")
		for _, k := range []transport.StreamKind{transport.ServerStreaming, transport.ClientStreaming, transport.BidiStreaming} {
			if kind == k.String() {
				out[name] = k
			}
		}
	}
	return out
}

// MetadataGRPCService is the Instance.Metadata key under which a Ferry
// service implementing a protobuf contract (server.WithProtoService) gives
// the contract's full gRPC service name ("acme.billing.v1.Billing"), which
// its gRPC transport serves instead of the name derived from the service's.
// client.Client calls it by that name over gRPC.
const MetadataGRPCService = "ferry.grpc_service"

// MetadataTransports is the Instance.Metadata key under which a
// discovery answer that reaches one transport (NATS $SRV.INFO) lists the
// instance's other transports: a JSON array of Endpoint, so that a
// catalogue built from NATS discovery (registry/natssrv) can call the
// instance over HTTP and gRPC too. A registry entry does not need it: its
// Endpoints say as much.
const MetadataTransports = "ferry.transports"

// MetadataRoutes is the Instance.Metadata key under which a Ferry service
// describes, as JSON, the endpoints an HTTP caller may reach other than by
// POST /<service>/<Endpoint>: their REST routes and, for idempotent ones,
// GET /<service>/<Endpoint>, with the kinds of the request fields a path
// or a query can give (server.Endpoint.ParamKinds). An API gateway serves
// the same routes over any transport. Endpoint name → RouteInfo.
const MetadataRoutes = "ferry.routes"

// RouteInfo is what MetadataRoutes says of one endpoint.
type RouteInfo struct {
	// Routes are net/http patterns with a method ("GET /v1/hello/{name}").
	Routes []string `json:"routes,omitempty"`
	// Params maps a request field's JSON name to its kind: "string",
	// "integer", "number", "boolean", or "array:" and one of those.
	Params map[string]string `json:"params,omitempty"`
}

// RouteInfos returns what in says in MetadataRoutes: nil, nil when it
// says nothing; an error when it is not valid JSON.
func (in Instance) RouteInfos() (map[string]RouteInfo, error) {
	raw := in.Metadata[MetadataRoutes]
	if raw == "" {
		return nil, nil
	}
	var out map[string]RouteInfo
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		return nil, fmt.Errorf("registry: %s/%s: metadata %s: %w", in.Service, in.ID, MetadataRoutes, err)
	}
	return out, nil
}

// Idempotent reports whether in lists endpoint as idempotent
// (MetadataIdempotent).
func (in Instance) Idempotent(endpoint string) bool {
	list := in.Metadata[MetadataIdempotent]
	for list != "" {
		var name string
		name, list, _ = strings.Cut(list, ",")
		if name == endpoint {
			return true
		}
	}
	return false
}

// Endpoint is where an instance serves one transport.
type Endpoint struct {
	// Transport is the transport kind's name: "http", "grpc" or "nats".
	Transport string `json:"transport"`
	// Address is what that transport's client dials: a base URL for HTTP
	// ("http://10.0.0.7:8080"), host:port for gRPC, a NATS server URL for
	// NATS.
	Address string `json:"address"`
	// TLS says the endpoint must be dialled with TLS (for HTTP the
	// address's https:// scheme says it too).
	TLS bool `json:"tls,omitempty"`
}

// Endpoint returns the instance's endpoint for transport, if any.
func (in Instance) Endpoint(transport string) (Endpoint, bool) {
	i := slices.IndexFunc(in.Endpoints, func(e Endpoint) bool { return e.Transport == transport })
	if i < 0 {
		return Endpoint{}, false
	}
	return in.Endpoints[i], true
}

var (
	serviceRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
	idRE      = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// Validate reports what is wrong with in, if anything: the service name and
// ID must be usable as key tokens (letters, digits, '-', '_'), and every
// endpoint needs a transport and an address.
func (in Instance) Validate() error {
	var errs []error
	if !serviceRE.MatchString(in.Service) {
		errs = append(errs, fmt.Errorf("registry: invalid service name %q", in.Service))
	}
	if !idRE.MatchString(in.ID) {
		errs = append(errs, fmt.Errorf("registry: invalid instance id %q: want letters, digits, '-' or '_'", in.ID))
	}
	for i, e := range in.Endpoints {
		if e.Transport == "" || e.Address == "" {
			errs = append(errs, fmt.Errorf("registry: endpoint %d of %s/%s needs a transport and an address", i, in.Service, in.ID))
		}
	}
	return errors.Join(errs...)
}

// Registrar registers instances. Register makes in visible to Discovery and
// keeps it visible until Deregister (implementations with a TTL heartbeat
// on their own until then, and forget an instance whose process died
// within the TTL). Registering the same ID again replaces the entry.
type Registrar interface {
	Register(ctx context.Context, in Instance) error
	Deregister(ctx context.Context, in Instance) error
}

// Discovery finds instances.
type Discovery interface {
	// Lookup returns the service's current instances; an unknown service
	// has none (an empty slice and a nil error).
	Lookup(ctx context.Context, service string) ([]Instance, error)
	// Watch follows the service's instances.
	Watch(ctx context.Context, service string) (Watcher, error)
}

// Watcher follows one service's instances.
type Watcher interface {
	// Next blocks until the set of instances differs from the one it
	// last returned (the first call returns the current set at once), then
	// returns the whole new set. It returns an error when ctx ends, when
	// the watcher is stopped (ErrWatcherStopped), or when the registry
	// cannot be reached — the caller keeps its last known set and may call
	// Next again.
	Next(ctx context.Context) ([]Instance, error)
	// Stop ends the watch and releases its resources.
	Stop() error
}

// Catalog is implemented by a Discovery that can follow every service at
// once, without knowing their names — what an API gateway or a dashboard
// needs. The memory, NATS, static, DNS and NATS-discovery registries
// implement it.
type Catalog interface {
	// WatchAll follows the instances of every service: its Watcher's Next
	// returns all of them, sorted by service then ID, with the semantics of
	// Watcher.Next (the first call at once, then whenever the set differs).
	WatchAll(ctx context.Context) (Watcher, error)
}

// ErrWatcherStopped is returned by Watcher.Next after Stop.
var ErrWatcherStopped = errors.New("registry: watcher stopped")

// Registry is a Registrar and a Discovery.
type Registry interface {
	Registrar
	Discovery
}
