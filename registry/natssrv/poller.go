package natssrv

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/ferry-go/ferry/internal/microdisc"
	"github.com/ferry-go/ferry/registry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// poller is the one poll loop of a Registry, shared by all its watchers:
// it publishes to each watcher's feed the part of each set the watcher
// follows, and reports its failures there. Its goroutine owns known; the
// rest is guarded by mu, as is what it hands the feeds, so that a watcher
// added meanwhile misses nothing.
type poller struct {
	r      *Registry
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	known map[key]*entry // instances that answered within the last misses polls
	polls uint64         // successful polls so far
	down  bool           // the last poll failed: its failure is reported

	mu       sync.Mutex
	cur      []registry.Instance // sorted by service then ID; replaced, never changed
	ready    bool                // cur holds a complete set
	err      error               // the latest failure
	closed   error               // the connection closed for good
	failing  bool                // the last poll failed
	watchers map[*watcher]struct{}
}

type key struct{ service, id string }

// entry is one instance seen answering PING.
type entry struct {
	seen uint64             // the last poll it answered
	in   *registry.Instance // from its INFO, which does not change; nil until fetched
}

func (r *Registry) startPoller() *poller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &poller{r: r, cancel: cancel, done: make(chan struct{}), known: map[key]*entry{}, watchers: map[*watcher]struct{}{}}
	go p.run(ctx)
	return p
}

func (p *poller) stop() {
	p.cancel()
	<-p.done
}

// add hands w's feed what the poll loop has so far: the current set, the
// failure of the last poll (a new watcher hears of a failure only while it
// lasts) and a closed connection.
func (p *poller) add(w *watcher) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watchers[w] = struct{}{}
	if p.ready {
		w.feed.Publish(only(p.cur, w.service))
	}
	if p.failing {
		w.feed.Report(p.err)
	}
	if p.closed != nil {
		w.feed.Fail(p.closed)
	}
}

func (p *poller) remove(w *watcher) {
	p.mu.Lock()
	delete(p.watchers, w)
	p.mu.Unlock()
}

// snapshot returns the current complete set, if there is one.
func (p *poller) snapshot() ([]registry.Instance, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur, p.ready && p.closed == nil
}

func (p *poller) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.r.interval)
	defer t.Stop()
	for {
		if !p.poll(ctx) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll runs one round: PING everyone, fetch the INFO of instances not
// known yet, forget those that missed too many polls, publish. It returns
// false once polling is over (stopped, or the connection closed).
func (p *poller) poll(ctx context.Context) bool {
	nc := p.r.nc
	if nc.IsClosed() {
		p.mu.Lock()
		p.closed = unavailable("watch", errClosed)
		for w := range p.watchers {
			w.feed.Fail(p.closed)
		}
		p.mu.Unlock()
		return false
	}
	if !nc.IsConnected() {
		// A request published now would wait in the reconnect buffer and
		// draw no replies: that would count as a miss for everyone.
		p.fail(nats.ErrDisconnected)
		return true
	}
	// Ask for PING (small) every time, INFO only for new instances.
	subject, _ := micro.ControlSubject(micro.PingVerb, "", "")
	gctx, cancel := context.WithTimeout(ctx, p.r.window())
	replies, err := microdisc.Gather(gctx, nc, subject, p.r.quiet(), 0)
	cancel()
	if ctx.Err() != nil {
		return false
	}
	if err == nil && !nc.IsConnected() {
		err = nats.ErrDisconnected // replies may have been lost
	}
	if err != nil {
		p.fail(err)
		return true
	}
	if p.down {
		p.down = false
		p.mu.Lock()
		p.failing = false
		p.mu.Unlock()
	}
	p.polls++
	var fetch []key
	for _, b := range replies {
		k, ok := p.parsePing(b)
		if !ok {
			continue
		}
		e := p.known[k]
		if e == nil {
			e = &entry{}
			p.known[k] = e
		}
		if e.in == nil && e.seen != p.polls {
			fetch = append(fetch, k)
		}
		e.seen = p.polls
	}
	p.fetchInfo(ctx, fetch)
	if ctx.Err() != nil {
		return false
	}
	for k, e := range p.known {
		if p.polls-e.seen >= uint64(p.r.misses) {
			delete(p.known, k) // the INFO cache holds live instances only
		}
	}
	p.publish(nc.ConnectedUrlRedacted())
	return true
}

// parsePing reads one PING reply; one that is not a PING of an instance
// Ferry can name is logged and ignored.
func (p *poller) parsePing(b []byte) (key, bool) {
	var ping micro.Ping
	if err := json.Unmarshal(b, &ping); err != nil {
		p.r.logger.Debug("registry/natssrv: malformed PING reply ignored", "error", err)
		return key{}, false
	}
	if ping.Type != micro.PingResponseType {
		p.r.logger.Debug("registry/natssrv: PING reply of another type ignored", "type", ping.Type)
		return key{}, false
	}
	if err := (registry.Instance{Service: ping.Name, ID: ping.ID}).Validate(); err != nil {
		p.r.logger.Debug("registry/natssrv: PING reply ignored", "error", err)
		return key{}, false
	}
	return key{ping.Name, ping.ID}, true
}

// fetchInfo asks each of ks for its INFO, a few at a time, for at most the
// poll window; those that do not answer are asked again next poll.
func (p *poller) fetchInfo(ctx context.Context, ks []key) {
	if len(ks) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, p.r.window())
	defer cancel()
	got := make([]*registry.Instance, len(ks))
	sem := make(chan struct{}, maxInfoFetches)
	var wg sync.WaitGroup
	for i, k := range ks {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			subject, err := micro.ControlSubject(micro.InfoVerb, k.service, k.id)
			if err != nil {
				return
			}
			msg, err := p.r.nc.RequestWithContext(ctx, subject, nil)
			if err != nil {
				p.r.logger.Debug("registry/natssrv: no INFO; asking again next poll", "service", k.service, "id", k.id, "error", err)
				return
			}
			if in, ok := p.r.parseInfo(msg.Data, k.service, k.id); ok {
				got[i] = &in
			}
		})
	}
	wg.Wait()
	for i, k := range ks {
		if got[i] != nil {
			p.known[k].in = got[i]
		}
	}
}

// publish makes the instances known with their INFO the current set.
func (p *poller) publish(addr string) {
	cur := make([]registry.Instance, 0, len(p.known))
	for _, e := range p.known {
		if e.in != nil {
			cur = append(cur, withAddress(*e.in, addr))
		}
	}
	slices.SortFunc(cur, func(a, b registry.Instance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ID, b.ID))
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready && registry.Equal(cur, p.cur) {
		return
	}
	p.cur, p.ready = cur, true
	for w := range p.watchers {
		w.feed.Publish(only(cur, w.service))
	}
}

// fail records a failed poll; watchers report it once per outage.
func (p *poller) fail(err error) {
	if p.down {
		return
	}
	p.down = true
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = unavailable("poll $SRV.PING", err)
	p.failing = true
	for w := range p.watchers {
		w.feed.Report(p.err)
	}
}
