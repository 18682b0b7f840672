package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	"github.com/ferry-go/ferry/transport/internal/callctx"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
)

// Defaults of the server and client options.
const (
	// DefaultMaxConcurrent is the default bound on handlers running at
	// once on a Server (WithMaxConcurrent).
	DefaultMaxConcurrent = 1024
	// DefaultTimeout is the default deadline of a call that carries none,
	// on a Server and on a Client (WithDefaultTimeout).
	DefaultTimeout = transport.DefaultTimeout
	// DefaultMaxQueued is the default bound on requests waiting for a
	// handler on a Server (WithMaxQueued), lowered to a quarter of the
	// connection's SyncQueueLen when that is smaller.
	DefaultMaxQueued = 8192
)

// startFlushTimeout bounds the round trip that makes sure the server has
// registered the subscriptions, when Start's context has no deadline.
const startFlushTimeout = 10 * time.Second

// ServerOption configures a Server.
type ServerOption func(*Server)

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithQueueGroup sets the queue group the endpoints subscribe in. The
// default is the service name, so that all instances of a service share
// its calls. An empty name keeps the default.
func WithQueueGroup(name string) ServerOption {
	return func(s *Server) {
		if name != "" {
			s.queue = name
		}
	}
}

// WithMaxConcurrent bounds the handlers running at once on this server;
// further requests wait for a free slot. Default 1024; n <= 0 keeps it.
func WithMaxConcurrent(n int) ServerOption {
	return func(s *Server) {
		if n > 0 {
			s.maxConcurrent = n
		}
	}
}

// WithMaxQueued bounds the requests waiting for a handler once
// WithMaxConcurrent handlers run. Past n, each request taken is answered at
// once with ResourceExhausted ("overloaded") instead of being served, until
// the backlog is back under n: a burst is refused in microseconds per
// request rather than left to time out, and the connection's own queue
// (nats.SyncQueueLen, 65,536 messages by default), which drops requests
// silently when full, is not reached. Default DefaultMaxQueued, or a quarter
// of the connection's SyncQueueLen if that is smaller; n <= 0 keeps it.
func WithMaxQueued(n int) ServerOption {
	return func(s *Server) {
		if n > 0 {
			s.maxQueued = n
		}
	}
}

// WithMaxTimeout caps the deadline a caller may ask for in Ferry-Timeout-Ms
// (default transport.DefaultMaxTimeout, 5m; d <= 0 keeps it): a longer one
// is cut to it, so no caller holds a handler for hours.
func WithMaxTimeout(d time.Duration) ServerOption {
	return func(s *Server) {
		if d > 0 {
			s.maxTimeout = d
		}
	}
}

// WithMaxRequestBytes makes the server reject request bodies larger than n
// bytes with ResourceExhausted. The default, 0, leaves the limit to the NATS
// server's max_payload.
func WithMaxRequestBytes(n int) ServerOption {
	return func(s *Server) {
		if n > 0 {
			s.maxRequestBytes = n
		}
	}
}

// WithDefaultTimeout sets the deadline of requests that carry no
// Ferry-Timeout-Ms header (default transport.DefaultTimeout, 30s; 0 or
// less keeps the default).
func WithDefaultTimeout(d time.Duration) ServerOption {
	return func(s *Server) {
		if d > 0 {
			s.defaultTimeout = d
		}
	}
}

// WithMaxStreams bounds the streams this server serves at once (default
// DefaultMaxStreams, 4096; n <= 0 keeps it). A stream's handler runs on a
// goroutine of its own for the stream's life, outside the WithMaxConcurrent
// workers; an open past the bound is refused with ResourceExhausted.
func WithMaxStreams(n int) ServerOption {
	return func(s *Server) {
		if n > 0 {
			s.maxStreams = n
		}
	}
}

// WithStreamWindow sets how many messages a caller may send on a stream
// ahead of what the handler has received (default DefaultStreamWindow, 64;
// n <= 0 keeps it). A stream buffers at most this many messages of at most
// the request limit (WithMaxRequestBytes) each.
func WithStreamWindow(n int) ServerOption {
	return func(s *Server) {
		if n > 0 {
			s.streamWindow = min(n, maxCredit)
		}
	}
}

