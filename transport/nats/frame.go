package nats

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/internal/timeoutms"
	"github.com/ferry-go/ferry/transport"
	"github.com/nats-io/nats.go"
)

// Header names of the stream protocol (see Streams in the package doc).
const (
	// StreamHeader marks an open: its value is the stream kind
	// (transport.StreamKind.String(): "server_streaming",
	// "client_streaming" or "bidi_streaming").
	StreamHeader = "Ferry-Stream"
	// FrameHeader names a frame's type: accept, msg, chunk, header,
	// credit, end, error, cancel or ping.
	FrameHeader = "Ferry-Frame"
	// SeqHeader numbers the frames one side sends on a stream: 1, 2, 3…
	SeqHeader = "Ferry-Seq"
	// CreditHeader grants the peer that many more messages: the initial
	// window on an open and an accept, more on a credit frame.
	CreditHeader = "Ferry-Credit"
	// SizeHeader gives, on the first chunk of a message, the message's
	// whole size in bytes.
	SizeHeader = "Ferry-Size"
	// HeartbeatHeader gives, on an open and an accept, the longest time in
	// milliseconds the sender stays silent; 0 or absent: it sends no pings.
	HeartbeatHeader = "Ferry-Heartbeat-Ms"
)

// Defaults of the stream options.
const (
	// DefaultMaxStreams is the default bound on the streams a Server
	// serves at once (WithMaxStreams).
	DefaultMaxStreams = 4096
	// DefaultStreamWindow is the default number of messages a side lets
	// its peer send ahead of what its application has received
	// (WithStreamWindow, WithClientStreamWindow).
	DefaultStreamWindow = 64
	// DefaultHeartbeat is the default heartbeat interval of a stream
	// (WithHeartbeat, WithClientHeartbeat): a side that sent nothing for
	// this long sends a ping.
	DefaultHeartbeat = 5 * time.Second
	// HeartbeatMisses is how many of its peer's heartbeat intervals a side
	// waits, hearing nothing, before it takes the peer for gone.
	HeartbeatMisses = 3
	// DefaultMaxStreamMessageBytes is the default bound on a message a
	// Client receives on a stream (WithMaxStreamMessageBytes), raised to
	// the connection's max payload when that is larger.
	DefaultMaxStreamMessageBytes = 4 << 20
)

const (
	// maxCredit bounds one Ferry-Credit value.
	maxCredit = 1<<31 - 1
	// maxHeartbeat cuts an advertised heartbeat interval.
	maxHeartbeat = time.Hour
	// streamToken is the subject token between a service's name and a
	// server's stream inboxes: <service>._stream.<instance id>.<n>. No
	// endpoint name starts with '_'.
	streamToken = "_stream"
	// statusHeader and noResponders are the NATS server's answer to a
	// message with a reply subject that reached no subscriber.
	statusHeader = "Status"
	noResponders = "503"
)

// frameKind is a frame's type (FrameHeader).
type frameKind uint8

const (
	frameNone frameKind = iota // no FrameHeader: a plain reply
	frameAccept
	frameMsg
	frameChunk
	frameHeader
	frameCredit
	frameEnd
	frameError
	frameCancel
	framePing
)

var frameNames = [...]string{"", "accept", "msg", "chunk", "header", "credit", "end", "error", "cancel", "ping"}

func (k frameKind) String() string {
	if int(k) < len(frameNames) {
		return frameNames[k]
	}
	return "unknown"
}

// frameValues holds the FrameHeader value of each kind, so that building a
// frame allocates no slice for it.
var frameValues = func() [len(frameNames)][]string {
	var v [len(frameNames)][]string
	for i, n := range frameNames {
		v[i] = []string{n}
	}
	return v
}()

// frame is what the headers of one frame say.
type frame struct {
	kind      frameKind
	seq       uint64
	credit    int64         // accept (0: none), credit
	size      int64         // chunk: the message's size if SizeHeader is present, else 0
	heartbeat time.Duration // accept
}

// protocolError is the error for a malformed frame or open; the side that
// received it decides the code it ends the stream with.
func protocolError(format string, args ...any) *errs.Error {
	return errs.Newf(errs.InvalidArgument, format, args...)
}

// single returns the one value of key in h: "", false if absent, an error
// if it is there more than once.
func single(h nats.Header, key string) (string, bool, error) {
	vs := header(h).Values(key)
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	}
	return "", false, protocolError("header %s appears %d times, want once", key, len(vs))
}

