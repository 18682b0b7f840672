package kafka

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Bounds of a subscription's house-keeping. None of them is a promise
// to the handler; they keep clean-up from hanging on a dead cluster.
const (
	// cleanupTimeout bounds the final commit, leaving the group and
	// deleting a fan-out group, each, after Drain's context ended.
	cleanupTimeout = 10 * time.Second
	// commitRetry is the pause before a failed commit is tried again.
	commitRetry = time.Second
	// minPrefetch is the fewest records one poll asks for.
	minPrefetch = 256
)

// tp names a partition.
type tp struct {
	topic     string
	partition int32
}

// partition tracks the records of one partition this member took in its
// current assignment, in fetch order, and the highest contiguous prefix
// of them that is finished: its offset is what gets committed, so a
// record is never committed before it and every record before it is
// finished — a crash replays, never skips.
type partition struct {
	tp
	ctx    context.Context    // the handlers' context
	cancel context.CancelFunc // cancels it: the partition was lost, or its revocation gave up waiting
	// revoking is closed when the partition is being taken away: no
	// record of it starts any more and no failed one is retried here.
	revoking chan struct{}
	running  sync.WaitGroup // handlers of its records that run

	// Under subscription.mu:
	revoked bool  // revoking is closed
	gone    bool  // no longer tracked: completions are not counted
	next    int64 // sequence number of the next record taken
	// pending[head:] are the records taken and not yet part of the
	// finished prefix, from sequence number base on; the array is reused
	// as the prefix grows, so tracking allocates nothing once it is big
	// enough.
	pending []slot
	head    int
	base    int64
	mark    kgo.EpochOffset
	hasMark bool  // mark holds a finished prefix
	sent    int64 // the last offset committed successfully, -1 for none
}

// slot is one record taken from a partition.
type slot struct {
	offset int64
	epoch  int32
	done   bool
}

// job is one record for a worker, with what its handler's first attempt
// gets. A poll's jobs are allocated together.
type job struct {
	rec *kgo.Record
	p   *partition
	seq int64
	d   broker.Delivery // the first attempt's
	ctx recordContext   // p.ctx, carrying rec
}

// recordContext is a partition's context carrying a record for
// RecordFromContext.
type recordContext struct {
	context.Context
	rec *kgo.Record
}

func (c *recordContext) Value(key any) any {
	if _, ok := key.(recordKey); ok {
		return c.rec
	}
	return c.Context.Value(key)
}

// subscription is one running subscription: its own franz-go client in
// its consumer group, a poll loop feeding Concurrency workers, and a
// committer.
type subscription struct {
	b       *Broker
	topic   string
	name    string
	group   string
	fanOut  bool
	h       broker.Handler
	cfg     broker.SubscribeConfig
	cl      *kgo.Client
	polling int // records one poll asks for

	queue    queue              // polled records, waiting for the workers
	base     context.Context    // parent of the partitions' contexts
	cancel   context.CancelFunc // cancels it when a drain runs out of time
	pollCtx  context.Context    // ends the poll loop
	stopPoll context.CancelFunc
	stopping chan struct{} // closed when Drain starts
	loopDone chan struct{} // closed when the poll loop returned
	workers  sync.WaitGroup
	joined   chan struct{} // closed at the first assignment
	joinOnce sync.Once

	mu    sync.Mutex
	parts map[tp]*partition

	commitMu      sync.Mutex    // one commit at a time, revocations included
	commitSig     chan struct{} // a finished prefix grew
	commitStop    chan struct{} // closed to stop the committer
	committerDone chan struct{}

	drainOnce sync.Once
	drainErr  error
}

// groupID returns the consumer group of a subscription: per queue and
// topic, as JetStream's durable consumers and NATS queue groups are; a
// fan-out subscription gets a group of its own.
func groupID(cfg broker.SubscribeConfig, topic string) (string, bool) {
	if cfg.Queue != "" {
		return cfg.Queue + "__" + topic, false
	}
	return "ferry-fanout__" + topic + "__" + strings.ToLower(rand.Text()), true
}