// WithHeartbeat sets the heartbeat interval of the server's streams
// (default DefaultHeartbeat, 5s; d <= 0 keeps it): a stream that sent
// nothing for d sends a ping, and a caller that hears nothing for
// HeartbeatMisses intervals takes the server for gone.
func WithHeartbeat(d time.Duration) ServerOption {
	return func(s *Server) {
		if d > 0 {
			s.heartbeat = min(max(d, time.Millisecond), maxHeartbeat)
		}
	}
}

// Server serves a server.Server's endpoints over NATS and answers the NATS
// Services API discovery requests for it. It implements server.Transport.
// Create it with NewServer; ID, Info and Stats describe the running
// instance as discovery does.
type Server struct {
	nc              *nats.Conn
	conn            *Conn // Conn.Serve's: nc is taken from it at Start
	queue           string
	maxConcurrent   int
	maxQueued       int
	maxRequestBytes int
	defaultTimeout  time.Duration
	maxTimeout      time.Duration
	maxStreams      int
	streamWindow    int
	heartbeat       time.Duration

	mu       sync.Mutex // guards state
	state    int
	pool     *pool
	srv      *server.Server
	logger   *slog.Logger
	prefix   string // "<service>."
	byName   map[string]*endpoint
	list     []*endpoint
	base     context.Context
	cancel   context.CancelFunc
	sub      *nats.Subscription
	control  []*nats.Subscription
	id       string
	started  time.Time
	pingJSON []byte
	infoJSON []byte
	infoMeta map[string]string          // the INFO identity's metadata (registry.Describe)
	peers    func() []registry.Endpoint // SetPeers
	// overloaded answers requests shed past maxQueued.
	overloaded *errs.Error
	// tls says whether nc was on TLS at Start, for Call.TLS.
	tls bool
	// streams are the open streams (stream_server.go).
	streams streamSet
}

const (
	stateNew = iota
	stateStarted
	stateStopped
)

var _ server.Transport = (*Server)(nil)

