package client

import (
	"context"
	"crypto/tls"
	"errors"
	"maps"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/transport"
	"github.com/sony/gobreaker/v2"
)

// Back-off of a failing watch.
const (
	watchMinBackoff = 50 * time.Millisecond
	watchMaxBackoff = 5 * time.Second
)

// service is what the client knows of one service.
type service struct {
	c     *Client
	name  string
	sel   Selector
	ready chan struct{} // closed on the first set or the first error
	once  sync.Once
	snap  atomic.Pointer[snapshot]

	mu sync.Mutex // serialises updates and ejections
}

// snapshot is one watched set of instances; it is never modified.
type snapshot struct {
	list []*instance // instances called directly (HTTP, gRPC), each over its best transport
	nats bool        // some instance is best called over NATS
	// byKind holds, per direct transport the client uses, every instance
	// offering it (those of list included), for calls pinned to a
	// transport (WithCallTransport); all is every instance of byKind once.
	byKind     map[transport.Kind][]*instance
	all        []*instance
	offersNATS bool  // some instance has a NATS endpoint
	total      int   // instances in the registry, usable or not
	known      bool  // the registry answered at least once
	err        error // the registry's last error while none was known
	// idem holds the endpoints every instance lists as idempotent
	// (registry.MetadataIdempotent); nil when none.
	idem map[string]bool
}

// instance is one instance called directly, with this client's state of it.
type instance struct {
	id, address string
	peer        string // host:port, for Call.Peer
	tls         bool   // dial with TLS (registry.Endpoint.TLS)
	tlsCfg      *tls.Config
	kind        transport.Kind
	mws         []middleware.Middleware // the client's, run by its transport client
	md          map[string]string       // the registry entry's metadata, for the dialer
	dial        Dialer
	br          *gobreaker.TwoStepCircuitBreaker[struct{}]

	inFlight     atomic.Int64
	removed      atomic.Bool
	consec       atomic.Int32 // health failures in a row
	lastFail     atomic.Int64 // unix nanoseconds of the last health failure
	ejectedUntil atomic.Int64 // unix nanoseconds
	ejections    int          // in a row; under service.mu
	lastUntil    time.Time    // end of the last ejection; under service.mu

	tc     atomic.Pointer[transport.Client]
	mu     sync.Mutex
	closed bool
}

func newService(c *Client, name string) *service {
	return &service{c: c, name: name, sel: c.cfg.newSel(), ready: make(chan struct{})}
}

// watch follows the registry until ctx ends, re-watching with back-off
// after an error and keeping the last known set meanwhile.
func (s *service) watch(ctx context.Context) {
	if err := (registry.Instance{Service: s.name, ID: "x"}).Validate(); err != nil {
		s.fail(errs.Newf(errs.InvalidArgument, "client: invalid service name %q", s.name))
		return
	}
	backoff := watchMinBackoff
	for ctx.Err() == nil {
		w, err := s.c.d.Watch(ctx, s.name)
		if err == nil {
			for {
				var ins []registry.Instance
				if ins, err = w.Next(ctx); err != nil {
					break
				}
				s.update(ins)
				backoff = watchMinBackoff
			}
			_ = w.Stop()
		}
		if ctx.Err() != nil {
			return
		}
		s.fail(err)
		if !sleep(ctx, backoff/2+rand.N(backoff/2)) {
			return
		}
		backoff = min(2*backoff, watchMaxBackoff)
	}
}

func (s *service) markReady() { s.once.Do(func() { close(s.ready) }) }

// fail records a registry error; a known set stays in use.
func (s *service) fail(err error) {
	s.mu.Lock()
	if old := s.snap.Load(); old == nil || !old.known {
		s.snap.Store(&snapshot{err: err})
	}
	s.mu.Unlock()
	s.markReady()
}

