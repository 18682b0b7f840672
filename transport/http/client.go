package http

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	"github.com/ferry-go/ferry/transport/callkit"
)

// DefaultMaxReplyBytes is the default limit on a reply body the client
// reads; see WithMaxReplyBytes.
const DefaultMaxReplyBytes = 4 << 20

// maxErrorBody bounds how much of an error response is read for its code.
const maxErrorBody = 64 << 10

// ClientOption configures a Client.
type ClientOption func(*clientConfig)

type clientConfig struct {
	hc       *http.Client
	tls      *tls.Config
	codec    codec.Codec
	mws      []middleware.Middleware
	maxReply int64

	streamFormat StreamFormat
	streamWindow int
}

// WithClientTLS configures the TLS of https:// calls: trusted roots in
// cfg.RootCAs (nil for the system's), a client certificate in
// cfg.Certificates for mutual TLS. It applies to the client's own
// http.Client, not to one given with WithHTTPClient.
func WithClientTLS(cfg *tls.Config) ClientOption {
	return func(c *clientConfig) { c.tls = cfg }
}

// WithHTTPClient makes the client send requests through hc. The default is
// a client of its own (not http.DefaultClient) whose transport keeps up to
// 256 idle connections per host, uses no proxy and does not follow
// redirects.
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(c *clientConfig) { c.hc = hc }
}

// WithCodec sets the codec requests are encoded with (default codec.JSON).
// Replies are decoded by the codec their Content-Type names.
func WithCodec(cd codec.Codec) ClientOption {
	return func(c *clientConfig) { c.codec = cd }
}

// WithClientMiddleware appends middleware run around every call the client
// makes; the first listed runs outermost. The chain is composed once, in
// NewClient. The Call in the context middleware sees has Client set, Kind
// HTTP, and Request metadata that middleware may add to.
func WithClientMiddleware(mws ...middleware.Middleware) ClientOption {
	return func(c *clientConfig) { c.mws = append(c.mws, mws...) }
}

// WithMaxReplyBytes limits the size of a reply body (default 4 MiB, the
// server's default request limit; 0 or less keeps the default). A larger
// reply fails the call with ResourceExhausted. It bounds each message of a
// stream the same way: a larger one ends the stream with
// ResourceExhausted.
func WithMaxReplyBytes(n int64) ClientOption {
	return func(c *clientConfig) {
		if n > 0 {
			c.maxReply = n
		}
	}
}

// Client calls endpoints of Ferry services over HTTP: POST
// {base}/{service}/{endpoint}. It implements transport.Client and is safe
// for concurrent use.
type Client struct {
	base     *url.URL
	hc       *http.Client
	codec    codec.Codec
	ct       []string // request Content-Type, shared read-only
	maxReply int64
	pipe     *callkit.Pipeline

	streamFormat StreamFormat
	streamWindow int

	bufs sync.Pool // *[]byte reply bodies

	tls  bool                                    // https base URL, for Call.TLS
	urls atomic.Pointer[map[urlKey]*endpointURL] // built once each, copy-on-write
}

type urlKey struct{ service, endpoint string }

// endpointURL is the URL of one endpoint, with the strings a Call carries.
type endpointURL struct {
	u    *url.URL
	path string // u's escaped path, for Call.Route
	full string // u.String(), for Call.Target
}

// maxCachedURLs bounds the URL cache for clients that call many names.
const maxCachedURLs = 1024

var _ transport.Client = (*Client)(nil)