// NewServer returns a transport serving over nc. The connection belongs to
// the caller: Stop leaves it open.
func NewServer(nc *nats.Conn, opts ...ServerOption) *Server {
	s := &Server{
		nc:             nc,
		maxConcurrent:  DefaultMaxConcurrent,
		defaultTimeout: DefaultTimeout,
		maxTimeout:     transport.DefaultMaxTimeout,
		maxStreams:     DefaultMaxStreams,
		streamWindow:   DefaultStreamWindow,
		heartbeat:      DefaultHeartbeat,
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	return s
}

// Advertise implements server.Advertiser: "nats" and the URL of the NATS
// server the connection is on (credentials redacted). NATS callers need no
// address to reach the service — queue groups route by subject — so this is
// informational: it tells discovery that the service speaks NATS.
func (s *Server) Advertise() (transport, address string, ok bool) {
	if !s.hasStarted() || !s.nc.IsConnected() {
		return "", "", false
	}
	return "nats", s.nc.ConnectedUrlRedacted(), true
}

// endpoint is a registered endpoint with its statistics.
type endpoint struct {
	ep      *server.Endpoint
	subject string

	requests atomic.Int64
	errors   atomic.Int64
	nanos    atomic.Int64 // total processing time
	mu       sync.Mutex
	lastErr  string
}

func (e *endpoint) record(start time.Time, err *errs.Error) {
	e.requests.Add(1)
	e.nanos.Add(int64(time.Since(start)))
	if err != nil {
		e.errors.Add(1)
		msg := err.Error()
		e.mu.Lock()
		e.lastErr = msg
		e.mu.Unlock()
	}
}

// Start subscribes to the service's subjects and the discovery subjects
// and returns once the NATS server has registered them. It fails if srv has
// registration errors, the connection is closed, or Start was called
// before.
func (s *Server) Start(ctx context.Context, srv *server.Server) error {
	// The instance's other transports, asked before locking: the function
	// may ask this server too (it is not started, so it answers nothing).
	s.mu.Lock()
	peersFn := s.peers
	s.mu.Unlock()
	var peers []registry.Endpoint
	if peersFn != nil {
		peers = peersFn()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("nats: server transport already started")
	}
	if s.nc == nil && s.conn != nil {
		s.nc = s.conn.NATS()
	}
	if s.nc == nil {
		return errors.New("nats: server transport has no connection (start its Conn first: ferry.WithConnection)")
	}
	if s.maxQueued == 0 {
		s.maxQueued = DefaultMaxQueued
		if n := s.nc.Opts.SubChanLen; n > 0 {
			s.maxQueued = min(s.maxQueued, max(n/4, 1))
		}
	}
	if srv == nil {
		return errors.New("nats: no server to serve")
	}
	if err := srv.Err(); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	s.srv = srv
	s.logger = srv.Logger()
	s.tls = connTLS(s.nc)
	if s.queue == "" {
		s.queue = srv.Name()
	}
	s.prefix = srv.Name() + "."
	s.overloaded = errs.Newf(errs.ResourceExhausted, "service %s is overloaded: more than %d requests waiting; retry later", srv.Name(), s.maxQueued)
	s.id = nuid.Next()
	s.byName = make(map[string]*endpoint)
	for _, e := range srv.Endpoints() {
		ep := &endpoint{ep: e, subject: s.prefix + e.Name}
		s.byName[e.Name] = ep
		s.list = append(s.list, ep)
	}
	// Handlers keep ctx's values but not its cancellation: Start's context
	// usually ends once startup is over.
	s.base, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.started = time.Now().UTC()
	if err := s.buildDiscovery(peers); err != nil {
		s.cancel()
		return err
	}

	if err := s.checkStreams(ctx); err != nil {
		s.cancel()
		return err
	}
	if err := s.subscribe(ctx); err != nil {
		s.unsubscribeAll()
		s.cancel()
		return err
	}
	s.state = stateStarted
	s.pool = &pool{
		sub:    s.sub,
		ctx:    s.base,
		max:    s.maxConcurrent,
		serve:  s.serve,
		reject: func(msg *nats.Msg) { s.publishError(msg, errStopping) },

		maxQueued: s.maxQueued,
		shed:      func(msg *nats.Msg) { s.publishError(msg, s.overloaded) },
		dropped:   s.onDropped,
	}
	s.pool.start()
	return nil
}

// onDropped logs that nats.go dropped requests because its queue was full;
// their callers get no reply and time out. Past WithMaxQueued the server
// sheds requests itself, so this only happens when requests arrive faster
// than they can even be refused.
func (s *Server) onDropped(err error) {
	n, _ := s.sub.Dropped()
	s.logger.Warn("nats: requests dropped: the subscription's queue was full; their callers will time out",
		slog.String("subject", s.sub.Subject), slog.Int("dropped_total", n), slog.Any("error", err))
}

// Check reports whether the server takes requests: nil while it serves,
// an error before Start, after Stop, or once its subscription has ended
// while it should serve (the connection closed, say). It fits a readiness
// check (telemetry.Admin's AddCheck).
func (s *Server) Check(context.Context) error {
	s.mu.Lock()
	state, p := s.state, s.pool
	s.mu.Unlock()
	switch {
	case state == stateNew:
		return errors.New("nats: not started")
	case state == stateStopped:
		return errors.New("nats: stopped")
	}
	if err := p.ended(); err != nil {
		return fmt.Errorf("nats: no longer taking requests on %s: %w", s.sub.Subject, err)
	}
	if !s.sub.IsValid() {
		return fmt.Errorf("nats: the subscription to %s has ended", s.sub.Subject)
	}
	return nil
}

// streamCheckTimeout bounds the look-up of JetStream streams at Start.
const streamCheckTimeout = 5 * time.Second

// checkStreams refuses to serve when a JetStream stream captures the
// service's request subjects ("<service>.*"): JetStream would store every
// request as an event and answer it with a PubAck, which a caller would
// take for an empty reply. Event subjects must live apart from service
// names ("events.orders.>", not "orders.>"). Without JetStream there is
// nothing to check; a look-up that fails otherwise is logged and serving
// goes on.
func (s *Server) checkStreams(ctx context.Context) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, streamCheckTimeout)
	defer cancel()
	subject := s.prefix + "*"
	names := js.StreamNames(cctx, jetstream.WithStreamListSubject(subject))
	var hits []string
	for n := range names.Name() {
		hits = append(hits, n)
	}
	if err := names.Err(); err != nil {
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, jetstream.ErrJetStreamNotEnabled) &&
			!errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			s.logger.Warn("nats: could not check that no JetStream stream captures the service's subjects",
				slog.String("subjects", subject), slog.Any("error", err))
		}
		return nil
	}
	if len(hits) > 0 {
		return errs.Newf(errs.FailedPrecondition, "nats: JetStream stream %s captures %s, the subjects of requests to service %s: "+
			"they would be stored as events and answered by JetStream instead of the service. Give event subjects a prefix "+
			"of their own (events.%s.>, not %s.>)", strings.Join(hits, ", "), subject, s.srv.Name(), s.srv.Name(), s.srv.Name())
	}
	return nil
}