// patternRegexp translates a NATS-style pattern into the regular
// expression franz-go matches topic names with: "*" is one token, ">"
// one or more. Tokens hold no '.', so the translation is exact.
func patternRegexp(pattern string) string {
	toks := strings.Split(pattern, ".")
	for i, t := range toks {
		switch t {
		case "*":
			toks[i] = `[^.]+`
		case ">":
			toks[i] = `[^.]+(?:\.[^.]+)*`
		default:
			toks[i] = regexp.QuoteMeta(t)
		}
	}
	return "^" + strings.Join(toks, `\.`) + "$"
}

func hasWildcard(topic string) bool {
	for _, t := range strings.Split(topic, ".") {
		if t == "*" || t == ">" {
			return true
		}
	}
	return false
}

func (b *Broker) subscribe(ctx context.Context, topic string, h broker.Handler, cfg broker.SubscribeConfig) (*subscription, error) {
	group, fanOut := groupID(cfg, topic)
	pattern := hasWildcard(topic)
	topics, err := b.existing(ctx, topic, pattern)
	if err != nil {
		return nil, err
	}
	existed := topics
	if len(topics) == 0 && !pattern && b.o.autoCreate {
		if err := b.createTopic(ctx, topic); err != nil {
			return nil, err
		}
		topics = []string{topic} // empty: its start is its end
	}
	// A fan-out subscription, and a new queue with DeliverNew, start at
	// the end of the topics that exist: their group gets those offsets
	// committed before it is joined, so a message published once
	// Subscribe returned is never missed, however long the join takes.
	// Topics without a commit (new ones, for a pattern) start at their
	// beginning.
	if fanOut || cfg.DeliverNew {
		if err := b.startAtEnd(ctx, group, existed); err != nil {
			return nil, err
		}
	}
	s := &subscription{
		b:             b,
		topic:         topic,
		name:          cfg.Name(topic),
		group:         group,
		fanOut:        fanOut,
		h:             h,
		cfg:           cfg,
		polling:       max(2*cfg.Concurrency, minPrefetch),
		stopping:      make(chan struct{}),
		loopDone:      make(chan struct{}),
		joined:        make(chan struct{}),
		parts:         map[tp]*partition{},
		commitSig:     make(chan struct{}, 1),
		commitStop:    make(chan struct{}),
		committerDone: make(chan struct{}),
	}
	if cfg.Ordered {
		s.polling = 1 // nothing waits in the client's hands between two records
	}
	s.queue.init(s.polling)
	copts := []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // never skip what is still stored
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
	}
	if pattern {
		copts[1] = kgo.ConsumeTopics(patternRegexp(topic))
		copts = append(copts, kgo.ConsumeRegex(), kgo.MetadataMaxAge(b.o.topicRefresh), kgo.MetadataMinAge(min(b.o.topicRefresh, time.Second)))
	}
	cl, err := kgo.NewClient(b.o.clientOpts(copts...)...)
	if err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker/kafka: subscribe %q: %w", topic, err)
	}
	s.cl = cl
	// Handlers outlive the Subscribe call; they keep ctx's values only.
	s.base, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.pollCtx, s.stopPoll = context.WithCancel(s.base)
	s.workers.Add(cfg.Concurrency)
	for range cfg.Concurrency {
		go s.worker()
	}
	go s.committer()
	go s.loop()
	if len(topics) > 0 {
		// Return once a member of the group: "subscribe, then publish"
		// then finds the group balanced.
		select {
		case <-s.joined:
		case <-ctx.Done():
			_ = s.Drain(context.WithoutCancel(ctx))
			return nil, errs.Newf(errs.CodeOf(ctx.Err()), "broker/kafka: subscribe %q: not a member of group %s before the context ended: %v", topic, group, ctx.Err())
		}
	}
	return s, nil
}