// update installs a new set, keeping the state of instances that stay.
func (s *service) update(ins []registry.Instance) {
	s.mu.Lock()
	old := s.snap.Load()
	type key struct {
		id   string
		kind transport.Kind
	}
	prev := map[key]*instance{}
	if old != nil {
		for _, in := range old.all {
			prev[key{in.id, in.kind}] = in
		}
	}
	next := &snapshot{known: true, total: len(ins), list: make([]*instance, 0, len(ins)), idem: idempotent(ins),
		byKind: map[transport.Kind][]*instance{}}
	for _, ri := range ins {
		best, _, ok := s.best(ri)
		if ok && best == transport.NATS {
			next.nats = true
		}
		for _, t := range s.c.cfg.transports {
			kind := transport.Kind(t)
			ep, offered := ri.Endpoint(t)
			switch {
			case !offered:
				continue
			case kind == transport.NATS:
				next.offersNATS = true
				continue
			}
			in := prev[key{ri.ID, kind}]
			if in != nil && in.address == ep.Address && in.tls == ep.TLS && maps.Equal(in.md, ri.Metadata) {
				delete(prev, key{ri.ID, kind})
			} else {
				in = s.newInstance(ri.ID, kind, ep, ri.Metadata)
			}
			next.byKind[kind] = append(next.byKind[kind], in)
			next.all = append(next.all, in)
			if ok && kind == best {
				next.list = append(next.list, in)
			}
		}
	}
	s.snap.Store(next)
	s.mu.Unlock()
	for _, in := range prev {
		in.removed.Store(true)
		if in.inFlight.Load() == 0 {
			_ = in.shut()
		}
	}
	s.markReady()
}

// idempotent returns the endpoints every one of ins lists as idempotent:
// during a roll-out, an endpoint counts only once all instances agree.
func idempotent(ins []registry.Instance) map[string]bool {
	if len(ins) == 0 || ins[0].Metadata[registry.MetadataIdempotent] == "" {
		return nil
	}
	var set map[string]bool
	for name := range strings.SplitSeq(ins[0].Metadata[registry.MetadataIdempotent], ",") {
		if name == "" {
			continue
		}
		if slices.ContainsFunc(ins[1:], func(in registry.Instance) bool { return !in.Idempotent(name) }) {
			continue
		}
		if set == nil {
			set = map[string]bool{}
		}
		set[name] = true
	}
	return set
}

// best returns the transport and endpoint in should be called on.
func (s *service) best(in registry.Instance) (transport.Kind, registry.Endpoint, bool) {
	for _, t := range s.c.cfg.transports {
		if t == "nats" && s.c.nats == nil {
			continue
		}
		if ep, ok := in.Endpoint(t); ok {
			return transport.Kind(t), ep, true
		}
	}
	return "", registry.Endpoint{}, false
}

func (s *service) newInstance(id string, kind transport.Kind, ep registry.Endpoint, md map[string]string) *instance {
	addr := ep.Address
	in := &instance{id: id, kind: kind, address: addr, peer: addr, tls: ep.TLS, tlsCfg: s.c.cfg.tls, mws: s.c.cfg.mws, dial: s.c.cfg.dialers[kind], md: md}
	if u, err := url.Parse(addr); err == nil && u.Host != "" && kind == transport.HTTP {
		in.peer = u.Host
	}
	if bs := s.c.cfg.breaker; bs != nil {
		st := *bs
		st.Name = s.name + "/" + id
		if st.IsSuccessful == nil {
			st.IsSuccessful = func(err error) bool { return !healthFailure(err) }
		}
		if st.IsExcluded == nil {
			st.IsExcluded = func(err error) bool { return errs.CodeOf(err) == errs.Canceled }
		}
		in.br = gobreaker.NewTwoStepCircuitBreaker[struct{}](st)
	}
	return in
}

// healthFailure reports whether err says the instance, not the request,
// is at fault; see the package doc.
func healthFailure(err error) bool {
	switch errs.CodeOf(err) {
	case errs.Unavailable, errs.DeadlineExceeded, errs.Internal, errs.Unknown, errs.DataLoss:
		return true
	}
	return false
}

