package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Defaults of the options.
const (
	// DefaultPrefix is the key prefix under which instances are kept:
	// "<prefix><service>/<id>".
	DefaultPrefix = "/ferry/services/"
	// DefaultTTL is the TTL of an instance's lease: how long it stays
	// registered after its process stopped keeping the lease alive.
	DefaultTTL = 10 * time.Second
)

// minTTL is the shortest TTL: etcd leases count whole seconds.
const minTTL = time.Second

// Back-off between attempts to grant a lost lease again or to list a
// watched prefix again.
const (
	minRetry = 50 * time.Millisecond
	maxRetry = 2 * time.Second
)

// Option configures a Registry.
type Option func(*options)

type options struct {
	prefix string
	ttl    time.Duration
	logger *slog.Logger
	errs   []error
}

// WithPrefix sets the key prefix, which must start with '/'; a '/' is
// added at its end when missing. Default [DefaultPrefix].
func WithPrefix(prefix string) Option {
	return func(o *options) {
		if !strings.HasPrefix(prefix, "/") || strings.ContainsAny(prefix, " \t\r\n") {
			o.errs = append(o.errs, fmt.Errorf("prefix %q: want a key prefix that starts with '/' and has no spaces", prefix))
			return
		}
		if !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		o.prefix = prefix
	}
}

// WithTTL sets the TTL of the instances' leases, at least one second and
// rounded up to whole seconds (etcd's unit). Default [DefaultTTL]. The
// etcd server may grant more than asked: it never grants less than about
// one and a half election timeouts.
func WithTTL(ttl time.Duration) Option {
	return func(o *options) {
		if ttl < minTTL {
			o.errs = append(o.errs, fmt.Errorf("TTL %v: want at least %v", ttl, minTTL))
			return
		}
		o.ttl = ttl.Round(0)
	}
}

// WithLogger sets where lost leases, registrations made again and failed
// attempts are logged. Default: nowhere.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// Registry is a registry.Registry and registry.Catalog in etcd. Create it
// with [New] on a client of yours or with [Dial]; its methods are safe for
// concurrent use.
type Registry struct {
	cli    *clientv3.Client
	owned  bool // Close closes cli
	prefix string
	ttl    int64 // seconds
	logger *slog.Logger

	opMu sync.Mutex // serialises Register and Deregister

	mu      sync.Mutex
	keepers map[string]*keeper // by key
	closed  bool
}

var (
	_ registry.Registry = (*Registry)(nil)
	_ registry.Catalog  = (*Registry)(nil)
)

// New returns a registry on cli, which stays the caller's: Close does not
// close it, and Lookup, Watch and Deregister keep working after Close. New
// makes no request.
func New(cli *clientv3.Client, opts ...Option) (*Registry, error) {
	if cli == nil {
		return nil, errs.New(errs.InvalidArgument, "registry/etcd: nil client")
	}
	return newRegistry(cli, false, opts)
}

// Dial connects to the etcd cluster cfg describes and returns a registry
// that owns the client: Close closes it. When cfg has neither Logger nor
// LogConfig the client logs nothing (the registry logs through
// WithLogger). Dial reads the prefix once, so that a cluster that cannot
// be reached, or refuses the credentials, is an error here rather than at
// the first Register; ctx bounds that read, and so does cfg.DialTimeout
// when set.
func Dial(ctx context.Context, cfg clientv3.Config, opts ...Option) (*Registry, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errs.New(errs.InvalidArgument, "registry/etcd: no endpoints")
	}
	o, err := parse(opts)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil && cfg.LogConfig == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Context == nil {
		// The client lives past ctx; it keeps its values.
		cfg.Context = context.WithoutCancel(ctx)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, failure(ctx, "connect to "+strings.Join(cfg.Endpoints, ","), err)
	}
	r := build(cli, true, o)
	cctx := ctx
	if cfg.DialTimeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, cfg.DialTimeout)
		defer cancel()
	}
	if _, err := cli.Get(cctx, r.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		_ = cli.Close()
		// ctx, not cctx: the dial timeout is the cluster's failure.
		return nil, failure(ctx, "reach "+strings.Join(cfg.Endpoints, ","), err)
	}
	return r, nil
}