// NewClient returns a client for the server at baseURL, such as
// "http://127.0.0.1:8080" (a path prefix is kept). It fails if baseURL is
// not an absolute http or https URL.
func NewClient(baseURL string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("http: base URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("http: base URL %q: want http://host[:port] or https://host[:port]", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("http: base URL %q: want no user info, query or fragment", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	cfg := clientConfig{codec: codec.JSON, maxReply: DefaultMaxReplyBytes, streamFormat: NDJSON, streamWindow: DefaultStreamWindow}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.codec == nil {
		return nil, errors.New("http: WithCodec(nil)")
	}
	if cfg.hc == nil {
		cfg.hc = &http.Client{
			Transport: &http.Transport{
				DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				ForceAttemptHTTP2:     true,
				MaxIdleConns:          0, // no overall limit; per host below
				MaxIdleConnsPerHost:   256,
				IdleConnTimeout:       90 * time.Second,
				TLSHandshakeTimeout:   10 * time.Second,
				TLSClientConfig:       cfg.tls,
				ExpectContinueTimeout: time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	c := &Client{
		base:     u,
		hc:       cfg.hc,
		codec:    cfg.codec,
		ct:       []string{cfg.codec.ContentType()},
		maxReply: cfg.maxReply,
		tls:      u.Scheme == "https",

		streamFormat: cfg.streamFormat,
		streamWindow: cfg.streamWindow,
	}
	c.pipe = callkit.New(transport.HTTP, c.send, cfg.mws...)
	return c, nil
}

// Close closes the client's idle connections. Calls may still be made
// afterwards; they open new connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// Invoke calls service/endpoint with req and decodes the reply into resp
// (a pointer, or nil to discard the reply). Metadata from
// transport.WithMetadata goes out as headers and the context's deadline as
// the Ferry-Timeout-Ms header; reply headers are delivered to
// transport.CaptureReply. Errors are *errs.Error values.
func (c *Client) Invoke(ctx context.Context, service, endpoint string, req, resp any) error {
	if c.pipe.Bare(ctx) {
		return callkit.Received(c.roundTrip(ctx, nil, service, endpoint, transport.OutgoingMetadata(ctx), req, resp), service, endpoint)
	}
	e := c.endpointURL(service, endpoint)
	w := callkit.Wire{Peer: c.base.Host, Method: http.MethodPost, Route: e.path, Target: e.full, TLS: c.tls}
	return c.pipe.InvokeWire(ctx, service, endpoint, w, req, resp)
}

// send is the innermost handler of the client pipeline.
func (c *Client) send(ctx context.Context, call *transport.Call, req, resp any) error {
	return c.roundTrip(ctx, call, call.Service, call.Endpoint, call.Request, req, resp)
}

// endpointURL returns the URL of service/endpoint, cached: building one
// costs more than the look-up. The cache is copy-on-write: reads take no
// lock.
func (c *Client) endpointURL(service, endpoint string) *endpointURL {
	k := urlKey{service, endpoint}
	for {
		old := c.urls.Load()
		if old != nil {
			if e := (*old)[k]; e != nil {
				return e
			}
		}
		cp := *c.base
		cp.Path = c.base.Path + "/" + service + "/" + endpoint
		cp.RawPath = c.base.Path + "/" + url.PathEscape(service) + "/" + url.PathEscape(endpoint)
		if cp.RawPath == cp.Path {
			cp.RawPath = ""
		}
		e := &endpointURL{u: &cp, path: cp.EscapedPath(), full: cp.String()}
		if old != nil && len(*old) >= maxCachedURLs {
			return e
		}
		next := make(map[urlKey]*endpointURL, 1+len(mapOf(old)))
		for k, v := range mapOf(old) {
			next[k] = v
		}
		next[k] = e
		if c.urls.CompareAndSwap(old, &next) {
			return e
		}
	}
}

func mapOf(m *map[urlKey]*endpointURL) map[urlKey]*endpointURL {
	if m == nil {
		return nil
	}
	return *m
}

// reserved are headers the client sets itself or that metadata must not
// override.
func reserved(k string) bool {
	switch strings.ToLower(k) {
	case "content-type", "content-length", "host", "connection", "transfer-encoding",
		"te", "upgrade", "keep-alive", "proxy-connection", "trailer", "ferry-timeout-ms":
		return true
	}
	return false
}

func (c *Client) roundTrip(ctx context.Context, call *transport.Call, service, endpoint string, md transport.Header, req, resp any) error {
	if service == "" || endpoint == "" {
		return errs.Newf(errs.InvalidArgument, "http: empty service or endpoint name (%q/%q)", service, endpoint)
	}
	if strings.Contains(service, ".") {
		return errs.Newf(errs.InvalidArgument, "http: service name %q has a '.': that is a fully qualified gRPC service name, which only the gRPC transport calls (Ferry service names have none)", errs.Clip(service))
	}
	body, err := c.codec.Marshal(req)
	if err != nil {
		return errs.Newf(errs.InvalidArgument, "http: encoding the %s request for %s/%s: %v", c.codec.Name(), service, endpoint, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "", bytes.NewReader(body))
	if err != nil {
		return errs.Newf(errs.Internal, "http: building the request: %v", err)
	}
	hr.URL = c.endpointURL(service, endpoint).u
	hr.Host = hr.URL.Host
	// Metadata keys go on the wire as they are (lower-case): header names
	// are case-insensitive and the server canonicalises them.
	if err := addMetadata(hr.Header, md); err != nil {
		return err
	}
	hr.Header["Content-Type"] = c.ct
	if dl, ok := ctx.Deadline(); ok {
		ms := (time.Until(dl) + time.Millisecond - 1) / time.Millisecond
		hr.Header[TimeoutHeader] = []string{strconv.FormatInt(max(int64(ms), 1), 10)}
	}

	hresp, err := c.hc.Do(hr)
	if err != nil {
		return transportError(ctx, service, endpoint, err)
	}
	defer hresp.Body.Close()
	if call != nil {
		call.Reply = Header(hresp.Header)
	} else if sink := callkit.ReplySink(ctx); sink != nil {
		*sink = transport.Copy(Header(hresp.Header))
	}

	ok := hresp.StatusCode >= 200 && hresp.StatusCode < 300
	limit := c.maxReply
	if !ok {
		limit = maxErrorBody
	}
	cod := c.codec
	if ct := hresp.Header["Content-Type"]; ok && len(ct) > 0 && ct[0] != cod.ContentType() {
		if rc, known := codec.ForContentType(ct[0]); known {
			cod = rc
		}
	}
	// As on the server, only codecs that copy out of their input may
	// decode from a pooled buffer.
	bp := new([]byte)
	if cod == codec.JSON || cod == codec.Proto {
		bp = c.getBuf()
		defer c.putBuf(bp)
	}
	data, err := readBody(hresp.Body, *bp, hresp.ContentLength, limit)
	*bp = data
	if len(hresp.Trailer) > 0 && err == nil {
		// The body was read to its end: the trailer is there. It joins
		// the reply metadata, as over gRPC.
		for k, vs := range hresp.Trailer {
			if len(vs) > 0 {
				hresp.Header[k] = append(hresp.Header[k], vs...)
			}
		}
		if call != nil {
			call.Trailer = transport.Copy(Header(hresp.Trailer))
		} else if sink := callkit.ReplySink(ctx); sink != nil {
			*sink = transport.Copy(Header(hresp.Header))
		}
	}
	if !ok {
		// An error body cut short still has its status.
		return parseProblem(hresp.StatusCode, hresp.Header.Get("Content-Type"), data)
	}
	switch {
	case errors.Is(err, errTooLarge):
		return errs.Newf(errs.ResourceExhausted, "http: reply from %s/%s exceeds the %d-byte limit", service, endpoint, limit)
	case err != nil:
		return transportError(ctx, service, endpoint, err)
	}
	if resp == nil || len(data) == 0 {
		return nil
	}
	if err := cod.Unmarshal(data, resp); err != nil {
		return errs.Newf(errs.Internal, "http: decoding the %s reply from %s/%s: %v", cod.Name(), service, endpoint, err)
	}
	return nil
}

// addMetadata copies md into h, checking that each key and value can be
// sent as a header.
func addMetadata(h http.Header, md transport.Header) error {
	switch m := md.(type) {
	case nil:
		return nil
	case transport.Metadata:
		for k, vs := range m {
			if err := addHeader(h, k, vs); err != nil {
				return err
			}
		}
		return nil
	}
	for _, k := range md.Keys() {
		if err := addHeader(h, k, md.Values(k)); err != nil {
			return err
		}
	}
	return nil
}

func addHeader(h http.Header, k string, vs []string) error {
	if reserved(k) {
		return nil
	}
	if !validHeaderName(k) {
		return errs.Newf(errs.InvalidArgument, "http: metadata key %q is not a valid header name", k)
	}
	for _, v := range vs {
		if !validHeaderValue(v) {
			return errs.Newf(errs.InvalidArgument, "http: metadata %q: value %q holds a control character", k, v)
		}
	}
	h[k] = vs
	return nil
}

// validHeaderName reports whether k is an RFC 9110 token.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue rejects the control characters net/http refuses to send.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// transportError classifies a failure to exchange a request and reply.
func transportError(ctx context.Context, service, endpoint string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return errs.Newf(errs.DeadlineExceeded, "http: calling %s/%s: deadline exceeded", service, endpoint)
		}
		return errs.Newf(errs.Canceled, "http: calling %s/%s: canceled", service, endpoint)
	}
	if errors.Is(err, context.DeadlineExceeded) { // http.Client.Timeout
		return errs.Newf(errs.DeadlineExceeded, "http: calling %s/%s: %w", service, endpoint, err)
	}
	return errs.Newf(errs.Unavailable, "http: calling %s/%s: %w", service, endpoint, err)
}

func (c *Client) getBuf() *[]byte {
	if bp, _ := c.bufs.Get().(*[]byte); bp != nil {
		return bp
	}
	b := make([]byte, 0, 4<<10)
	return &b
}

func (c *Client) putBuf(bp *[]byte) {
	if cap(*bp) > maxPooledBuf {
		return
	}
	*bp = (*bp)[:0]
	c.bufs.Put(bp)
}