// pick chooses where an attempt goes: an acquired instance with its
// breaker's done function (nil without a breaker), or nil for NATS; over
// transport pin only, when pin is not "".
func (s *service) pick(att *middleware.Attempt, pin transport.Kind) (*instance, func(error), error) {
	snap := s.snap.Load()
	c := s.c
	if pin != "" {
		return s.pickPinned(snap, att, pin)
	}
	if c.nats != nil && len(snap.list) == 0 {
		return nil, nil, nil // NATS needs no registry: unknown services go there too
	}
	if c.nats != nil && snap.nats && c.cfg.transports[0] == "nats" {
		return nil, nil, nil
	}
	if len(snap.list) == 0 {
		switch {
		case !snap.known && snap.err != nil:
			if errs.CodeOf(snap.err) == errs.InvalidArgument {
				return nil, nil, snap.err
			}
			return nil, nil, errs.Newf(errs.Unavailable, "no known instances of service %q: registry: %v", s.name, snap.err)
		case snap.total > 0:
			return nil, nil, errs.Newf(errs.Unavailable, "no instances of service %q offer a transport this client uses (%v)", s.name, c.cfg.transports)
		}
		return nil, nil, errs.Newf(errs.Unavailable, "no instances of service %q", s.name)
	}
	return s.choose(att, snap.list)
}

// pickPinned is pick for a call pinned to one transport.
func (s *service) pickPinned(snap *snapshot, att *middleware.Attempt, pin transport.Kind) (*instance, func(error), error) {
	c := s.c
	if !slices.Contains(c.cfg.transports, string(pin)) || (pin == transport.NATS && c.nats == nil) {
		return nil, nil, errs.Newf(errs.Unavailable, "client: calls to service %q cannot be pinned to transport %q: this client calls over %v",
			s.name, pin, c.cfg.usable(c.nats != nil))
	}
	if pin == transport.NATS {
		if snap.offersNATS || snap.total == 0 { // NATS needs no registry, as unpinned
			return nil, nil, nil
		}
		return nil, nil, errs.Newf(errs.Unavailable, "no instances of service %q offer transport %s", s.name, pin)
	}
	list := snap.byKind[pin]
	if len(list) == 0 {
		if !snap.known && snap.err != nil {
			return nil, nil, errs.Newf(errs.Unavailable, "no known instances of service %q: registry: %v", s.name, snap.err)
		}
		return nil, nil, errs.Newf(errs.Unavailable, "no instances of service %q offer transport %s", s.name, pin)
	}
	return s.choose(att, list)
}

// choose picks and acquires one of list.
func (s *service) choose(att *middleware.Attempt, list []*instance) (*instance, func(error), error) {
	// Prefer, in order: untried and not ejected; not ejected; any. An open
	// breaker always excludes.
	now := time.Now().UnixNano()
	var buf [16]*instance
	cands := buf[:0]
	for tier := 0; tier < 3 && len(cands) == 0; tier++ {
		for _, in := range list {
			if in.br != nil && in.br.State() == gobreaker.StateOpen {
				continue
			}
			if tier < 2 && in.ejectedUntil.Load() > now {
				continue
			}
			if tier < 1 && att != nil && att.Tried(in.id) {
				continue
			}
			cands = append(cands, in)
		}
	}
	for len(cands) > 0 {
		i := s.sel.Select(candidates(cands))
		if i < 0 || i >= len(cands) {
			i = 0
		}
		in := cands[i]
		if in.acquire() {
			if in.br == nil {
				return in, nil, nil
			}
			done, err := in.br.Allow()
			if err == nil {
				return in, done, nil
			}
			in.unacquire()
		}
		cands = append(cands[:i], cands[i+1:]...)
	}
	return nil, nil, errs.Newf(errs.Unavailable, "circuit breakers of all %d instances of service %q are open", len(list), s.name)
}

// release ends an attempt on in: breaker, outlier detection, in-flight.
func (s *service) release(in *instance, done func(error), err error) {
	if done != nil {
		done(err)
	}
	if od := s.c.cfg.outlier; od.ConsecutiveFailures > 0 {
		switch {
		case err != nil && healthFailure(err):
			in.lastFail.Store(time.Now().UnixNano())
			if int(in.consec.Add(1)) >= od.ConsecutiveFailures || unreachable(err) {
				s.eject(in)
			}
		case errs.CodeOf(err) != errs.Canceled:
			in.consec.Store(0)
		}
	}
	in.unacquire()
}