func parse(opts []Option) (options, error) {
	o := options{prefix: DefaultPrefix, ttl: DefaultTTL}
	for _, opt := range opts {
		opt(&o)
	}
	if err := errors.Join(o.errs...); err != nil {
		return o, errs.Newf(errs.InvalidArgument, "registry/etcd: %w", err)
	}
	return o, nil
}

func newRegistry(cli *clientv3.Client, owned bool, opts []Option) (*Registry, error) {
	o, err := parse(opts)
	if err != nil {
		return nil, err
	}
	return build(cli, owned, o), nil
}

func build(cli *clientv3.Client, owned bool, o options) *Registry {
	return &Registry{
		cli:     cli,
		owned:   owned,
		prefix:  o.prefix,
		ttl:     int64((o.ttl + time.Second - 1) / time.Second),
		logger:  o.logger,
		keepers: make(map[string]*keeper),
	}
}

// TTL returns the TTL the registry asks for its leases.
func (r *Registry) TTL() time.Duration { return time.Duration(r.ttl) * time.Second }

// Prefix returns the key prefix, ending in '/'.
func (r *Registry) Prefix() string { return r.prefix }

// Key returns the key under which in is kept: "<prefix><service>/<id>".
func (r *Registry) Key(in registry.Instance) string { return r.prefix + in.Service + "/" + in.ID }

// Client returns the etcd client the registry uses.
func (r *Registry) Client() *clientv3.Client { return r.cli }

// Register puts in under its key on a lease of its own, replacing any
// earlier value, and keeps the lease alive until Deregister or Close;
// should the lease be lost all the same (revoked, or expired while etcd
// could not be reached), it grants a new one and puts the instance again.
// An invalid instance is an InvalidArgument error; a cluster that cannot
// be reached, Unavailable. After Close, Register fails with
// FailedPrecondition. When it fails, an earlier registration of the same
// instance stays as it was.
func (r *Registry) Register(ctx context.Context, in registry.Instance) error {
	if err := in.Validate(); err != nil {
		return errs.Wrap(errs.InvalidArgument, err)
	}
	data, err := json.Marshal(in)
	if err != nil {
		return errs.Newf(errs.InvalidArgument, "registry/etcd: encode %s/%s: %w", in.Service, in.ID, err)
	}
	key := r.Key(in)

	r.opMu.Lock()
	defer r.opMu.Unlock()
	if r.isClosed() {
		return errs.New(errs.FailedPrecondition, "registry/etcd: register "+key+": registry closed")
	}
	// Stop the old keeper first, or a lease it grants again could carry
	// the old value over ours.
	old := r.stopKeeper(key)
	lease, err := r.grantAndPut(ctx, key, data)
	if err != nil {
		if old != nil {
			r.startKeeper(ctx, old.key, old.data, old.lease) // as it was
		}
		return r.failure(ctx, "register "+key, err)
	}
	if !r.startKeeper(ctx, key, data, lease) {
		return errs.New(errs.FailedPrecondition, "registry/etcd: register "+key+": registry closed")
	}
	if old != nil && old.lease != clientv3.NoLease && old.lease != lease {
		// The key is on the new lease now: revoking the old one deletes
		// nothing, and spares it its TTL.
		r.revoke(ctx, old.lease)
	}
	return nil
}

// grantAndPut grants a lease and puts data under key on it. On failure
// it revokes the lease it granted, if any.
func (r *Registry) grantAndPut(ctx context.Context, key string, data []byte) (clientv3.LeaseID, error) {
	g, err := r.cli.Grant(ctx, r.ttl)
	if err != nil {
		return clientv3.NoLease, err
	}
	if _, err := r.cli.Put(ctx, key, string(data), clientv3.WithLease(g.ID)); err != nil {
		r.revoke(ctx, g.ID)
		return clientv3.NoLease, err
	}
	return g.ID, nil
}

// revoke revokes lease if it can, within ctx and a bound of its own: a
// lease left behind only lingers until its TTL.
func (r *Registry) revoke(ctx context.Context, lease clientv3.LeaseID) {
	rctx, cancel := context.WithTimeout(ctx, r.opTimeout())
	defer cancel()
	_, _ = r.cli.Revoke(rctx, lease)
}

