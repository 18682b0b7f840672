package nats

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	"github.com/ferry-go/ferry/transport/callkit"
	"github.com/nats-io/nats.go"
)

// WithCodec sets the codec requests are encoded with; replies are decoded
// by their Content-Type. The default is codec.JSON; nil keeps it.
func WithCodec(cd codec.Codec) ClientOption {
	return func(c *Client) {
		if cd != nil {
			c.codec = cd
		}
	}
}

// WithClientTimeout sets how long a call whose context has no deadline
// waits for its reply (default DefaultTimeout, 30s; 0 or less keeps the
// default). The server applies its own default to such a call. A stream
// waits as long for the answer to its open, and has no deadline of its
// own once the server accepted it.
func WithClientTimeout(d time.Duration) ClientOption {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithClientMiddleware appends middleware run around every call, the first
// listed outermost. The chain is composed once, in NewClient. Middleware
// sees the request before it is encoded and the transport.Call in the
// context (Client true, Kind NATS); metadata it adds to Call.Request is
// sent, and Call.Reply holds the reply metadata once the next handler
// returns.
func WithClientMiddleware(mws ...middleware.Middleware) ClientOption {
	return func(c *Client) { c.mws = append(c.mws, mws...) }
}

// WithTimeoutHeader makes the client send a call's deadline in the
// Ferry-Timeout-Ms header, as every call with a deadline did before, rather
// than in the reply subject of a call that has no other header (see the
// package documentation, Wire format). Use it while calling servers that
// read only the header (built before the reply subject carried deadlines),
// or across NATS accounts, whose service imports replace the reply subject.
func WithTimeoutHeader() ClientOption {
	return func(c *Client) { c.timeoutHeader = true }
}

// Client calls services over NATS. It implements transport.Client and is
// safe for concurrent use. Create it with NewClient.
type Client struct {
	nc      *nats.Conn
	codec   codec.Codec
	json    bool // codec writes application/json: no Content-Type header needed
	timeout time.Duration
	mws     []middleware.Middleware
	pipe    *callkit.Pipeline
	tls     bool // nc was on TLS when the client was made, for Call.TLS
	// timeoutHeader: deadlines always go in Ferry-Timeout-Ms.
	timeoutHeader bool

	// Streams (stream_client.go).
	window    int
	heartbeat time.Duration
	maxMsg    int // 0: the default for the connection
	muxMu     sync.Mutex
	streamMux *streamMux // made by the first stream
}

var _ transport.Client = (*Client)(nil)

// NewClient returns a client calling over nc. The connection belongs to the
// caller: Close leaves it open.
func NewClient(nc *nats.Conn, opts ...ClientOption) *Client {
	c := &Client{nc: nc, codec: codec.JSON, timeout: DefaultTimeout, window: DefaultStreamWindow, heartbeat: DefaultHeartbeat}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	c.json = c.codec.ContentType() == jsonContentType
	c.tls = connTLS(nc)
	c.pipe = callkit.New(transport.NATS, c.send, c.mws...)
	return c
}

// Close implements transport.Client. It ends the client's open streams
// (Canceled) and drops their subscription; the connection belongs to the
// caller and stays open. Unary calls and new streams still work after it.
func (c *Client) Close() error {
	c.closeStreams()
	return nil
}

// Invoke calls endpoint of service on subject "<service>.<endpoint>". req
// is encoded with the client's codec (nil sends an empty body) and the
// reply decoded into resp (a pointer; nil discards the reply). Reply
// metadata goes to transport.CaptureReply's destination, also on error.
func (c *Client) Invoke(ctx context.Context, service, endpoint string, req, resp any) error {
	if !c.pipe.Bare(ctx) {
		w := callkit.Wire{Peer: c.nc.ConnectedAddr(), Method: service + "." + endpoint, TLS: c.tls}
		return c.pipe.InvokeWire(ctx, service, endpoint, w, req, resp)
	}
	md, err := c.roundTrip(ctx, service, endpoint, "", transport.OutgoingMetadata(ctx), req, resp)
	if dst := callkit.ReplySink(ctx); dst != nil {
		if md == nil {
			md = transport.Metadata{}
		}
		*dst = md
	}
	return callkit.Received(err, service, endpoint)
}

// send ends the client pipeline.
func (c *Client) send(ctx context.Context, call *transport.Call, req, resp any) error {
	subject := call.Method // Invoke's "<service>.<endpoint>"
	if !isSubject(subject, call.Service, call.Endpoint) {
		subject = "" // middleware renamed the call
	}
	md, err := c.roundTrip(ctx, call.Service, call.Endpoint, subject, call.Request, req, resp)
	call.Reply = md
	return err
}

// roundTrip sends one request and decodes its reply, returning the reply
// metadata (nil if none). The context's deadline goes on the wire: in the
// Ferry-Timeout-Ms header when the call has headers anyway (metadata, a
// codec other than JSON, WithTimeoutHeader), else in the reply subject, so
// that the call needs no headers at all, which NATS handles markedly
// faster. A context without a deadline waits the client's default timeout,
// which is not sent: the server then applies its own default.
func (c *Client) roundTrip(ctx context.Context, service, endpoint, subject string, md transport.Header, req, resp any) (transport.Metadata, error) {
	if err := checkToken("service", service); err != nil {
		return nil, err
	}
	if err := checkToken("endpoint", endpoint); err != nil {
		return nil, err
	}
	if subject == "" {
		subject = service + "." + endpoint
	}
	var data []byte
	if req != nil {
		var err error
		if data, err = c.codec.Marshal(req); err != nil {
			return nil, errs.Newf(errs.InvalidArgument, "encode %s request for %s: %v", c.codec.Name(), subject, err)
		}
	}

	deadline, sendDeadline := ctx.Deadline()
	if !sendDeadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var hdr nats.Header
	headers := !c.json || hasMetadata(md)
	if headers || (sendDeadline && c.timeoutHeader) {
		hdr = requestHeader(md, 2)
		if !c.json {
			hdr[contentTypeHeader] = []string{c.codec.ContentType()}
		}
		if sendDeadline {
			hdr[TimeoutHeader] = []string{formatTimeout(time.Until(deadline))}
		}
	}

	var msg *nats.Msg
	var err error
	switch {
	case hdr != nil:
		msg, err = c.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject, Header: hdr, Data: data})
	case sendDeadline:
		// No header to carry the deadline in: the reply subject does.
		var m *replyMux
		if m, err = repliesFor(ctx, c.nc); err == nil {
			msg, err = m.request(ctx, subject, data, time.Until(deadline))
		}
	default:
		msg, err = c.nc.RequestWithContext(ctx, subject, data)
	}
	if err != nil {
		return nil, c.requestError(subject, len(data), err)
	}
	rmd := replyMetadata(msg.Header)
	if e := replyError(msg.Header, msg.Data); e != nil {
		return rmd, e
	}
	if resp == nil || len(msg.Data) == 0 {
		return rmd, nil
	}
	cd := c.codec
	if ct := header(msg.Header).Get(contentTypeHeader); ct != "" && ct != cd.ContentType() {
		var ok bool
		if cd, ok = codec.ForContentType(ct); !ok {
			return rmd, errs.Newf(errs.Internal, "reply from %s has unsupported Content-Type %q", subject, errs.Clip(ct))
		}
	}
	if err := cd.Unmarshal(msg.Data, resp); err != nil {
		return rmd, errs.Newf(errs.Internal, "malformed %s reply from %s: %v", cd.Name(), subject, err)
	}
	return rmd, nil
}

