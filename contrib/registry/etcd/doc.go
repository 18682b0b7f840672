// Package etcd is a Ferry service registry kept in etcd (v3 API, through
// go.etcd.io/etcd/client/v3). It is a module of its own, so that programs
// that do not use it never build the etcd client. Users import it as
//
//	etcdreg "github.com/ferry-go/ferry/contrib/registry/etcd"
//
// or, to select it from configuration (registry.kind: etcd), for its side
// effect:
//
//	import _ "github.com/ferry-go/ferry/contrib/registry/etcd"
//
// # Layout
//
// Each instance is one key, "<prefix><service>/<id>" (prefix default
// "/ferry/services/"), whose value is the JSON form of
// [registry.Instance], as registry/nats stores it. Any etcd client can
// read it: `etcdctl get --prefix /ferry/services/`. Keys under the prefix
// that are not "<service>/<id>" holding that instance's JSON are ignored.
//
// # Liveness
//
// Register grants the instance a lease of the TTL (default 10s, whole
// seconds), puts the key on it and keeps the lease alive: the client sends
// a keep-alive every third of the TTL. When the process dies the
// keep-alives stop, the lease expires, etcd deletes the key and every
// watcher receives the delete — nothing polls. Should the lease be lost
// while the process lives (revoked by someone else, or expired because no
// keep-alive got through for a TTL: a partition, an overloaded cluster),
// the client closes its keep-alive channel; the registry then logs the
// loss, grants a new lease and puts the instance again, retrying with a
// back-off until it succeeds. Registering an instance again replaces its
// value on a new lease and revokes the old one. Deregister revokes the
// lease, which deletes the key at once, and deletes the key besides.
// [Registry.Close] stops the keep-alives without revoking anything, exactly
// as a crash would, so the instances disappear one TTL later; call
// Deregister first for a clean exit.
//
// # Watching
//
// A watcher lists its prefix ("<prefix><service>/" for Watch, the whole
// prefix for WatchAll, which makes the registry a [registry.Catalog]) with
// one Get, then watches it from the revision after the Get's
// (clientv3.WithRev), so that no change between the list and the watch
// is missed. A goroutine applies the events to the set and Next returns
// the whole set whenever it differs from the last one returned: a put of
// an unchanged value (an instance registered again as it was, or put
// again on a new lease) does not count.
//
// The etcd watch is opened WithRequireLeader, so that a member cut off
// from its cluster's leader ends it instead of leaving it silent. When
// the watch ends — compacted past the revision it needs (ErrCompacted),
// cancelled by the server, no leader, the stream broken — the watcher
// lists again and watches from the new revision; failures meanwhile are
// returned once each by Next as Unavailable errors, and the caller keeps
// its last known set. Compaction does not disturb a watch that keeps up:
// it only ends one that needs a compacted revision, and that one lists
// again. When the client is closed, Next returns a FailedPrecondition
// error.
//
// # Clients
//
// [New] takes a *clientv3.Client that stays the caller's: Close leaves it
// open, and Lookup, Watch and Deregister keep working after Close. [Dial]
// makes the client from a clientv3.Config (endpoints, TLS, credentials)
// and owns it: Close closes it. The configuration plug-in uses Dial, and
// the service closes the registry at stop, after deregistering.
//
// # Errors
//
// An invalid instance or service name is an InvalidArgument error; a
// cluster that cannot be reached, Unavailable; refused credentials,
// Unauthenticated; a refused key, PermissionDenied; a closed registry or
// client, FailedPrecondition; the end of the caller's context, that
// context's error.
package etcd