// opTimeout bounds the requests the registry makes on its own: the TTL,
// at least 5s.
func (r *Registry) opTimeout() time.Duration { return max(r.TTL(), 5*time.Second) }

// Deregister stops keeping the instance's lease alive and revokes it,
// which deletes the key, so watchers see the instance go at once; it also
// deletes the key, should another registry have put it. Only in's service
// and ID are read; an invalid one is an InvalidArgument error.
// Deregistering an instance that is not registered is not an error.
func (r *Registry) Deregister(ctx context.Context, in registry.Instance) error {
	if err := (registry.Instance{Service: in.Service, ID: in.ID}).Validate(); err != nil {
		return errs.Wrap(errs.InvalidArgument, err)
	}
	key := r.Key(in)
	r.opMu.Lock()
	defer r.opMu.Unlock()
	if k := r.stopKeeper(key); k != nil && k.lease != clientv3.NoLease {
		if _, err := r.cli.Revoke(ctx, k.lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return r.failure(ctx, "deregister "+key, err)
		}
	}
	if _, err := r.cli.Delete(ctx, key); err != nil {
		return r.failure(ctx, "deregister "+key, err)
	}
	return nil
}

// Close stops keeping the leases alive without revoking them, as a
// crashed process would: the instances disappear once their TTL passes.
// Call Deregister first to remove them at once. A registry made by Dial
// closes its client; one made by New leaves the client to its owner, and
// its Lookup, Watch and Deregister keep working. Register fails after
// Close. Close returns the error of closing the client, if any.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	keepers := r.keepers
	r.keepers = make(map[string]*keeper)
	r.mu.Unlock()
	for _, k := range keepers {
		k.stop()
	}
	if !r.owned {
		return nil
	}
	if err := r.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return errs.Newf(errs.Unavailable, "registry/etcd: close the client: %w", err)
	}
	return nil
}

func (r *Registry) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// keeper keeps one instance's lease alive, and grants it again when lost.
type keeper struct {
	key    string
	data   []byte
	cancel context.CancelFunc
	done   chan struct{}
	// lease is the instance's current lease: the goroutine's while it
	// runs, anyone's once done is closed.
	lease clientv3.LeaseID
}

func (k *keeper) stop() {
	k.cancel()
	<-k.done
}

// startKeeper starts keeping lease alive for key; it reports false, and
// starts nothing, once the registry is closed.
func (r *Registry) startKeeper(ctx context.Context, key string, data []byte, lease clientv3.LeaseID) bool {
	k := &keeper{key: key, data: data, lease: lease, done: make(chan struct{})}
	// The keeper outlives the call; it keeps ctx's values, not its end.
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k.cancel = cancel
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		cancel()
		return false
	}
	r.keepers[key] = k
	go r.keep(kctx, k)
	return true
}

// stopKeeper stops key's keeper, if any, waits until it has ended and
// returns it.
func (r *Registry) stopKeeper(key string) *keeper {
	r.mu.Lock()
	k := r.keepers[key]
	delete(r.keepers, key)
	r.mu.Unlock()
	if k != nil {
		k.stop()
	}
	return k
}

// keep keeps k's lease alive until ctx ends. The client sends a keep-alive
// every third of the TTL and closes the channel when the lease is gone:
// revoked, or expired because no keep-alive got through in time. Then keep
// grants a new lease and puts the instance on it again, retrying with a
// back-off until it succeeds or ctx ends.
func (r *Registry) keep(ctx context.Context, k *keeper) {
	defer close(k.done)
	backoff := minRetry
	for {
		if k.lease != clientv3.NoLease {
			ch, err := r.cli.KeepAlive(ctx, k.lease)
			if err == nil {
				drain(ctx, ch)
			}
			if ctx.Err() != nil {
				return
			}
			if r.cli.Ctx().Err() != nil {
				r.log(ctx, slog.LevelWarn, "registry lease no longer kept alive: the etcd client was closed", k, nil)
				return
			}
			r.log(ctx, slog.LevelWarn, "registry lease lost; registering the instance again", k, err)
		}
		lost := k.lease
		for {
			pctx, cancel := context.WithTimeout(ctx, r.opTimeout())
			lease, err := r.grantAndPut(pctx, k.key, k.data)
			cancel()
			if err == nil {
				k.lease, backoff = lease, minRetry
				r.log(ctx, slog.LevelInfo, "registry instance registered again on a new lease", k, nil)
				if lost != clientv3.NoLease {
					r.revoke(ctx, lost) // in case it outlived our view of it
				}
				break
			}
			if ctx.Err() != nil {
				return
			}
			if r.cli.Ctx().Err() != nil {
				r.log(ctx, slog.LevelWarn, "registry lease no longer kept alive: the etcd client was closed", k, nil)
				return
			}
			r.log(ctx, slog.LevelWarn, "registry lease grant failed; retrying", k, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxRetry)
		}
	}
}