// existing returns the topics the subscription covers that exist now.
// It asks for metadata itself: kadm's requests would create a missing
// topic with the cluster's defaults, before createTopic could apply
// WithPartitions.
func (b *Broker) existing(ctx context.Context, topic string, pattern bool) ([]string, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	if !pattern {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, b.cl)
	if err != nil {
		return nil, failure(ctx, fmt.Sprintf("subscribe %q: list topics", topic), err)
	}
	var out []string
	for _, t := range resp.Topics {
		if t.Topic == nil || t.IsInternal || !broker.Match(topic, *t.Topic) {
			continue
		}
		switch err := kerr.ErrorForCode(t.ErrorCode); {
		case err == nil:
			out = append(out, *t.Topic)
		case errors.Is(err, kerr.UnknownTopicOrPartition):
		default:
			return nil, failure(ctx, fmt.Sprintf("subscribe %q: topic %s", topic, *t.Topic), err)
		}
	}
	return out, nil
}

// createTopic creates topic with WithPartitions' figures; one that exists
// already is fine.
func (b *Broker) createTopic(ctx context.Context, topic string) error {
	resp, err := b.adm.CreateTopic(ctx, b.o.partitions, b.o.replication, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return failure(ctx, fmt.Sprintf("subscribe %q: create the topic", topic), err)
	}
	return nil
}

// startAtEnd commits the end offsets of topics to group for the
// partitions the group has no commit for.
func (b *Broker) startAtEnd(ctx context.Context, group string, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	ends, err := b.adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return failure(ctx, fmt.Sprintf("group %s: list end offsets", group), err)
	}
	have, err := b.adm.FetchOffsets(ctx, group)
	if err == nil {
		err = have.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) { // a group never seen has no commits
		have, err = nil, nil
	}
	if err != nil {
		return failure(ctx, fmt.Sprintf("group %s: fetch committed offsets", group), err)
	}
	set := kadm.Offsets{}
	ends.Each(func(l kadm.ListedOffset) {
		if o, ok := have.Lookup(l.Topic, l.Partition); ok && o.At >= 0 {
			return
		}
		set.Add(kadm.Offset{Topic: l.Topic, Partition: l.Partition, At: l.Offset, LeaderEpoch: -1})
	})
	if len(set) == 0 {
		return nil
	}
	if err := b.adm.CommitAllOffsets(ctx, group, set); err != nil {
		return failure(ctx, fmt.Sprintf("group %s: start at the end of %s", group, strings.Join(topics, ",")), err)
	}
	return nil
}

// Topic returns the subscribed topic.
func (s *subscription) Topic() string { return s.topic }

func (s *subscription) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// loop polls records, files them under their partitions while rebalances
// wait (BlockRebalanceOnPoll), then lets rebalances go on and queues the
// records for the workers, polling again at once unless a poll's worth
// is waiting. It closes the queue when it returns.
func (s *subscription) loop() {
	defer close(s.loopDone)
	defer s.queue.close()
	for {
		fs := s.cl.PollRecords(s.pollCtx, s.polling)
		if s.pollCtx.Err() != nil || fs.IsClientClosed() {
			s.cl.AllowRebalance()
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				s.cfg.Logger.Warn("broker/kafka: fetching", "topic", t, "partition", p, "subscription", s.name, "error", err)
			}
		})
		jobs := s.file(fs.NumRecords(), fs.EachRecord)
		s.cl.AllowRebalance()
		if len(jobs) == 0 {
			continue
		}
		if s.queue.put(jobs) {
			select {
			case <-s.queue.room:
			case <-s.stopping:
				return // the records not started are not committed: handed back
			}
		}
	}
}

// file makes the jobs of a poll's n records, which each calls back with,
// and files them under their partitions. One allocation for them all: the
// workers hold on to them (and the handlers to their deliveries), so it
// is never reused.
func (s *subscription) file(n int, each func(func(*kgo.Record))) []job {
	jobs := make([]job, 0, n)
	s.mu.Lock()
	defer s.mu.Unlock()
	each(func(r *kgo.Record) {
		jobs = append(jobs, job{rec: r})
		s.takeLocked(&jobs[len(jobs)-1])
	})
	return jobs
}

