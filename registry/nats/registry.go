package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of the options.
const (
	// DefaultBucket is the key-value bucket the registry uses.
	DefaultBucket = "ferry_registry"
	// DefaultTTL is how long an instance stays registered after its last
	// heartbeat.
	DefaultTTL = 10 * time.Second
)

// minTTL is the shortest TTL: nats-server keeps delete markers for whole
// seconds.
const minTTL = time.Second

var bucketRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Option configures a Registry.
type Option func(*options)

type options struct {
	bucket    string
	ttl       time.Duration
	heartbeat time.Duration
	replicas  int
	logger    *slog.Logger
	errs      []error
}

// WithBucket sets the key-value bucket's name. Default [DefaultBucket].
func WithBucket(name string) Option {
	return func(o *options) {
		if !bucketRE.MatchString(name) {
			o.errs = append(o.errs, fmt.Errorf("bucket name %q: want letters, digits, '-' or '_'", name))
			return
		}
		o.bucket = name
	}
}

// WithTTL sets how long an instance stays registered after its last
// heartbeat, at least one second. Default [DefaultTTL]. It applies when New
// creates the bucket; an existing bucket keeps its own TTL.
func WithTTL(ttl time.Duration) Option {
	return func(o *options) {
		if ttl < minTTL {
			o.errs = append(o.errs, fmt.Errorf("TTL %v: want at least %v", ttl, minTTL))
			return
		}
		o.ttl = ttl
	}
}

// WithHeartbeat sets how often a registered instance is put again; it must
// be shorter than the TTL. Default: a third of the TTL.
func WithHeartbeat(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.errs = append(o.errs, fmt.Errorf("heartbeat %v: want a positive interval", d))
			return
		}
		o.heartbeat = d
	}
}

// WithReplicas sets how many servers of a NATS cluster keep the bucket, 1
// to 5. Default 1; use 3 on a three-node cluster to survive a node's loss.
// It applies when New creates the bucket.
func WithReplicas(n int) Option {
	return func(o *options) {
		if n < 1 || n > 5 {
			o.errs = append(o.errs, fmt.Errorf("replicas %d: want 1 to 5", n))
			return
		}
		o.replicas = n
	}
}

// WithLogger sets where heartbeat failures are logged, at Warn. Default:
// nowhere.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// Registry is a registry.Registry in a JetStream key-value bucket. Create
// it with [New]; its methods are safe for concurrent use.
type Registry struct {
	kv        jetstream.KeyValue
	stream    jetstream.Stream // the bucket's, for Lookup
	nc        *nats.Conn
	ttl       time.Duration
	heartbeat time.Duration
	logger    *slog.Logger

	opMu sync.Mutex // serialises Register and Deregister, so heartbeats never race a newer put

	mu     sync.Mutex
	beats  map[string]*heartbeat // by key
	closed bool
}

var (
	_ registry.Registry = (*Registry)(nil)
	_ registry.Catalog  = (*Registry)(nil)
)