// parseFrame reads the protocol headers of a frame. A frame without
// FrameHeader is kind frameNone and no error; the caller decides what a
// plain message means. Headers a frame type does not use are ignored.
func parseFrame(h nats.Header) (frame, error) {
	var f frame
	v, ok, err := single(h, FrameHeader)
	if err != nil || !ok {
		return f, err
	}
	for i := frameAccept; int(i) < len(frameNames); i++ {
		if frameNames[i] == v {
			f.kind = i
			break
		}
	}
	if f.kind == frameNone {
		return f, protocolError("unknown frame type %q in header %s", errs.Clip(v), FrameHeader)
	}
	v, ok, err = single(h, SeqHeader)
	if err != nil {
		return f, err
	}
	if !ok {
		return f, protocolError("%s frame without header %s", f.kind, SeqHeader)
	}
	if f.seq, err = strconv.ParseUint(v, 10, 63); err != nil || f.seq == 0 || v[0] == '+' {
		return f, protocolError("header %s: want a whole number from 1, got %q", SeqHeader, errs.Clip(v))
	}
	switch f.kind {
	case frameAccept:
		if f.credit, err = parseCredit(h, false); err != nil {
			return f, err
		}
		f.heartbeat, err = parseHeartbeat(h)
	case frameCredit:
		f.credit, err = parseCredit(h, true)
	case frameChunk:
		v, ok, err = single(h, SizeHeader)
		if err != nil || !ok {
			return f, err
		}
		if f.size, err = strconv.ParseInt(v, 10, 64); err != nil || f.size <= 0 || v[0] == '+' {
			return f, protocolError("header %s: want a positive whole number of bytes, got %q", SizeHeader, errs.Clip(v))
		}
	}
	return f, err
}

