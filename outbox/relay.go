package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/telemetry"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/metric"
)

// Relay defaults.
const (
	DefaultBatchSize      = 100
	DefaultPollInterval   = time.Second
	DefaultPublishTimeout = 5 * time.Second
	DefaultRetention      = 24 * time.Hour
	DefaultCleanupEvery   = time.Minute
	DefaultLeaseTTL       = 30 * time.Second
	DefaultConcurrency    = 16
	DefaultMaxBackoff     = 10 * time.Second
	minBackoff            = 100 * time.Millisecond
	minRecheck            = 2 * time.Millisecond
	maxRecheck            = time.Second
	cleanupBatch          = 10_000
)

// Notifier tells a relay that events were committed: Listen calls wake at
// every commit (and once when it starts listening, for what was committed
// before) until ctx ends or it fails; the relay restarts a failed one
// after a back-off and polls meanwhile. Package pgnotify is one, on
// PostgreSQL's LISTEN/NOTIFY.
type Notifier interface {
	Listen(ctx context.Context, wake func()) error
}

// Option configures a Relay.
type Option func(*config)

type config struct {
	dialect        *Dialect
	broker         broker.Broker
	batch          int
	poll           time.Duration
	publishTimeout time.Duration
	retention      time.Duration
	cleanupEvery   time.Duration
	leaseTTL       time.Duration
	concurrency    int
	maxBackoff     time.Duration
	notifier       Notifier
	logger         *slog.Logger
	mp             metric.MeterProvider
	noMigrate      bool
	name           string
	errs           []error
}

// WithDialect sets the SQL dialect (default: told from db's driver, see
// DialectOf).
func WithDialect(d Dialect) Option { return func(c *config) { c.dialect = &d } }

// WithBroker sets the broker the relay publishes to. Without it, a relay
// run by a ferry.Service (ferry.WithComponent) publishes to the service's
// broker.
func WithBroker(b broker.Broker) Option { return func(c *config) { c.broker = b } }

// WithBatchSize sets how many events one round claims (default 100).
func WithBatchSize(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("outbox: batch size %d: want ≥ 1", n))
		}
		c.batch = n
	}
}

// WithPollInterval sets how long an idle relay waits for a wake-up
// (Transact, Notify, a Notifier) before it looks at the table anyway
// (default 1 s): the latency of an event whose commit woke nobody.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("outbox: poll interval %v: want > 0", d))
		}
		c.poll = d
	}
}

// WithPublishTimeout bounds each publish (default 5 s).
func WithPublishTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("outbox: publish timeout %v: want > 0", d))
		}
		c.publishTimeout = d
	}
}

// WithRetention sets how long sent events stay in the table before
// cleanup deletes them (default 24 h; 0 deletes them at the next cleanup).
// Events that failed for good (dead) are never deleted.
func WithRetention(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("outbox: retention %v: want ≥ 0", d))
		}
		c.retention = d
	}
}

// WithCleanupEvery sets how often the relay deletes sent events older
// than the retention (default every minute).
func WithCleanupEvery(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("outbox: cleanup interval %v: want > 0", d))
		}
		c.cleanupEvery = d
	}
}

// WithLeaseTTL sets how long a replica may publish what it took without
// renewing (default 30 s): on SQLite the publishing replica's lease, on
// PostgreSQL a claimed batch. It is how soon another replica takes over
// the events of one that died. It must be at least the publish timeout and
// two seconds: a publish begins only while more than the publish timeout
// and a second are left, so what the lease has beyond that is how long a
// round may go on publishing. A replica stalled (paused, swapped out) for
// longer than this in the middle of a publish may publish an event a
// second time; the broker's de-duplication by message ID absorbs that.
func WithLeaseTTL(d time.Duration) Option { return func(c *config) { c.leaseTTL = d } }

// WithConcurrency sets how many keys a round publishes at once (default
// 16); the events of one key always go one after another, in order.
func WithConcurrency(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("outbox: concurrency %d: want ≥ 1", n))
		}
		c.concurrency = n
	}
}

// WithMaxBackoff caps the wait between rounds while publishing fails
// (default 10 s); it starts at 100 ms and doubles.
func WithMaxBackoff(d time.Duration) Option {
	return func(c *config) {
		if d < minBackoff {
			c.errs = append(c.errs, fmt.Errorf("outbox: max back-off %v: want ≥ %v", d, minBackoff))
		}
		c.maxBackoff = d
	}
}