func (s *Server) subscribe(ctx context.Context) error {
	// A synchronous subscription: workers take requests from it directly,
	// with no dispatching goroutine in between.
	sub, err := s.nc.QueueSubscribeSync(s.prefix+"*", s.queue)
	if err != nil {
		return fmt.Errorf("nats: subscribe %s*: %w", s.prefix, err)
	}
	s.sub = sub

	name := s.srv.Name()
	for _, verb := range []micro.Verb{micro.PingVerb, micro.InfoVerb, micro.StatsVerb} {
		for _, subj := range controlSubjects(verb, name, s.id) {
			cs, err := s.nc.Subscribe(subj, s.onControl(verb))
			if err != nil {
				return fmt.Errorf("nats: subscribe %s: %w", subj, err)
			}
			s.control = append(s.control, cs)
		}
	}

	if hasStreams(s.list) {
		if err := s.subscribeStreams(); err != nil {
			return err
		}
	}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startFlushTimeout)
		defer cancel()
	}
	if err := s.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("nats: register subscriptions: %w", err)
	}
	return nil
}

func (s *Server) unsubscribeAll() {
	if s.sub != nil {
		_ = s.sub.Unsubscribe()
	}
	for _, cs := range s.control {
		_ = cs.Unsubscribe()
	}
	if s.streams.sub != nil {
		_ = s.streams.sub.Unsubscribe()
	}
}

// Stop stops serving: it unsubscribes from discovery, drains the endpoint
// subscription (requests already delivered are still served), refuses new
// streams (Unavailable) and waits for running handlers and open streams.
// If ctx ends first it cancels the handlers' contexts — streams end with
// Unavailable, "service is stopping" — waits for them to return and
// returns ctx's error joined with any other. Stop before Start, or a second
// Stop, does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateStarted {
		s.mu.Unlock()
		return nil
	}
	s.state = stateStopped
	s.mu.Unlock()
	s.pool.close()
	defer s.cancel()
	streams := s.stopStreams()

	var errList []error
	for _, cs := range s.control {
		if err := cs.Unsubscribe(); err != nil && !connGone(err) {
			errList = append(errList, fmt.Errorf("nats: unsubscribe %s: %w", cs.Subject, err))
		}
	}
	// Once drained, the subscription closes and workers exit as they find
	// no more requests.
	if err := s.sub.Drain(); err != nil && !connGone(err) {
		errList = append(errList, fmt.Errorf("nats: drain %s: %w", s.sub.Subject, err))
		_ = s.sub.Unsubscribe()
	}

	done := make(chan struct{})
	go func() {
		s.pool.wait()
		<-streams
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		errList = append(errList, ctx.Err())
		s.cancel() // cuts handlers off; workers answer what is left Unavailable
		<-done
	}
	// Every stream has ended: its callers' frames have nobody to go to.
	if sub := s.streams.sub; sub != nil {
		if err := sub.Unsubscribe(); err != nil && !connGone(err) {
			errList = append(errList, fmt.Errorf("nats: unsubscribe %s: %w", sub.Subject, err))
		}
	}
	return errors.Join(errList...)
}

func connGone(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription) ||
		errors.Is(err, nats.ErrConnectionDraining)
}