// New returns a registry in js's key-value bucket, creating the bucket if
// it does not exist. An existing bucket must have a TTL and delete markers
// (as New creates it); its TTL wins over WithTTL, and the heartbeat
// defaults to a third of it. ctx bounds the setup.
func New(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Registry, error) {
	o := options{bucket: DefaultBucket, ttl: DefaultTTL, replicas: 1}
	for _, opt := range opts {
		opt(&o)
	}
	if err := errors.Join(o.errs...); err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "registry/nats: %w", err)
	}
	if js == nil {
		return nil, errs.New(errs.InvalidArgument, "registry/nats: nil JetStream")
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         o.bucket,
		Description:    "Ferry service registry: <service>.<id> = instance JSON",
		History:        1,
		TTL:            o.ttl,
		LimitMarkerTTL: o.ttl,
		Replicas:       o.replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, o.bucket)
	}
	if err != nil {
		return nil, failure(ctx, "open bucket "+o.bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, failure(ctx, "read bucket "+o.bucket, err)
	}
	if st.TTL() <= 0 || st.LimitMarkerTTL() <= 0 {
		return nil, errs.Newf(errs.FailedPrecondition,
			"registry/nats: bucket %s exists with TTL %v and limit marker TTL %v; want both set, or delete the bucket and let New create it",
			o.bucket, st.TTL(), st.LimitMarkerTTL())
	}
	stream, err := js.Stream(ctx, "KV_"+o.bucket)
	if err != nil {
		return nil, failure(ctx, "open the stream of bucket "+o.bucket, err)
	}
	ttl := st.TTL()
	hb := o.heartbeat
	if hb == 0 {
		hb = ttl / 3
	}
	if hb >= ttl {
		return nil, errs.Newf(errs.InvalidArgument, "registry/nats: heartbeat %v: want it shorter than the TTL %v", hb, ttl)
	}
	return &Registry{
		kv:        kv,
		stream:    stream,
		nc:        js.Conn(),
		ttl:       ttl,
		heartbeat: hb,
		logger:    o.logger,
		beats:     make(map[string]*heartbeat),
	}, nil
}

// TTL returns how long an instance stays registered after its last
// heartbeat: the bucket's MaxAge.
func (r *Registry) TTL() time.Duration { return r.ttl }

// Bucket returns the key-value bucket's name.
func (r *Registry) Bucket() string { return r.kv.Bucket() }

// Register puts in under "<service>.<id>", replacing any earlier value, and
// heartbeats it until Deregister or Close. An invalid instance is an
// InvalidArgument error; a registry that cannot be reached, Unavailable.
// After Close, Register fails with FailedPrecondition.
func (r *Registry) Register(ctx context.Context, in registry.Instance) error {
	if err := in.Validate(); err != nil {
		return errs.Wrap(errs.InvalidArgument, err)
	}
	data, err := json.Marshal(in)
	if err != nil {
		return errs.Newf(errs.InvalidArgument, "registry/nats: encode %s/%s: %w", in.Service, in.ID, err)
	}
	key := in.Service + "." + in.ID

	r.opMu.Lock()
	defer r.opMu.Unlock()
	if r.isClosed() {
		return errs.New(errs.FailedPrecondition, "registry/nats: register "+key+": registry closed")
	}
	// Stop the old heartbeat first, or its put could land after ours.
	r.stopBeat(key)
	if _, err := r.kv.Put(ctx, key, data); err != nil {
		return failure(ctx, "register "+key, err)
	}
	hb := &heartbeat{done: make(chan struct{})}
	var bctx context.Context
	// The heartbeat outlives the call; it keeps ctx's values, not its end.
	bctx, hb.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		hb.cancel()
		return errs.New(errs.FailedPrecondition, "registry/nats: register "+key+": registry closed")
	}
	r.beats[key] = hb
	go r.beat(bctx, hb, key, data)
	return nil
}

// Deregister stops the instance's heartbeat and deletes its key, so
// watchers see it go at once. Only in's service and ID are read; an
// invalid one is an InvalidArgument error. Deregistering an instance that
// is not registered is not an error.
func (r *Registry) Deregister(ctx context.Context, in registry.Instance) error {
	if err := (registry.Instance{Service: in.Service, ID: in.ID}).Validate(); err != nil {
		return errs.Wrap(errs.InvalidArgument, err)
	}
	key := in.Service + "." + in.ID
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.stopBeat(key)
	if err := r.kv.Delete(ctx, key); err != nil {
		return failure(ctx, "deregister "+key, err)
	}
	return nil
}

// Close stops every heartbeat without deleting any key, as a crashed
// process would: the instances disappear once their TTL passes. Call
// Deregister first to remove them at once. Lookup, Watch and Deregister
// keep working after Close (the NATS connection is the caller's); Register
// does not. Close always returns nil.
func (r *Registry) Close() error {
	r.mu.Lock()
	r.closed = true
	beats := r.beats
	r.beats = make(map[string]*heartbeat)
	r.mu.Unlock()
	for _, hb := range beats {
		hb.stop()
	}
	return nil
}