// WithNotifier sets a Notifier that wakes the relay at commits made
// anywhere (pgnotify.New on PostgreSQL).
func WithNotifier(n Notifier) Option { return func(c *config) { c.notifier = n } }

// WithLogger sets the logger of failures and take-overs (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMeterProvider sets the meter provider of the relay's metrics
// (default otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// WithoutMigrate stops Start from creating the tables: for a schema made
// by the user's own migrations from Dialect.Schema.
func WithoutMigrate() Option { return func(c *config) { c.noMigrate = true } }

// WithName names this replica in the SQLite lease and in logs (default
// host name, process ID and a random suffix).
func WithName(name string) Option { return func(c *config) { c.name = name } }

// Relay moves the events stored by Publish to a broker: in order per key,
// each with its stored message ID as the broker's de-duplication ID,
// marking each sent once the broker has it, and trying again with
// back-off while the broker fails. An event is published at least once:
// a relay that dies between publishing and marking publishes it again
// after restart, which a de-duplicating broker (JetStream, within its
// window) and an idempotent consumer (package inbox) absorb. Replicas may
// run at once on one database without publishing an event twice (see
// Postgres and SQLite).
//
// A Relay is a ferry.Component: ferry.WithComponent starts it once the
// service's broker is open and stops it, draining the round in flight,
// before the broker closes.
type Relay struct {
	db   *sql.DB
	cfg  config
	d    Dialect
	wake chan struct{}

	mu        sync.Mutex
	brokerFn  func() broker.Broker
	started   bool
	stopping  chan struct{}
	done      chan struct{}
	hard      context.Context // the rounds' context: cancelled when Stop's ends first
	hardStop  context.CancelFunc
	leaseTill time.Time // SQLite: publishing allowed until then
	leader    bool

	metrics *relayMetrics
}

// NewRelay returns a relay of the outbox in db; Start runs it.
func NewRelay(db *sql.DB, opts ...Option) *Relay {
	c := config{
		batch: DefaultBatchSize, poll: DefaultPollInterval, publishTimeout: DefaultPublishTimeout,
		retention: DefaultRetention, cleanupEvery: DefaultCleanupEvery, leaseTTL: DefaultLeaseTTL,
		concurrency: DefaultConcurrency, maxBackoff: DefaultMaxBackoff,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.name == "" {
		host, _ := os.Hostname()
		c.name = host + "-" + strconv.Itoa(os.Getpid()) + "-" + nuid.Next()[:8]
	}
	r := &Relay{db: db, cfg: c, wake: make(chan struct{}, 1)}
	if c.broker != nil {
		b := c.broker
		r.brokerFn = func() broker.Broker { return b }
	}
	return r
}

// UseBroker gives the relay a broker to publish to unless it has one
// (WithBroker): ferry.Service calls it with its own.
func (r *Relay) UseBroker(f func() broker.Broker) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.brokerFn == nil {
		r.brokerFn = f
	}
}

// Wake makes the relay look at the table now (Notify calls it).
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Name is the replica's name (WithName).
func (r *Relay) Name() string { return r.cfg.name }

// Start checks the configuration, creates the tables unless told not to,
// and starts relaying.
func (r *Relay) Start(ctx context.Context) error {
	if len(r.cfg.errs) > 0 {
		return errors.Join(r.cfg.errs...)
	}
	if r.db == nil {
		return errors.New("outbox: relay: nil database")
	}
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return errors.New("outbox: relay: started twice")
	}
	r.started = true
	bf := r.brokerFn
	r.mu.Unlock()
	if bf == nil || bf() == nil {
		return errors.New("outbox: relay: no broker: pass outbox.WithBroker, or run the relay in a ferry.Service that has one (ferry.WithBroker, or broker.kind in its configuration)")
	}
	if r.cfg.dialect != nil {
		r.d = *r.cfg.dialect
	} else {
		d, err := DialectOf(r.db)
		if err != nil {
			return err
		}
		r.d = d
	}
	// A publish begins only while more than the publish timeout and a
	// second of the lease (or claim) are left: a lease not longer than that
	// would never publish (and say nothing), so leave a round a second.
	if r.cfg.leaseTTL < r.cfg.publishTimeout+2*time.Second {
		return fmt.Errorf("outbox: lease TTL %v: want at least the publish timeout (%v) and two seconds (a publish begins only while more than the publish timeout and a second of the lease are left)", r.cfg.leaseTTL, r.cfg.publishTimeout)
	}
	if !r.cfg.noMigrate {
		if err := Migrate(ctx, r.db, r.d); err != nil {
			return err
		}
	}
	m, err := newRelayMetrics(r)
	if err != nil {
		return err
	}
	r.metrics = m
	r.stopping = make(chan struct{})
	r.done = make(chan struct{})
	r.hard, r.hardStop = context.WithCancel(context.Background())
	register(r)
	var wg sync.WaitGroup
	if r.cfg.notifier != nil {
		wg.Go(r.listen)
	}
	go func() {
		r.run()
		wg.Wait()
		close(r.done)
	}()
	return nil
}