var errStopping = errs.New(errs.Unavailable, "service is stopping")

// serve handles one request.
func (s *Server) serve(msg *nats.Msg) {
	defer func() {
		if p := recover(); p != nil {
			// Handler panics are recovered by the endpoint chain; this
			// guards the transport's own code (codecs, metadata).
			buf := make([]byte, 8<<10)
			buf = buf[:runtime.Stack(buf, false)]
			s.logger.Error("nats: panic serving request", slog.String("subject", msg.Subject),
				slog.Any("panic", p), slog.String("stack", string(buf)))
			s.publishError(msg, errs.New(errs.Internal, "internal error"))
		}
	}()
	start := time.Now()
	name := msg.Subject[min(len(s.prefix), len(msg.Subject)):]
	ep := s.byName[name]
	if ep == nil {
		s.publishError(msg, errs.Newf(errs.NotFound, "service %s has no endpoint %q", s.srv.Name(), name))
		return
	}
	if ep.ep.Kind != transport.Unary || (len(msg.Header) > 0 && hasStreamHeader(msg.Header)) {
		s.openStream(ep, msg, start)
		return
	}
	cd := codec.JSON
	var st *callState
	resp, err := s.call(ep, msg, start, &cd, &st)
	var reply transport.Metadata
	if st != nil {
		reply = st.reply.MD
		if len(st.Call.Trailer) > 0 {
			// NATS has no trailers: a unary reply carries them as headers.
			reply = mergeTrailer(reply, st.Call.Trailer)
		}
	}
	e := s.respond(msg, cd, resp, reply, err)
	ep.record(start, e)
}

// callState holds what one request needs, in one allocation. It is also
// the handler's context: the call's deadline with the Call as a value
// (callctx.Served), without the second allocation of a context.WithValue.
type callState struct {
	callctx.Served
	reply transport.LazyMetadata
}

// wireCall is the Call of request msg to ep, as a unary call and a stream
// both begin it.
func (s *Server) wireCall(ep *endpoint, msg *nats.Msg, reply transport.Header, deadline time.Time) transport.Call {
	return transport.Call{
		Service:  s.srv.Name(),
		Endpoint: ep.ep.Name,
		Kind:     transport.NATS,
		Request:  (*msgHeader)(msg),
		Reply:    reply,
		Deadline: deadline,
		Method:   msg.Subject,
		TLS:      s.tls,
	}
}

// call decodes the request, runs the endpoint's chain and returns its
// reply. cd and state are set as soon as they are known, so that an error
// reply still carries the reply metadata.
func (s *Server) call(ep *endpoint, msg *nats.Msg, start time.Time, cd *codec.Codec, state **callState) (any, error) {
	timeout := s.defaultTimeout
	if d, ok := replyTimeout(msg.Reply, s.maxTimeout); ok {
		timeout = d // a Ferry-Timeout-Ms header, if any, comes first
	}
	if len(msg.Header) > 0 {
		hdr := header(msg.Header)
		if v := hdr.Get(TimeoutHeader); v != "" {
			d, err := parseTimeout(v, s.maxTimeout)
			if err != nil {
				return nil, err
			}
			timeout = d
		}
		if ct := hdr.Get(contentTypeHeader); ct != "" && ct != jsonContentType {
			c, ok := codec.ForContentType(ct)
			if !ok {
				return nil, errs.Newf(errs.InvalidArgument, "unsupported Content-Type %q: want application/json or application/protobuf", errs.Clip(ct))
			}
			*cd = c
		}
	}
	if s.maxRequestBytes > 0 && len(msg.Data) > s.maxRequestBytes {
		return nil, errs.Newf(errs.ResourceExhausted, "request body of %d bytes exceeds the limit of %d bytes", len(msg.Data), s.maxRequestBytes)
	}

	deadline := start.Add(timeout)
	st := new(callState)
	st.Call = s.wireCall(ep, msg, &st.reply, deadline)
	*state = st
	st.Init(s.base, deadline)
	defer st.Release()
	ctx := &st.Served

	// Admission before decoding, weighed by the request's size.
	size := int64(len(msg.Data))
	if err := s.srv.Admit(ctx, size); err != nil {
		return nil, err
	}
	defer s.srv.Release(size)
	req := ep.ep.NewRequest()
	if len(msg.Data) > 0 {
		dec := *cd
		if dec == codec.JSON {
			dec = s.srv.JSON() // server.WithJSON's
		}
		if err := dec.Unmarshal(msg.Data, req); err != nil {
			return nil, errs.Newf(errs.InvalidArgument, "malformed %s request body for %s: %v", (*cd).Name(), ep.subject, err)
		}
	}
	return ep.ep.Handler(ctx, req)
}