// eject takes in out of selection for a while, unless that would eject more
// than the allowed fraction of the service's instances — but one instance of
// two or more may always be ejected (as Envoy does), so that a dead one of
// two does not fail a share of calls for ever; a lone instance never is.
func (s *service) eject(in *instance) {
	od := s.c.cfg.outlier
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if in.ejectedUntil.Load() > now.UnixNano() {
		return
	}
	snap := s.snap.Load()
	pool := snap.list // the instances in was picked among
	if !slices.Contains(pool, in) {
		pool = snap.byKind[in.kind]
	}
	limit := min(int(od.MaxEjectedFraction*float64(len(pool))+1e-9), len(pool)-1)
	if limit < 1 && len(pool) > 1 {
		limit = 1
	}
	ejected := 0
	for _, o := range pool {
		if o.ejectedUntil.Load() > now.UnixNano() {
			ejected++
		}
	}
	if ejected >= limit {
		return
	}
	if !in.lastUntil.IsZero() && now.Sub(in.lastUntil) > 10*od.BaseEjectionTime {
		in.ejections = 0 // healthy for long: start over
	}
	in.ejections = min(in.ejections+1, 10)
	in.lastUntil = now.Add(time.Duration(in.ejections) * od.BaseEjectionTime)
	in.ejectedUntil.Store(in.lastUntil.UnixNano())
	in.consec.Store(0)
}

// acquire counts a call in flight, failing if in has left the set.
func (in *instance) acquire() bool {
	in.inFlight.Add(1)
	if in.removed.Load() {
		in.unacquire()
		return false
	}
	return true
}

func (in *instance) unacquire() {
	if in.inFlight.Add(-1) == 0 && in.removed.Load() {
		_ = in.shut()
	}
}

// client returns in's transport client, made on first use.
func (in *instance) client() (transport.Client, error) {
	if p := in.tc.Load(); p != nil {
		return *p, nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if p := in.tc.Load(); p != nil {
		return *p, nil
	}
	if in.closed {
		return nil, errs.Newf(errs.Unavailable, "instance %s left the service", in.id)
	}
	tc, err := in.dial(in.address, DialOptions{TLS: in.tls, TLSConfig: in.tlsCfg, Middleware: in.mws, Metadata: in.md})
	if err != nil {
		return nil, errs.Newf(errs.Unavailable, "instance %s at %q: %v", in.id, in.address, err)
	}
	in.tc.Store(&tc)
	return tc, nil
}

// shut closes in's transport client; later calls cannot make a new one.
func (in *instance) shut() error {
	in.mu.Lock()
	in.closed = true
	p := in.tc.Swap(nil)
	in.mu.Unlock()
	if p == nil {
		return nil
	}
	return (*p).Close()
}

// candidates adapts a slice of instances to Candidates.
type candidates []*instance

func (c candidates) Len() int             { return len(c) }
func (c candidates) ID(i int) string      { return c[i].id }
func (c candidates) InFlight(i int) int64 { return c[i].inFlight.Load() }

// recentFailure is how long a health failure counts against an instance in
// selection (Candidates.Failures).
const recentFailure = 10 * time.Second

func (c candidates) Failures(i int) int {
	in := c[i]
	if time.Now().UnixNano()-in.lastFail.Load() > int64(recentFailure) {
		return 0
	}
	return int(in.consec.Load())
}

// unreachable reports whether err means the instance could not be reached
// at all: the connection was refused or could not be made, so the request
// was never sent (and is safe to send elsewhere).
func unreachable(err error) bool {
	var e *errs.Error
	if !errors.As(err, &e) || e.Code() != errs.Unavailable {
		return false
	}
	if cause := e.Unwrap(); cause != nil {
		var op *net.OpError
		return errors.Is(cause, syscall.ECONNREFUSED) || (errors.As(cause, &op) && op.Op == "dial")
	}
	// grpc-go reports a failed dial only in the status message.
	msg := e.Message()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "Error while dialing")
}

// sleep waits d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