// takeLocked files j's record under its partition, starting the
// partition's tracking at its first record of this assignment.
func (s *subscription) takeLocked(j *job) {
	r := j.rec
	k := tp{r.Topic, r.Partition}
	p := s.parts[k]
	if p == nil {
		p = &partition{tp: k, revoking: make(chan struct{}), sent: -1}
		p.ctx, p.cancel = context.WithCancel(s.base)
		s.parts[k] = p
	}
	if len(p.pending) == cap(p.pending) && p.head > 0 { // full: move the unfinished to the front
		p.pending = p.pending[:copy(p.pending, p.pending[p.head:])]
		p.head = 0
	}
	p.pending = append(p.pending, slot{offset: r.Offset, epoch: r.LeaderEpoch})
	j.p, j.seq = p, p.next
	j.ctx = recordContext{Context: p.ctx, rec: r}
	p.next++
}

// worker handles records until the loop closes the queue.
func (s *subscription) worker() {
	defer s.workers.Done()
	for {
		j := s.queue.take(s.start)
		if j == nil {
			return
		}
		s.handle(j)
	}
}

// start decides, as a worker takes j, whether its record starts: not if
// its partition is being revoked or Drain has begun — it is then handed
// back uncommitted. Records are taken in poll order, one at a time, so the
// records of a partition that start are a prefix of those it queued:
// never one after a record that was handed back, whose commit could then
// not include it. A started record counts as running until handle returns.
func (s *subscription) start(j *job) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.p.revoked || s.isStopping() {
		return false
	}
	j.p.running.Add(1)
	return true
}

// queue hands polled records to the workers, in poll order. Idle workers
// are woken one at a time: the one that takes a record and sees more
// waiting wakes the next. A burst of quick records is thus handled by as
// few workers as keep up with it, instead of each record waking a worker
// of its own (a goroutine switch or two per record, the bulk of a quick
// handler's cost), while slow records still get every worker, a wake-up
// apart.
type queue struct {
	mu      sync.Mutex
	ready   sync.Cond // a record is waiting or the queue closed; L is mu
	polls   [][]job   // polls[0][next:] and the later polls are waiting
	next    int
	waiting int           // records waiting
	limit   int           // put asks the loop to wait from this many on
	full    bool          // the loop waits for room
	room    chan struct{} // fewer than limit wait again
	idle    int           // workers waiting on ready
	waking  bool          // a worker was woken and has not looked yet
	closed  bool          // the loop ended: waiting records are dropped
}

func (q *queue) init(limit int) {
	q.ready.L = &q.mu
	q.limit = limit
	q.room = make(chan struct{}, 1)
}

// put queues the records of a poll after those waiting; true if limit
// or more wait now: the loop should not poll before room is signalled.
func (q *queue) put(jobs []job) (full bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.polls = append(q.polls, jobs)
	q.waiting += len(jobs)
	q.wakeLocked()
	q.full = q.waiting >= q.limit
	return q.full
}

// wakeLocked wakes an idle worker if records wait and no worker is on
// its way to them already.
func (q *queue) wakeLocked() {
	if q.waiting > 0 && q.idle > 0 && !q.waking {
		q.waking = true
		q.ready.Signal()
	}
}

// take returns the next record that start accepts, waiting for one; nil
// once closed. Records start refuses are dropped. start runs under the
// queue's lock, so records are accepted or refused in queue order.
func (q *queue) take(start func(*job) bool) *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		for !q.closed && q.waiting == 0 {
			q.idle++
			q.ready.Wait()
			q.idle--
			q.waking = false // this worker was the one woken (or the queue closed)
		}
		if q.closed {
			return nil
		}
		j := &q.polls[0][q.next]
		q.waiting--
		if q.next++; q.next == len(q.polls[0]) {
			n := copy(q.polls, q.polls[1:])
			q.polls[n] = nil
			q.polls, q.next = q.polls[:n], 0
		}
		if q.full && q.waiting < q.limit {
			q.full = false
			select {
			case q.room <- struct{}{}:
			default: // the loop ended without waiting for it
			}
		}
		if start(j) {
			q.wakeLocked()
			return j
		}
	}
}

// close drops the records not taken and ends the workers' waits.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.polls, q.next, q.waiting = nil, 0, 0
	q.ready.Broadcast()
}