func (r *Registry) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// stopBeat stops key's heartbeat, if any, and waits until it has ended.
func (r *Registry) stopBeat(key string) {
	r.mu.Lock()
	hb := r.beats[key]
	delete(r.beats, key)
	r.mu.Unlock()
	if hb != nil {
		hb.stop()
	}
}

// heartbeat is one instance's refresh loop.
type heartbeat struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (h *heartbeat) stop() {
	h.cancel()
	<-h.done
}

// beat puts data under key every heartbeat interval until ctx ends. A
// failed put is logged and retried at the next tick; a put after a long
// outage recreates a key that expired meanwhile. A put may take what is
// left of the TTL after one interval (at least one interval): a slow
// server (a loaded machine, a leader election) gets as long as the entry
// can wait, rather than a put cut off that would have landed in time.
func (r *Registry) beat(ctx context.Context, hb *heartbeat, key string, data []byte) {
	defer close(hb.done)
	t := time.NewTicker(r.heartbeat)
	defer t.Stop()
	putTimeout := max(r.ttl-r.heartbeat, r.heartbeat)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, putTimeout)
		_, err := r.kv.Put(pctx, key, data)
		cancel()
		if err != nil && ctx.Err() == nil && r.logger != nil {
			r.logger.LogAttrs(ctx, slog.LevelWarn, "registry heartbeat failed",
				slog.String("bucket", r.kv.Bucket()), slog.String("key", key), slog.Any("error", err))
		}
	}
}

// Lookup returns the service's instances, sorted by ID. An invalid service
// name is an InvalidArgument error; a registry that cannot be reached,
// Unavailable.
func (r *Registry) Lookup(ctx context.Context, service string) ([]registry.Instance, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	// The keys from the stream's subjects, then each key's last value: a
	// KV watch's first snapshot can miss a key whose heartbeat replaces its
	// message while the snapshot is taken (the old message is gone, the new
	// one comes after the snapshot's end).
	prefix := "$KV." + r.kv.Bucket() + "."
	info, err := r.stream.Info(ctx, jetstream.WithSubjectFilter(prefix+service+".*"))
	if err != nil {
		return nil, failure(ctx, "look up "+service, err)
	}
	set := newSet()
	for subject := range info.State.Subjects {
		e, err := r.kv.Get(ctx, strings.TrimPrefix(subject, prefix))
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // deleted, purged or aged out since
		}
		if err != nil {
			return nil, failure(ctx, "look up "+service, err)
		}
		set.apply(e)
	}
	return set.instances(), nil
}

// Watch follows the service's instances; see the package documentation.
// An invalid service name is an InvalidArgument error; a registry that
// cannot be reached, Unavailable.
func (r *Registry) Watch(ctx context.Context, service string) (registry.Watcher, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	return r.watch(ctx, service+".*", service)
}

// WatchAll follows the instances of every service (registry.Catalog): a
// KV watch on every key of the bucket, with the same semantics as Watch —
// see the package documentation. Next returns the instances sorted by
// service, then ID. A registry that cannot be reached is an Unavailable
// error.
func (r *Registry) WatchAll(ctx context.Context) (registry.Watcher, error) {
	return r.watch(ctx, jetstream.AllKeys, "every service")
}

// failure turns an error of the NATS client into a Ferry error: the
// context's own error as is, anything else Unavailable.
func failure(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return fmt.Errorf("registry/nats: %s: %w", op, ctx.Err())
	}
	return errs.Newf(errs.Unavailable, "registry/nats: %s: %w", op, err)
}

func checkService(name string) error {
	// Validate checks names; a placeholder ID isolates the service check.
	if err := (registry.Instance{Service: name, ID: "x"}).Validate(); err != nil {
		return errs.Wrap(errs.InvalidArgument, err)
	}
	return nil
}