// isSubject reports whether subject is service + "." + endpoint, without
// building that string.
func isSubject(subject, service, endpoint string) bool {
	n := len(service)
	return len(subject) == n+1+len(endpoint) && subject[:n] == service && subject[n] == '.' && subject[n+1:] == endpoint
}

func hasMetadata(md transport.Header) bool {
	switch m := md.(type) {
	case nil:
		return false
	case transport.Metadata:
		return len(m) > 0
	}
	return len(md.Keys()) > 0
}

// requestHeader copies request metadata into a new NATS header with room
// for extra more keys. Keys of the wire format itself are left out, so
// metadata cannot forge a deadline or content type.
func requestHeader(md transport.Header, extra int) nats.Header {
	switch m := md.(type) {
	case nil:
		return make(nats.Header, extra)
	case transport.Metadata:
		h := make(nats.Header, len(m)+extra)
		for k, vs := range m {
			if !isReserved(k) {
				h[k] = vs
			}
		}
		return h
	}
	keys := md.Keys()
	h := make(nats.Header, len(keys)+extra)
	for _, k := range keys {
		if !isReserved(k) {
			h[k] = md.Values(k)
		}
	}
	return h
}

// checkToken rejects a service or endpoint name that is not one NATS
// subject token: empty, or holding '.', a wildcard, or white space.
func checkToken(what, name string) error {
	if name == "" {
		return errs.Newf(errs.InvalidArgument, "empty %s name", what)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == '.' || c == '*' || c == '>' || c == 0x7f {
			if what == "service" && strings.Contains(name, ".") {
				return errs.Newf(errs.InvalidArgument, "invalid service name %q: a name with a '.' is a fully qualified gRPC service name, which only the gRPC transport calls (Ferry service names have none)", errs.Clip(name))
			}
			return errs.Newf(errs.InvalidArgument, "invalid %s name %q: want one NATS subject token (no '.', '*', '>' or white space)", what, errs.Clip(name))
		}
	}
	return nil
}

// requestError maps a failure of nats.Conn.RequestMsgWithContext to a code.
func (c *Client) requestError(subject string, size int, err error) *errs.Error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return errs.Newf(errs.Unavailable, "no responders for %s", subject)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return errs.Newf(errs.DeadlineExceeded, "deadline exceeded calling %s: %w", subject, err)
	case errors.Is(err, context.Canceled):
		return errs.Newf(errs.Canceled, "call to %s canceled: %w", subject, err)
	case errors.Is(err, nats.ErrMaxPayload):
		return errs.Newf(errs.ResourceExhausted, "request to %s of %d bytes exceeds the NATS max payload of %d bytes: %w",
			subject, size, c.nc.MaxPayload(), err)
	case errors.Is(err, nats.ErrBadHeaderMsg):
		return errs.Newf(errs.InvalidArgument, "request metadata for %s has a key that is not a valid NATS header name: %w", subject, err)
	case errors.Is(err, nats.ErrBadSubject):
		return errs.Newf(errs.InvalidArgument, "invalid subject %q: %w", errs.Clip(subject), err)
	}
	return errs.Newf(errs.Unavailable, "call to %s: %w", subject, err)
}