// handle runs one record to its outcome: success, or dead letter after
// MaxDeliver attempts or a permanent error, retrying in place with the
// back-off in between. A record cut short (drain, revocation) is left
// unfinished, so its partition's commit stops before it.
func (s *subscription) handle(j *job) {
	p := j.p
	defer p.running.Done() // start counted it
	for attempt := 1; ; attempt++ {
		d := &j.d
		if attempt > 1 { // a new one: the handler may have kept or changed the last
			d = new(broker.Delivery)
		}
		s.fill(d, j.rec, attempt)
		err := s.run(broker.NewDeliveryContext(&j.ctx, d), d)
		switch {
		case err == nil:
			s.complete(j)
			return
		case p.ctx.Err() != nil:
			return // cut short by a drain or a revocation: not the handler's failure
		case broker.IsPermanent(err) || attempt >= s.cfg.MaxDeliver:
			if s.deadLetter(p, d, err) {
				s.complete(j)
			}
			return
		}
		if !s.pause(p, s.cfg.Delay(attempt)) {
			return
		}
	}
}

// pause waits d before a retry; false if the partition is being revoked
// or the subscription drained meanwhile, so the record is handed back.
func (s *subscription) pause(p *partition, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.revoking:
	case <-s.stopping:
	case <-p.ctx.Done():
	}
	return false
}

// run calls the handler, turning a panic into an error.
func (s *subscription) run(ctx context.Context, d *broker.Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errs.Newf(errs.Internal, "broker/kafka: handler panic on %s: %v", d.Topic, r)
		}
	}()
	return s.h(ctx, d)
}

// deadLetter publishes the dead letter of d, retrying with the back-off
// while that fails; true once it is stored (or dropped, without a
// dead-letter topic), false if the record was handed back meanwhile.
func (s *subscription) deadLetter(p *partition, d *broker.Delivery, cause error) bool {
	log := s.cfg.Logger.With("topic", d.Topic, "id", d.ID, "partition", p.partition, "offset", d.Sequence, "deliveries", d.Attempt, "subscription", s.name, "error", cause)
	if s.cfg.DeadLetter == "" {
		log.Error("broker/kafka: dropping a message that failed for good (no dead-letter topic)")
		return true
	}
	dl := broker.DeadLetterMessage(d, s.cfg.DeadLetter, cause)
	// Offsets count per partition: the letter's ID names both.
	dl.Header.Set(broker.DeadLetterSequenceKey, strconv.FormatInt(int64(d.Sequence), 10))
	dl.ID = fmt.Sprintf("dlq-%s-%s-%d-%d", d.Subscription, d.Topic, p.partition, d.Sequence)
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(p.ctx, s.cfg.AckWait)
		err := s.b.Publish(ctx, dl)
		cancel()
		if err == nil {
			log.Warn("broker/kafka: dead-lettered", "dead_letter", s.cfg.DeadLetter)
			return true
		}
		log.Error("broker/kafka: storing a dead letter failed; trying again", "dead_letter", s.cfg.DeadLetter, "publish_error", err)
		if !s.pause(p, s.cfg.Delay(try)) {
			return false
		}
	}
}

// complete counts j's record as finished and, if that grows its
// partition's finished prefix, wakes the committer.
func (s *subscription) complete(j *job) {
	p := j.p
	s.mu.Lock()
	if p.gone {
		s.mu.Unlock()
		return
	}
	p.pending[p.head+int(j.seq-p.base)].done = true
	grew := false
	for p.head < len(p.pending) && p.pending[p.head].done {
		first := p.pending[p.head]
		p.mark = kgo.EpochOffset{Epoch: first.epoch, Offset: first.offset + 1}
		p.hasMark = true
		p.head++
		p.base++
		grew = true
	}
	if p.head == len(p.pending) { // all finished: start over at the front
		p.pending, p.head = p.pending[:0], 0
	}
	s.mu.Unlock()
	if grew {
		select {
		case s.commitSig <- struct{}{}:
		default:
		}
	}
}

