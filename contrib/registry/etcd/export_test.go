package etcd

import (
	"context"

	"github.com/ferry-go/ferry/registry"
)

// WatchFrom starts a watcher on service as though it had listed nothing at
// revision rev: with rev compacted away, its watch fails ErrCompacted at
// once, as a watch that fell behind a compaction does.
func WatchFrom(ctx context.Context, r *Registry, service string, rev int64) registry.Watcher {
	return r.watchFrom(ctx, r.prefix+service+"/", service, newSet(r.prefix), rev)
}