// parseCredit reads CreditHeader: 0 when absent and not required.
func parseCredit(h nats.Header, required bool) (int64, error) {
	v, ok, err := single(h, CreditHeader)
	if err != nil {
		return 0, err
	}
	if !ok {
		if required {
			return 0, protocolError("header %s missing", CreditHeader)
		}
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 1 || v[0] == '+' {
		return 0, protocolError("header %s: want a whole number from 1 to %d, got %q", CreditHeader, maxCredit, errs.Clip(v))
	}
	return n, nil
}

// parseHeartbeat reads HeartbeatHeader: 0 when absent or "0" (no pings),
// cut to maxHeartbeat.
func parseHeartbeat(h nats.Header) (time.Duration, error) {
	v, ok, err := single(h, HeartbeatHeader)
	if err != nil || !ok || v == "0" {
		return 0, err
	}
	d, valid := timeoutms.Parse(v, maxHeartbeat)
	if !valid || v[0] == '+' {
		return 0, protocolError("header %s: want a whole number of milliseconds (0: no pings), got %q", HeartbeatHeader, errs.Clip(v))
	}
	return d, nil
}

// opening is what the headers of an open say.
type opening struct {
	kind      transport.StreamKind
	credit    int64
	heartbeat time.Duration
	timeout   time.Duration // 0: none
}

// parseStreamKind reads a StreamHeader value.
func parseStreamKind(v string) (transport.StreamKind, bool) {
	for _, k := range [...]transport.StreamKind{transport.ServerStreaming, transport.ClientStreaming, transport.BidiStreaming} {
		if v == k.String() {
			return k, true
		}
	}
	return transport.Unary, false
}

// parseOpen reads the protocol headers of an open; the deadline is cut to
// maxTimeout.
func parseOpen(h nats.Header, maxTimeout time.Duration) (opening, error) {
	var o opening
	v, ok, err := single(h, StreamHeader)
	if err != nil {
		return o, err
	}
	if !ok {
		return o, protocolError("header %s missing", StreamHeader)
	}
	if o.kind, ok = parseStreamKind(v); !ok {
		return o, protocolError("header %s: unknown stream kind %q, want server_streaming, client_streaming or bidi_streaming", StreamHeader, errs.Clip(v))
	}
	if o.credit, err = parseCredit(h, true); err != nil {
		return o, err
	}
	if o.heartbeat, err = parseHeartbeat(h); err != nil {
		return o, err
	}
	v, ok, err = single(h, TimeoutHeader)
	if err != nil || !ok {
		return o, err
	}
	o.timeout, err = parseTimeout(v, maxTimeout)
	return o, err
}

// hasStreamHeader reports whether a request carries StreamHeader: it is
// an open, whatever the endpoint.
func hasStreamHeader(h nats.Header) bool {
	if _, ok := h[StreamHeader]; ok {
		return true
	}
	for k := range h {
		if strings.EqualFold(k, StreamHeader) {
			return true
		}
	}
	return false
}

// isNoResponders reports whether msg is the NATS server's notice that a
// message with this reply subject reached no subscriber.
func isNoResponders(msg *nats.Msg) bool {
	return len(msg.Data) == 0 && len(msg.Header) > 0 && msg.Header.Get(statusHeader) == noResponders
}

// isStreamHeader reports whether key is a header of the stream protocol.
func isStreamHeader(key string) bool {
	for _, k := range [...]string{StreamHeader, FrameHeader, SeqHeader, CreditHeader, SizeHeader, HeartbeatHeader} {
		if strings.EqualFold(key, k) {
			return true
		}
	}
	return false
}

// metadataHeader copies md into a new NATS header with room for extra
// more keys, leaving out the keys of the wire format (unary and stream),
// so metadata cannot forge a frame.
func metadataHeader(md transport.Header, extra int) nats.Header {
	h := requestHeader(md, extra)
	for k := range h {
		if isStreamHeader(k) {
			delete(h, k)
		}
	}
	return h
}

// frameMetadata returns the metadata a frame carries: its headers without
// those of the wire format; nil if none.
func frameMetadata(h nats.Header) transport.Metadata {
	md := replyMetadata(h)
	for k := range md {
		if isStreamHeader(k) {
			delete(md, k)
		}
	}
	if len(md) == 0 {
		return nil
	}
	return md
}

// headerSize is the encoded size of h, as nats.go counts it against the
// max payload.
func headerSize(h nats.Header) int {
	if len(h) == 0 {
		return 0
	}
	n := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// clock measures time for heartbeats as nanoseconds since it was made,
// from the monotonic clock.
type clock struct{ epoch time.Time }

func (c clock) now() int64 { return int64(time.Since(c.epoch)) }

// outbound is the sending side of a stream: it numbers frames and
// publishes them in that order, splitting messages larger than the
// connection's max payload into chunks.
type outbound struct {
	nc    *nats.Conn
	clock clock
	self  string // this side's stream inbox: the reply subject of every frame

	mu       sync.Mutex // serializes frames so that their order on the wire is their order in seq
	peer     string     // the peer's stream inbox ("" until known)
	seq      uint64
	metaSent bool // the first message (or header frame) went out
	over     bool // the side's last frame went out (sendLast): nothing follows it

	lastSent atomic.Int64 // clock.now() of the last frame sent
}

// setPeer records the peer's stream inbox.
func (o *outbound) setPeer(peer string) {
	o.mu.Lock()
	o.peer = peer
	o.mu.Unlock()
}

// send publishes one frame of kind with headers h (which it may modify;
// nil for none) and data.
func (o *outbound) send(kind frameKind, h nats.Header, data []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sendLocked(kind, h, data)
}

// sendLast sends this side's last frame on the stream (the server's end
// or error, the caller's cancel): the frames a timer or a late Recv would
// send after it (pings, credit) are not sent.
func (o *outbound) sendLast(kind frameKind, h nats.Header, data []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.sendLocked(kind, h, data); err != nil {
		return err
	}
	o.over = true
	return nil
}

func (o *outbound) sendLocked(kind frameKind, h nats.Header, data []byte) error {
	if o.over {
		return nil
	}
	if h == nil {
		h = make(nats.Header, 2)
	}
	h[FrameHeader] = frameValues[kind]
	h[SeqHeader] = []string{strconv.FormatUint(o.seq+1, 10)}
	// A frame nats.go refuses (a bad header name, too large) never left:
	// its number goes to the next one.
	if err := o.nc.PublishMsg(&nats.Msg{Subject: o.peer, Reply: o.self, Header: h, Data: data}); err != nil {
		return err
	}
	o.seq++
	o.lastSent.Store(o.clock.now())
	return nil
}

// minChunk is the smallest chunk worth sending: less room than this beside
// the headers means the metadata is too large for the max payload.
const minChunk = 1 << 10

// message sends one message. meta, if not nil, is called once, for the
// first message of the stream, and its headers ride on its first frame.
// A message whose frame would exceed the connection's max payload goes
// as chunk frames, the first with SizeHeader, and a last msg frame.
func (o *outbound) message(meta func() nats.Header, data []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var h nats.Header
	if !o.metaSent {
		o.metaSent = true
		if meta != nil {
			h = meta()
		}
	}
	if h == nil {
		h = make(nats.Header, 3)
	}
	limit := int(o.nc.MaxPayload())
	if headerSize(h)+frameRoom+len(data) <= limit {
		return o.sendLocked(frameMsg, h, data)
	}
	h[SizeHeader] = []string{strconv.Itoa(len(data))}
	room := limit - headerSize(h) - frameRoom
	if room < minChunk {
		return errs.Newf(errs.ResourceExhausted, "metadata of %d bytes leaves no room for a message in the NATS max payload of %d bytes", headerSize(h), limit)
	}
	n := min(room, len(data)-1) // a chunked message is longer than its first chunk
	if err := o.sendLocked(frameChunk, h, data[:n]); err != nil {
		return err
	}
	data = data[n:]
	room = limit - frameRoom
	for len(data) > room {
		if err := o.sendLocked(frameChunk, nil, data[:room]); err != nil {
			return err
		}
		data = data[room:]
	}
	return o.sendLocked(frameMsg, nil, data)
}

// frameRoom is the most the protocol's own headers (FrameHeader and the
// longest SeqHeader) and the header block's framing add to a frame.
const frameRoom = len("NATS/1.0\r\n\r\n") + len("Ferry-Frame: chunk\r\n") + len("Ferry-Seq: 9223372036854775807\r\n")

// inq is the receiving side of a stream: whole messages in order, at most
// window of them, and the credit given back as the application takes
// them. Its owner's lock guards it.
type inq struct {
	window int
	avail  int // credit granted to the peer and not yet used
	msgs   [][]byte
	head   int
	taken  int // messages taken since the last grant

	partial []byte // a chunked message being put together
	want    int64  // its SizeHeader
	chunked bool
}

func newInq(window int) inq { return inq{window: window, avail: window} }

// add takes a msg or chunk frame. It returns an error for a frame that
// breaks the protocol (InvalidArgument) or a message over max bytes
// (ResourceExhausted).
func (q *inq) add(f frame, data []byte, max int) *errs.Error {
	if !q.chunked {
		if q.avail <= 0 {
			return protocolError("message sent beyond the credit granted (a window of %d messages)", q.window)
		}
		q.avail--
		if f.kind == frameMsg {
			if len(data) > max {
				return errs.Newf(errs.ResourceExhausted, "message of %d bytes exceeds the limit of %d bytes", len(data), max)
			}
			q.msgs = append(q.msgs, data)
			return nil
		}
		switch {
		case f.size == 0:
			return protocolError("first chunk of a message without header %s", SizeHeader)
		case f.size > int64(max):
			return errs.Newf(errs.ResourceExhausted, "message of %d bytes exceeds the limit of %d bytes", f.size, max)
		case int64(len(data)) >= f.size:
			return protocolError("first chunk of %d bytes in a message of %d (header %s): a chunked message is longer than its first chunk", len(data), f.size, SizeHeader)
		}
		q.chunked, q.want = true, f.size
		q.partial = append(make([]byte, 0, f.size), data...)
		return nil
	}
	if f.size != 0 {
		return protocolError("header %s on a chunk that continues a message", SizeHeader)
	}
	if int64(len(q.partial)+len(data)) > q.want {
		return protocolError("chunks of a message exceed its size of %d bytes (header %s)", q.want, SizeHeader)
	}
	q.partial = append(q.partial, data...)
	if f.kind == frameChunk {
		return nil
	}
	if int64(len(q.partial)) != q.want {
		return protocolError("message of %d bytes ended short of its size of %d bytes (header %s)", len(q.partial), q.want, SizeHeader)
	}
	q.msgs = append(q.msgs, q.partial)
	q.partial, q.want, q.chunked = nil, 0, false
	return nil
}

// pop takes the next message, if any. grant is the credit to give back
// now: it is given in batches of half the window.
func (q *inq) pop() (data []byte, grant int, ok bool) {
	if q.head == len(q.msgs) {
		return nil, 0, false
	}
	data = q.msgs[q.head]
	q.msgs[q.head] = nil
	q.head++
	if q.head == len(q.msgs) {
		q.msgs, q.head = q.msgs[:0], 0
	}
	q.taken++
	if q.taken >= max(1, q.window/2) {
		grant, q.taken = q.taken, 0
		q.avail += grant
	}
	return data, grant, true
}

// creditHeader is the header of a credit frame granting n.
func creditHeader(n int) nats.Header {
	return nats.Header{CreditHeader: {strconv.Itoa(n)}}
}

// wake signals ch without blocking: each channel has one waiter at a time
// and a buffer of one.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
