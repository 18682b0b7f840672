// Package nats is Ferry's distributed service registry, kept in a NATS
// JetStream key-value bucket. Users import it as
//
//	natsreg "github.com/ferry-go/ferry/registry/nats"
//
// # Layout
//
// Each instance is one key, "<service>.<id>", whose value is the JSON form
// of [registry.Instance]. The bucket (default "ferry_registry") is created
// by [New] if missing, with one value per key, the stream's MaxAge set to
// the TTL (default 10s) and subject delete markers (LimitMarkerTTL, NATS
// 2.11+) enabled. Any NATS client can read it: `nats kv ls ferry_registry`.
//
// # Liveness
//
// Register puts the key and starts one heartbeat goroutine for the instance
// that puts it again every heartbeat interval (default TTL/3). A put
// replaces the previous value, so each value lives for the TTL after its
// last heartbeat. When a process dies its heartbeats stop, its key ages
// out, and the server writes a delete marker that every watcher receives
// like any other change — nothing polls. Deregister stops the heartbeat and
// deletes the key at once. [Registry.Close] stops all heartbeats without
// deleting anything, exactly as a crash would, so the instances disappear
// one TTL later; call Deregister first for a clean exit.
//
// The TTL is the bucket's MaxAge rather than a per-key TTL
// (jetstream.KeyTTL), because a per-key TTL can only be set when a key is
// created: refreshing it would take raw publishes with a Nats-TTL header
// instead of plain KV puts, and one TTL for the whole bucket is easier to
// reason about for every client that reads it.
//
// # Watching
//
// A watcher is a KV watch on "<service>.*". Next returns the whole set
// whenever it differs from the last one returned: puts, deletes, purges and
// expiry markers all count, heartbeats that change nothing do not. When
// the connection drops, Next returns an Unavailable error wrapping
// nats.ErrDisconnected, and the next calls wait for the connection to come
// back, then watch afresh and return the set as it is then, so the caller
// keeps its last known set in between.
//
// [Registry.WatchAll] (registry.Catalog, for an API gateway or a
// dashboard) is the same watcher on every key of the bucket: one KV watch
// on ">", whose Next returns every service's instances sorted by service,
// then ID. Expiry reaches it the same way — the bucket-wide MaxAge ages
// out any key a dead process stopped heartbeating, and the delete marker
// arrives on the watch — and so do its deduplication of heartbeats and its
// recovery after a reconnect. Keys that are not "<service>.<id>" holding
// that instance's JSON are ignored.
//
// # Clusters
//
// The bucket is a JetStream stream, replicated by the NATS cluster with
// Raft (WithReplicas(3) on a three-node cluster): registrations survive
// the loss of a node, and clients reconnect to the remaining nodes.
package nats