// respond sends the reply, or the error reply for err, and returns the
// error actually sent (nil on success) for the statistics.
func (s *Server) respond(msg *nats.Msg, cd codec.Codec, resp any, md transport.Metadata, err error) *errs.Error {
	var body []byte
	var hdr nats.Header
	if err == nil && resp != nil {
		if body, err = cd.Marshal(resp); err != nil {
			err = errs.Newf(errs.Internal, "encode %s reply: %v", cd.Name(), err)
		}
	}
	var e *errs.Error
	switch {
	case err != nil:
		if errors.Is(err, context.Canceled) && s.base.Err() != nil {
			err = errStopping // cut off by Stop: the caller may retry elsewhere
		}
		e = errs.FromError(err)
		hdr, body = errorReply(md, e)
	case cd != codec.JSON:
		hdr = withRoom(md, 1)
		hdr[contentTypeHeader] = []string{cd.ContentType()}
	case len(md) > 0:
		hdr = nats.Header(md)
	}

	var perr error
	if hdr == nil {
		perr = s.nc.Publish(msg.Reply, body)
	} else {
		perr = s.nc.PublishMsg(&nats.Msg{Subject: msg.Reply, Header: hdr, Data: body})
	}
	if perr == nil {
		return e
	}
	// The reply could not be sent as built; tell the caller why instead.
	switch {
	case errors.Is(perr, nats.ErrMaxPayload):
		e = errs.Newf(errs.ResourceExhausted, "reply of %d bytes exceeds the NATS max payload of %d bytes", len(body), s.nc.MaxPayload())
	case errors.Is(perr, nats.ErrBadHeaderMsg):
		e = errs.New(errs.Internal, "reply metadata has a key that is not a valid NATS header name")
	default:
		s.logger.Warn("nats: cannot send reply", slog.String("subject", msg.Subject), slog.Any("error", perr))
		return errs.Wrap(errs.Unavailable, perr)
	}
	s.publishError(msg, e)
	return e
}

// withRoom returns md as a nats.Header with room for n more keys, copying
// it so that the handler's metadata map is left as it was.
func withRoom(md transport.Metadata, n int) nats.Header {
	h := make(nats.Header, len(md)+n)
	maps.Copy(h, md)
	return h
}

// errorReply returns the headers and body of an error reply carrying md.
func errorReply(md transport.Metadata, e *errs.Error) (nats.Header, []byte) {
	h := withRoom(md, 3)
	setErrorHeaders(h, e)
	body, _ := e.MarshalJSON() // an *errs.Error from FromError always has a valid code
	return h, body
}

// publishError answers msg with e and nothing else: an open of a stream
// with the error frame that refuses it.
func (s *Server) publishError(msg *nats.Msg, e *errs.Error) {
	if len(msg.Header) > 0 && hasStreamHeader(msg.Header) {
		s.publishOpenError(msg, e)
		return
	}
	h, body := errorReply(nil, e)
	if err := s.nc.PublishMsg(&nats.Msg{Subject: msg.Reply, Header: h, Data: body}); err != nil {
		s.logger.Warn("nats: cannot send error reply", slog.String("subject", msg.Subject), slog.Any("error", err))
	}
}

// mergeTrailer returns md with the trailer's keys added, in a new map.
func mergeTrailer(md, trailer transport.Metadata) transport.Metadata {
	out := md.Clone()
	if out == nil {
		out = transport.Metadata{}
	}
	for _, k := range trailer.Keys() {
		for _, v := range trailer.Values(k) {
			out.Add(k, v)
		}
	}
	return out
}