// Stop stops relaying: the round in flight finishes (its events are
// published and marked) unless ctx ends first, when it is cancelled — its
// unmarked events are published again by the next relay. On SQLite the
// lease is given up, so another replica takes over at once.
func (r *Relay) Stop(ctx context.Context) error {
	r.mu.Lock()
	if r.stopping == nil {
		r.mu.Unlock()
		return nil
	}
	select {
	case <-r.stopping:
	default:
		close(r.stopping)
	}
	r.mu.Unlock()
	var err error
	select {
	case <-r.done:
	case <-ctx.Done():
		r.hardStop()
		<-r.done
		err = fmt.Errorf("outbox: relay: stop: %w", ctx.Err())
	}
	r.hardStop()
	unregister(r)
	r.metrics.close()
	if r.d.name == SQLite.name {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, lerr := r.db.ExecContext(rctx, `UPDATE ferry_outbox_lease SET expires_us = 0 WHERE name = 'relay' AND owner = $1`, r.cfg.name); lerr != nil {
			r.cfg.logger.Warn("outbox: relay: give up the lease", "relay", r.cfg.name, "error", lerr)
		}
	}
	return err
}

// errFollower: on SQLite, another replica holds the lease.
var errFollower = errors.New("outbox: another replica publishes")

func (r *Relay) run() {
	var backoff, recheck time.Duration
	failing := 0
	nextCleanup := time.Now()
	for {
		full, hidden, err := r.round(r.hard)
		var wait time.Duration
		if !hidden {
			recheck = 0
		}
		switch {
		case r.hard.Err() != nil:
			return
		case errors.Is(err, errFollower):
			wait = min(r.cfg.poll, r.cfg.leaseTTL/3)
		case err != nil:
			failing++
			backoff = min(max(2*backoff, minBackoff), r.cfg.maxBackoff)
			wait = backoff/2 + rand.N(backoff/2+1)
			r.cfg.logger.Warn("outbox: relay: publishing fails; trying again", "relay", r.cfg.name, "rounds", failing, "retry_in", wait.Round(time.Millisecond), "error", err)
		default:
			if failing > 0 {
				r.cfg.logger.Info("outbox: relay: publishing again", "relay", r.cfg.name, "after_failed_rounds", failing)
			}
			failing, backoff = 0, 0
			switch {
			case full:
			case hidden:
				// Committed events wait (PostgreSQL) behind a transaction
				// still in progress, or another replica's round: no commit
				// will wake the relay for them, so look again soon, less
				// often while it lasts.
				recheck = min(max(2*recheck, minRecheck), r.cfg.poll, maxRecheck)
				wait = recheck
			default:
				wait = r.cfg.poll
			}
		}
		if time.Now().After(nextCleanup) {
			r.cleanup()
			nextCleanup = time.Now().Add(r.cfg.cleanupEvery)
		}
		if wait == 0 {
			select {
			case <-r.stopping:
				return
			default:
				continue
			}
		}
		t := time.NewTimer(wait)
		wake := r.wake
		if backoff > 0 {
			wake = nil // a wake-up does not cut a back-off short
		}
		select {
		case <-r.stopping:
			t.Stop()
			return
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// listen runs the notifier until stop, restarting it after failures.
func (r *Relay) listen() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.stopping:
		case <-r.hard.Done():
		}
		cancel()
	}()
	backoff := time.Duration(0)
	for {
		err := r.cfg.notifier.Listen(ctx, r.Wake)
		if ctx.Err() != nil {
			return
		}
		backoff = min(max(2*backoff, minBackoff), r.cfg.maxBackoff)
		r.cfg.logger.Warn("outbox: relay: notifier failed; polling meanwhile", "relay", r.cfg.name, "retry_in", backoff, "error", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// row is one claimed event.
type row struct {
	id        int64
	txid      string
	messageID string
	topic     string
	key       string
	headers   string
	payload   []byte
	createdUS int64
	attempts  int
}

// outcome of publishing one row.
type outcome struct {
	sent bool
	dead bool
	err  error
}

// queryer is a *sql.DB or *sql.Tx.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// round claims one batch, publishes it and marks it; full says the batch
// was full, so more may be waiting; hidden that unsent events were left
// unclaimed (PostgreSQL: behind transactions in progress, or another
// replica's round).
func (r *Relay) round(ctx context.Context) (full, hidden bool, err error) {
	r.mu.Lock()
	bf := r.brokerFn
	r.mu.Unlock()
	b := bf()
	if b == nil {
		return false, false, errors.New("outbox: relay: the broker is gone")
	}
	var rows []row
	var until time.Time // publish only before then: the lease, or the claim
	if r.d.name == Postgres.name {
		until = time.Now().Add(r.cfg.leaseTTL) // measured before the claim is stamped: never late
		rows, full, hidden, err = r.claimPostgres(ctx)
	} else {
		if err := r.lease(ctx); err != nil {
			return false, false, err
		}
		until = r.leaseTill
		rows, err = claim(ctx, r.db, r.d.claim, r.cfg.batch)
		full = len(rows) == r.cfg.batch
	}
	if err != nil || len(rows) == 0 {
		return full, hidden, err
	}
	outs := r.publish(ctx, b, rows, until)
	var sent, untried []int64
	var failed error
	for i, o := range outs {
		switch {
		case o.sent:
			sent = append(sent, rows[i].id)
		case o.err != nil:
			if _, err := r.db.ExecContext(ctx, r.d.markFail, rows[i].id, o.err.Error(), r.dead(o.dead)); err != nil {
				return false, false, fmt.Errorf("outbox: relay: mark event %d failed: %w", rows[i].id, err)
			}
			if o.dead {
				r.cfg.logger.Error("outbox: relay: event cannot be published; marked dead", "relay", r.cfg.name, "id", rows[i].id, "message_id", rows[i].messageID, "topic", rows[i].topic, "error", o.err)
			} else if failed == nil {
				failed = o.err
			}
		default:
			untried = append(untried, rows[i].id)
		}
	}
	if len(sent) > 0 {
		if _, err := r.db.ExecContext(ctx, r.d.markSent, time.Now().UnixMicro(), r.idList(sent)); err != nil {
			return false, false, fmt.Errorf("outbox: relay: mark %d events sent: %w", len(sent), err)
		}
	}
	r.metrics.sent(ctx, len(sent))
	if len(untried) > 0 && r.d.release != "" {
		// Give back what the round did not get to, for the next round (of
		// any replica) to take without waiting for the claim to lapse.
		if _, err := r.db.ExecContext(ctx, r.d.release, r.idList(untried)); err != nil {
			return false, false, fmt.Errorf("outbox: relay: release %d events: %w", len(untried), err)
		}
	}
	if failed != nil {
		return false, false, failed
	}
	return full, hidden, nil
}

// claimPostgres claims a batch in one short transaction: the rows it
// locks (FOR UPDATE SKIP LOCKED) that are visible to every later
// transaction, less the keys that have older unsent rows claimed by
// another replica, stamped claimed for the lease TTL.
func (r *Relay) claimPostgres(ctx context.Context) (rows []row, full, hidden bool, err error) {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, false, fmt.Errorf("outbox: relay: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if rows, err = claim(ctx, tx, r.d.claim, r.cfg.batch); err != nil {
		return nil, false, false, err
	}
	full = len(rows) == r.cfg.batch
	if len(rows) > 0 {
		if rows, err = r.inOrder(ctx, tx, rows); err != nil {
			return nil, false, false, err
		}
	}
	if len(rows) > 0 {
		ids := make([]int64, len(rows))
		for i, x := range rows {
			ids[i] = x.id
		}
		if _, err := tx.ExecContext(ctx, r.d.markClaimed, r.cfg.name, r.cfg.leaseTTL.Microseconds(), ids); err != nil {
			return nil, false, false, fmt.Errorf("outbox: relay: claim: %w", err)
		}
	}
	if !full {
		// Unsent events that this round left, claimed by nobody: behind a
		// transaction in progress, locked or held back for their key's
		// order by another replica's round. No commit will wake the relay
		// for them. One statement after the claim: the claim's own
		// snapshot may have been taken before such a transaction ended.
		if err := tx.QueryRowContext(ctx, r.d.hidden).Scan(&hidden); err != nil {
			return nil, false, false, fmt.Errorf("outbox: relay: look for events left: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, false, false, fmt.Errorf("outbox: relay: claim: commit: %w", err)
	}
	return rows, full, hidden, nil
}

func (r *Relay) dead(d bool) any {
	if r.d.name == SQLite.name {
		if d {
			return 1
		}
		return 0
	}
	return d
}

// idList is ids as the dialect's markSent takes them.
func (r *Relay) idList(ids []int64) any {
	if r.d.name == Postgres.name {
		return ids
	}
	var sb strings.Builder
	sb.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatInt(id, 10))
	}
	sb.WriteByte(']')
	return sb.String()
}

func claim(ctx context.Context, q queryer, query string, n int) ([]row, error) {
	rs, err := q.QueryContext(ctx, query, n)
	if err != nil {
		return nil, fmt.Errorf("outbox: relay: claim: %w", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var x row
		if err := rs.Scan(&x.id, &x.txid, &x.messageID, &x.topic, &x.key, &x.headers, &x.payload, &x.createdUS, &x.attempts); err != nil {
			return nil, fmt.Errorf("outbox: relay: claim: %w", err)
		}
		out = append(out, x)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("outbox: relay: claim: %w", err)
	}
	return out, nil
}

// inOrder keeps, on PostgreSQL, the claimed rows that no unsent row
// outside the batch precedes within their key: such a row is held by
// another replica (locked in its claim, or stamped claimed), and
// publishing after it would let a key's events overtake each other. The
// foreign row may sit before the batch's rows of a key or between them
// (the claim skips rows another replica has locked), so each key keeps
// only its rows older than its oldest foreign row. Rows without a key are
// kept. Of replicas claiming one key at once, the one holding its oldest
// row keeps a non-empty prefix, so the key always moves on.
func (r *Relay) inOrder(ctx context.Context, tx *sql.Tx, rows []row) ([]row, error) {
	last := map[string]int{} // key → index of its last claimed row
	var all []int64
	for i, x := range rows {
		all = append(all, x.id)
		if x.key != "" {
			last[x.key] = i
		}
	}
	if len(last) == 0 {
		return rows, nil
	}
	var ks, txs []string
	var ids []int64
	for k, i := range last {
		ks, txs, ids = append(ks, k), append(txs, rows[i].txid), append(ids, rows[i].id)
	}
	rs, err := tx.QueryContext(ctx, r.d.older, ks, txs, ids, all)
	if err != nil {
		return nil, fmt.Errorf("outbox: relay: check key order: %w", err)
	}
	defer rs.Close()
	type pos struct {
		tx uint64
		id int64
	}
	foreign := map[string]pos{} // key → its oldest unsent row outside the batch
	for rs.Next() {
		var k, t string
		var id int64
		if err := rs.Scan(&k, &t, &id); err != nil {
			return nil, fmt.Errorf("outbox: relay: check key order: %w", err)
		}
		n, err := strconv.ParseUint(t, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("outbox: relay: check key order: transaction ID %q: %w", t, err)
		}
		foreign[k] = pos{n, id}
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("outbox: relay: check key order: %w", err)
	}
	if len(foreign) == 0 {
		return rows, nil
	}
	out := rows[:0:0]
	for _, x := range rows {
		f, held := foreign[x.key]
		if held {
			n, err := strconv.ParseUint(x.txid, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("outbox: relay: check key order: transaction ID %q: %w", x.txid, err)
			}
			if n > f.tx || n == f.tx && x.id > f.id {
				continue // after a row another replica holds
			}
		}
		out = append(out, x)
	}
	return out, nil
}

// lease renews or takes the SQLite lease; errFollower if another replica
// holds it.
func (r *Relay) lease(ctx context.Context) error {
	if r.leader && time.Until(r.leaseTill) > max(r.cfg.leaseTTL/2, r.cfg.publishTimeout+2*time.Second) {
		// Held for a while yet: no other replica can take it before it
		// lapses, and every write waits its turn behind the application's
		// on SQLite, so renew only past half-time (or once too little is
		// left to begin a publish).
		return nil
	}
	now := time.Now()
	res, err := r.db.ExecContext(ctx, `UPDATE ferry_outbox_lease SET owner = $1, expires_us = $2 WHERE name = 'relay' AND (owner = $1 OR expires_us < $3)`,
		r.cfg.name, now.Add(r.cfg.leaseTTL).UnixMicro(), now.UnixMicro())
	if err != nil {
		return fmt.Errorf("outbox: relay: lease: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("outbox: relay: lease: %w", err)
	}
	if n == 0 {
		if r.leader {
			r.leader = false
			r.cfg.logger.Warn("outbox: relay: lost the lease to another replica", "relay", r.cfg.name)
		}
		return errFollower
	}
	if !r.leader {
		r.leader = true
		r.cfg.logger.Info("outbox: relay: took the lease; publishing", "relay", r.cfg.name)
	}
	r.leaseTill = now.Add(r.cfg.leaseTTL)
	return nil
}

// publish publishes rows, the rows of one key one after another in order
// and up to Concurrency keys at once, each begun only if it can end before
// until (the lease or the claim). A failure that is not permanent
// stops the round: the rest of its key waits, and the other keys' next
// publishes are not begun (the broker is likely down).
func (r *Relay) publish(ctx context.Context, b broker.Broker, rows []row, until time.Time) []outcome {
	outs := make([]outcome, len(rows))
	var groups [][]int
	byKey := map[string]int{}
	for i, x := range rows {
		if x.key == "" {
			groups = append(groups, []int{i})
			continue
		}
		g, ok := byKey[x.key]
		if !ok {
			g = len(groups)
			byKey[x.key] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	sem := make(chan struct{}, r.cfg.concurrency)
	var wg sync.WaitGroup
	for _, g := range groups {
		select {
		case sem <- struct{}{}:
		case <-rctx.Done():
		}
		if rctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, i := range g {
				if rctx.Err() != nil {
					return
				}
				if time.Until(until) < r.cfg.publishTimeout+time.Second {
					stop() // renew the lease or claim first: never publish without one
					return
				}
				o := r.publishOne(rctx, b, &rows[i])
				outs[i] = o
				if o.err != nil && !o.dead {
					stop()
					return
				}
			}
		})
	}
	wg.Wait()
	return outs
}

func (r *Relay) publishOne(ctx context.Context, b broker.Broker, x *row) outcome {
	h, err := decodeHeaders(x.headers)
	if err != nil {
		return outcome{dead: true, err: fmt.Errorf("stored headers: %w", err)}
	}
	// The stored trace context becomes the publish's parent, so a traced
	// broker's producer span, and the consumer's, join the trace of the
	// request that committed the event.
	pctx := propagator.Extract(ctx, telemetry.HeaderCarrier{H: h})
	pctx, cancel := context.WithTimeout(pctx, r.cfg.publishTimeout)
	defer cancel()
	start := time.Now()
	err = b.Publish(pctx, &broker.Message{Topic: x.topic, ID: x.messageID, Key: x.key, Header: h, Data: x.payload})
	r.metrics.published(ctx, err, time.Since(start))
	switch {
	case err == nil:
		return outcome{sent: true}
	case permanent(err):
		return outcome{dead: true, err: err}
	}
	return outcome{err: err}
}

// permanent says a publish error will not go away by trying again: the
// broker refused the message itself (broker.IsPermanent: marked permanent,
// or InvalidArgument, such as an invalid topic).
func permanent(err error) bool { return broker.IsPermanent(err) }

// cleanup deletes sent events past the retention.
func (r *Relay) cleanup() {
	ctx, cancel := context.WithTimeout(r.hard, time.Minute)
	defer cancel()
	before := time.Now().Add(-r.cfg.retention).UnixMicro()
	for {
		res, err := r.db.ExecContext(ctx, r.d.cleanup, before, cleanupBatch)
		if err != nil {
			if ctx.Err() == nil {
				r.cfg.logger.Warn("outbox: relay: cleanup", "relay", r.cfg.name, "error", err)
			}
			return
		}
		if n, err := res.RowsAffected(); err != nil || n < cleanupBatch {
			return
		}
	}
}

// Backlog is the events not yet sent: how many, and when the oldest was
// stored (zero when none). Dead events are not counted.
func (r *Relay) Backlog(ctx context.Context) (n int64, oldest time.Time, err error) {
	d := r.d
	if d.name == "" {
		if d, err = DialectOf(r.db); err != nil {
			return 0, time.Time{}, err
		}
	}
	var us int64
	if err := r.db.QueryRowContext(ctx, d.backlog).Scan(&n, &us); err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox: backlog: %w", err)
	}
	if n > 0 {
		oldest = time.UnixMicro(us)
	}
	return n, oldest, nil
}