// committer commits finished prefixes as they grow: one commit at a time,
// at most one per commit interval, each carrying everything finished
// since the previous one. Revocations and Drain commit at once.
func (s *subscription) committer() {
	defer close(s.committerDone)
	var retry <-chan time.Time
	for {
		select {
		case <-s.commitStop:
			return
		case <-s.commitSig:
		case <-retry:
		}
		retry = nil
		if err := s.commit(s.base, nil); err != nil {
			if s.base.Err() == nil {
				s.cfg.Logger.Warn("broker/kafka: committing offsets; trying again", "topic", s.topic, "subscription", s.name, "error", err)
			}
			retry = time.After(commitRetry)
			continue
		}
		// Pace the commits: what finishes meanwhile goes in the next.
		if d := s.b.o.commitInterval; d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-s.commitStop:
				t.Stop()
				return
			}
		}
	}
}

// commit commits the finished prefixes not yet committed of the tracked
// partitions (of only, if not nil).
func (s *subscription) commit(ctx context.Context, only map[tp]*partition) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	offs := map[string]map[int32]kgo.EpochOffset{}
	s.mu.Lock()
	for k, p := range s.parts {
		if only != nil && only[k] == nil {
			continue
		}
		if !p.hasMark || p.mark.Offset <= p.sent {
			continue
		}
		if offs[k.topic] == nil {
			offs[k.topic] = map[int32]kgo.EpochOffset{}
		}
		offs[k.topic][k.partition] = p.mark
	}
	s.mu.Unlock()
	if len(offs) == 0 {
		return nil
	}
	var errList []error
	s.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			errList = append(errList, err)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, t := range resp.Topics {
			for _, rp := range t.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					errList = append(errList, fmt.Errorf("%s[%d]: %w", t.Topic, rp.Partition, err))
					continue
				}
				if p := s.parts[tp{t.Topic, rp.Partition}]; p != nil {
					p.sent = max(p.sent, offs[t.Topic][rp.Partition].Offset)
				}
			}
		}
	})
	return errors.Join(errList...)
}

// assigned marks the subscription a member of its group.
func (s *subscription) assigned(context.Context, *kgo.Client, map[string][]int32) {
	s.joinOnce.Do(func() { close(s.joined) })
}