// drain reads ch until it closes or ctx ends.
func drain(ctx context.Context, ch <-chan *clientv3.LeaseKeepAliveResponse) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
		}
	}
}

func (r *Registry) log(ctx context.Context, level slog.Level, msg string, k *keeper, err error) {
	if r.logger == nil {
		return
	}
	attrs := []slog.Attr{slog.String("key", k.key), slog.String("lease", fmt.Sprintf("%x", int64(k.lease)))}
	if err != nil {
		attrs = append(attrs, slog.Any("error", err))
	}
	r.logger.LogAttrs(ctx, level, msg, attrs...)
}

// Lookup returns the service's instances, sorted by ID. An invalid service
// name is an InvalidArgument error; a cluster that cannot be reached,
// Unavailable.
func (r *Registry) Lookup(ctx context.Context, service string) ([]registry.Instance, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	resp, err := r.cli.Get(ctx, r.prefix+service+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, r.failure(ctx, "look up "+service, err)
	}
	s := newSet(r.prefix)
	for _, kv := range resp.Kvs {
		s.put(kv.Key, kv.Value)
	}
	return registry.Clone(s.instances()), nil
}

// Watch follows the service's instances; see the package documentation.
// An invalid service name is an InvalidArgument error; a cluster that
// cannot be reached, Unavailable.
func (r *Registry) Watch(ctx context.Context, service string) (registry.Watcher, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	return r.watch(ctx, r.prefix+service+"/", service)
}

// WatchAll follows the instances of every service (registry.Catalog): one
// etcd watch on the whole prefix, with the semantics of Watch. Next
// returns the instances sorted by service, then ID. A cluster that cannot
// be reached is an Unavailable error.
func (r *Registry) WatchAll(ctx context.Context) (registry.Watcher, error) {
	return r.watch(ctx, r.prefix, "every service")
}

// failure is the package's failure, a closed client being a
// FailedPrecondition error.
func (r *Registry) failure(ctx context.Context, op string, err error) error {
	if ctx.Err() == nil && r.cli.Ctx().Err() != nil {
		return errs.Newf(errs.FailedPrecondition, "registry/etcd: %s: the etcd client is closed: %w", op, err)
	}
	return failure(ctx, op, err)
}

// failure turns an error of the etcd client into a Ferry error: the
// context's own error as is, refused credentials Unauthenticated, a
// refused key PermissionDenied, a closed client FailedPrecondition and
// anything else Unavailable.
func failure(ctx context.Context, op string, err error) error {
	switch {
	case ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
		return fmt.Errorf("registry/etcd: %s: %w", op, ctx.Err())
	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrInvalidAuthToken), errors.Is(err, rpctypes.ErrUserEmpty):
		return errs.Newf(errs.Unauthenticated, "registry/etcd: %s: %w", op, err)
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		return errs.Newf(errs.PermissionDenied, "registry/etcd: %s: %w", op, err)
	case errors.Is(err, context.Canceled):
		// Not ctx's: the client's own, closed.
		return errs.Newf(errs.FailedPrecondition, "registry/etcd: %s: the etcd client is closed: %w", op, err)
	}
	return errs.Newf(errs.Unavailable, "registry/etcd: %s: %w", op, err)
}

func checkService(name string) error {
	// Validate checks names; a placeholder ID isolates the service check.
	if err := (registry.Instance{Service: name, ID: "x"}).Validate(); err != nil {
		return errs.Wrap(errs.InvalidArgument, err)
	}
	return nil
}
