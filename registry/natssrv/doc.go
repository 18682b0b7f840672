// Package natssrv is a read-only registry over NATS $SRV discovery (the
// NATS Services API): it lists the services that answer $SRV.PING on a NATS
// connection, without a registry of their own. Every Ferry service serving
// NATS answers it (transport/nats), so do services written with
// nats.go/micro, and `nats micro ls` shows the same list. Users import it as
//
//	"github.com/ferry-go/ferry/registry/natssrv"
//
// It implements registry.Discovery and registry.Catalog, so a client.Client
// (with client.WithNATS on the same connection) and a gateway.Gateway work
// on it as on any registry:
//
//	reg, _ := natssrv.New(nc)
//	c, _ := client.New(reg, client.WithNATS(nc))
//	gw, _ := gateway.New(reg, c)
//
// Register and Deregister return [ErrReadOnly] (code Unimplemented, which
// ferry.Service takes for "do not register": a service announces itself
// by answering discovery).
//
// # How it works
//
// One poll loop per Registry, shared by all its watchers, runs while at
// least one watcher does. Every interval (default 1s, [WithInterval]) it
// publishes $SRV.PING and gathers the replies until they pause (a quarter
// of the interval) or half the interval has passed. For an instance it has
// not seen before it asks $SRV.INFO.<service>.<id> once — INFO does not
// change while an instance runs — and keeps the answer while the instance
// lives. Each instance becomes one registry.Instance: ID the micro id,
// Service, Version, Metadata the INFO identity's metadata, and one
// endpoint {Transport: "nats", Address: the URL of the NATS server the
// registry is connected to, credentials redacted}: calls go by subject, so
// that is where to call it. An instance is listed only once its INFO has
// been read. Sets are sorted by service then ID; a watcher's Next returns
// when its set differs from the last it returned, deep copies every time.
//
// A Ferry service's INFO carries what it would register in a registry
// (registry.Describe): its endpoints, REST routes and idempotent endpoints,
// so a gateway routes it exactly and a client retries its idempotent
// endpoints.
//
// # Liveness
//
// An instance is gone once it has left [WithMisses] polls in a row
// unanswered (default 3). A poll lasts at most one interval (half of it
// waiting for PING replies, half for new INFO), so an instance that dies
// disappears from watchers within (misses+1) × interval of its last
// answer: 4 s by default. A Ferry service that stops cleanly disappears
// just as fast, as it stops answering. Polls while the connection is down
// count for nobody: watchers get an Unavailable error once per outage
// from Next (and keep their last set), then polling resumes; once the
// connection is closed for good, every Next returns Unavailable, as with
// registry/nats.
//
// # Other services and bad replies
//
// Services that are not Ferry's (their INFO metadata has no
// registry.MetadataEndpoints) are listed too, with their own metadata. A
// Ferry client calls "<service>.<endpoint>", so the registry sets their
// MetadataEndpoints to the endpoints whose subject follows that scheme —
// possibly none (an empty list: routed for no name, unlike a missing key) —
// and a gateway routes exactly those. Replies that are not valid JSON, not
// of the PING or INFO type, or name a service or id that is not a valid
// registry name (registry.Instance.Validate) are ignored and logged at
// Debug ([WithLogger]).
//
// # Limits
//
// Discovery sees what the connection's account may see: a service whose
// $SRV subjects it cannot subscribe to or receive replies from is not
// listed. Every poll pings every service, also for watchers of one; the
// PING replies are small and INFO, which can be large, is asked once per
// instance. Lookup without a running watcher asks $SRV.INFO.<service>
// directly and waits for the replies to pause. A service that answers late
// (after half the interval) on misses polls in a row is taken for gone.
package natssrv