// revoked runs before partitions go to another member: their records
// stop starting and retrying, the handlers running finish (for up to
// AckWait, then they are cancelled), the finished prefix is committed,
// and the partitions are forgotten. The new owner starts right after the
// last finished record: nothing skipped, nothing committed twice.
func (s *subscription) revoked(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	ps := s.revoke(lost)
	if len(ps) == 0 {
		return
	}
	if s.base.Err() == nil { // a drain that gave up on its handlers waits no more
		for _, p := range ps {
			if !waitFor(&p.running, s.cfg.AckWait) {
				s.cfg.Logger.Warn("broker/kafka: handlers of a revoked partition still running after the ack wait; cancelling them", "topic", p.topic, "partition", p.partition, "subscription", s.name)
				p.cancel()
				waitFor(&p.running, s.cfg.AckWait/3)
			}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	if err := s.commit(cctx, ps); err != nil {
		s.cfg.Logger.Warn("broker/kafka: committing revoked partitions; their next owner replays from the last commit", "topic", s.topic, "subscription", s.name, "error", err)
	}
	s.forgetParts(ps)
}

// lost runs when the group session failed: the partitions may be another
// member's already, so nothing is committed; running handlers are
// cancelled and their records replayed by the next owner.
func (s *subscription) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	ps := s.revoke(lost)
	if len(ps) > 0 {
		s.cfg.Logger.Warn("broker/kafka: partitions lost (group session failed); unfinished records will be replayed", "topic", s.topic, "subscription", s.name)
	}
	s.forgetParts(ps)
}

// revoke stops records of the partitions in lost from starting or
// retrying, and returns those tracked.
func (s *subscription) revoke(lost map[string][]int32) map[tp]*partition {
	ps := map[tp]*partition{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, parts := range lost {
		for _, n := range parts {
			p := s.parts[tp{t, n}]
			if p == nil {
				continue
			}
			if !p.revoked {
				p.revoked = true
				close(p.revoking)
			}
			ps[p.tp] = p
		}
	}
	return ps
}

// forgetParts stops tracking ps: completions after this do not count.
func (s *subscription) forgetParts(ps map[tp]*partition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, p := range ps {
		p.gone = true
		p.cancel()
		if s.parts[k] == p {
			delete(s.parts, k)
		}
	}
}

// waitFor waits for wg at most d; false if it timed out.
func waitFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

type recordKey struct{}

// RecordFromContext returns the Kafka record a handler is running for:
// its partition, offset and key, which broker.Delivery does not carry.
// The record is the client's; do not change it.
func RecordFromContext(ctx context.Context) (*kgo.Record, bool) {
	r, ok := ctx.Value(recordKey{}).(*kgo.Record)
	return r, ok
}

// fill describes r to the handler in d. The ID and the header values
// share one string; the values of each header key, one slice.
func (s *subscription) fill(d *broker.Delivery, r *kgo.Record, attempt int) {
	*d = broker.Delivery{
		Message:      broker.Message{Topic: r.Topic, Data: r.Value},
		Attempt:      attempt,
		Sequence:     uint64(r.Offset),
		Published:    r.Timestamp,
		Subscription: s.name,
		Kind:         Kind,
	}
	size, others := 0, 0
	for _, h := range r.Headers {
		size += len(h.Value)
		if !strings.EqualFold(h.Key, IDHeader) {
			others++
		}
	}
	if others == 0 {
		d.Header = transport.Metadata{}
	} else {
		d.Header = make(transport.Metadata, others)
	}
	var b strings.Builder
	b.Grow(size)
	for _, h := range r.Headers {
		b.Write(h.Value)
	}
	all := b.String()
	var vals []string
	if others > 0 {
		vals = make([]string, 0, others)
	}
	at := 0
	for _, h := range r.Headers {
		v := all[at : at+len(h.Value)]
		at += len(h.Value)
		k := strings.ToLower(h.Key)
		switch {
		case k == IDHeader:
			d.ID = v
		case d.Header[k] != nil:
			d.Header[k] = append(d.Header[k], v)
		default:
			vals = append(vals, v)
			d.Header[k] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
}

// Drain stops polling (records polled and not started are handed back:
// they are not committed), waits for the handlers in flight until ctx
// ends, then cancels them; commits what finished, and leaves the group so
// that its partitions go to the other members at once. It returns ctx's
// error when handlers had to be cancelled.
func (s *subscription) Drain(ctx context.Context) error {
	s.drainOnce.Do(func() {
		close(s.stopping)
		s.stopPoll()
		_, finished := broker.AwaitHandlers(ctx, s.loopDone, &s.workers)
		if !finished {
			// Like http.Server.Shutdown, do not wait on handlers that
			// ignore their context: their records are not committed,
			// so the group's next owner replays them.
			s.cancel()
			s.drainErr = errs.Newf(errs.CodeOf(ctx.Err()), "broker/kafka: drain %q: handlers still running when the context ended; their messages are handed back: %v", s.topic, ctx.Err())
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		close(s.commitStop)
		<-s.committerDone
		if err := s.commit(cctx, nil); err != nil {
			s.cfg.Logger.Warn("broker/kafka: final commit failed; the next member replays from the last commit", "topic", s.topic, "subscription", s.name, "error", err)
		}
		s.cancel()
		// Leaving the group revokes every partition (the final commit
		// above left nothing to do) and hands them over at once.
		s.cl.AllowRebalance()
		if err := s.cl.LeaveGroupContext(cctx); err != nil && !errors.Is(err, context.Canceled) {
			s.cfg.Logger.Warn("broker/kafka: leaving the group; its partitions move after the session timeout", "group", s.group, "error", err)
		}
		s.cl.Close()
		if s.fanOut {
			// Nobody else ever joins a fan-out group: drop its offsets.
			if _, err := s.b.adm.DeleteGroup(cctx, s.group); err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
				s.cfg.Logger.Debug("broker/kafka: deleting a fan-out group", "group", s.group, "error", err)
			}
		}
		s.b.forget(s)
	})
	return s.drainErr
}
