package grpc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	"github.com/ferry-go/ferry/transport/callkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// ClientOption configures a Client.
type ClientOption func(*clientConfig)

type clientConfig struct {
	dialOpts   []grpc.DialOption
	callOpts   []grpc.CallOption
	mws        []middleware.Middleware
	tls        bool   // WithClientTLS given, for Call.TLS
	compressor string // WithCompression's, checked by NewClient
	service    string // WithGRPCServiceName's
}

// WithGRPCServiceName makes the client call a Ferry service by name, the
// full gRPC service name of the protobuf contract it implements
// (server.WithProtoService), instead of the name derived from the Ferry
// name: Invoke(ctx, "billing", "Charge", …) calls
// /acme.billing.v1.Billing/Charge. It is for a client of that one service
// (client.Client's dialer sets it from registry.MetadataGRPCService); a
// service name with a '.' is still called as it is.
func WithGRPCServiceName(name string) ClientOption {
	return func(c *clientConfig) { c.service = name }
}

// WithDialOptions passes options to grpc.NewClient after Ferry's default
// (insecure transport credentials), so TLS credentials given here win. It
// applies to NewClient only.
func WithDialOptions(opts ...grpc.DialOption) ClientOption {
	return func(c *clientConfig) { c.dialOpts = append(c.dialOpts, opts...) }
}

// WithClientTLS makes NewClient connect with TLS configured by cfg (trusted
// roots in cfg.RootCAs, nil for the system's; a client certificate in
// cfg.Certificates for mutual TLS). nil means TLS with the system's roots.
// It applies to NewClient only. Its calls then have Call.TLS set; TLS
// credentials given through WithDialOptions or a NewClientConn connection
// work the same but are not seen there.
func WithClientTLS(cfg *tls.Config) ClientOption {
	return func(c *clientConfig) {
		c.dialOpts = append(c.dialOpts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		c.tls = true
	}
}

// WithCallOptions adds options to every call, such as
// grpc.MaxCallRecvMsgSize. Forcing another codec breaks calls to Ferry
// servers whose types are plain structs.
func WithCallOptions(opts ...grpc.CallOption) ClientOption {
	return func(c *clientConfig) { c.callOpts = append(c.callOpts, opts...) }
}

// WithCompression compresses every request with the named compressor:
// "gzip" (grpc-go's encoding/gzip, which this package registers) or any
// other registered with grpc-go's encoding.RegisterCompressor. Servers that
// have it answer compressed the same way; Ferry's gRPC server accepts gzip.
// "" and "identity" send uncompressed, the default. NewClient reports a
// name nobody registered; through NewClientConn such calls fail with
// grpc-go's Internal error naming it.
func WithCompression(name string) ClientOption {
	return func(c *clientConfig) {
		if name == "" || name == encoding.Identity {
			c.compressor = ""
			return
		}
		c.compressor = name
	}
}

// WithClientMiddleware runs mws around every call, the first outermost. The
// chain is composed once. Middleware sees a transport.Call with Client true
// whose Request metadata, a copy of the context's transport.OutgoingMetadata,
// it may add to; Reply holds the server's reply metadata once next returns.
func WithClientMiddleware(mws ...middleware.Middleware) ClientOption {
	return func(c *clientConfig) { c.mws = append(c.mws, mws...) }
}

// Client calls Ferry services, or any gRPC service, over one gRPC
// connection. A service name with a '.' is a fully qualified gRPC service
// name, called as it is: Invoke(ctx, "grpc.health.v1.Health", "Check", …)
// calls /grpc.health.v1.Health/Check; a Ferry service name is turned into
// its gRPC name (ServiceName). It implements transport.Client and is safe
// for concurrent use.
type Client struct {
	cc       grpc.ClientConnInterface
	owned    *grpc.ClientConn  // closed by Close when NewClient made it
	opts     []grpc.CallOption // forcing wireCodec, for plain structs
	msgOpts  []grpc.CallOption // grpc-go's default codec, for generated messages
	jsonOpts []grpc.CallOption // forcing jsonCodec (grpc+json), for raw JSON
	pipe     *callkit.Pipeline
	peer     string // the target, for Call.Peer
	tls      bool   // dialled with WithClientTLS, for Call.TLS
	service  string // WithGRPCServiceName's
	methods  atomic.Pointer[map[methodKey]string]
}

var _ transport.Client = (*Client)(nil)

// NewClient returns a Client with its own connection to target (any
// grpc-go target, such as "127.0.0.1:9090" or "dns:///greeter:9090"),
// without TLS unless WithClientTLS or WithDialOptions says otherwise. The
// connection is made lazily on the first call; Close closes it. As
// fhttp.NewClient(baseURL) and fnats.NewClient(nc), it takes where the
// calls go.
func NewClient(target string, opts ...ClientOption) (*Client, error) {
	var cfg clientConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.compressor != "" && encoding.GetCompressor(cfg.compressor) == nil {
		return nil, fmt.Errorf("grpc: WithCompression(%q): no such compressor is registered (gzip is)", cfg.compressor)
	}
	dopts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, cfg.dialOpts...)
	cc, err := grpc.NewClient(target, dopts...)
	if err != nil {
		return nil, fmt.Errorf("grpc: dial %s: %w", target, err)
	}
	c := newClient(cc, &cfg)
	c.owned = cc
	return c, nil
}

// NewClientConn returns a Client that calls through cc, which the caller
// owns: Close leaves it open. WithDialOptions and WithClientTLS do not
// apply.
func NewClientConn(cc grpc.ClientConnInterface, opts ...ClientOption) *Client {
	var cfg clientConfig
	for _, o := range opts {
		o(&cfg)
	}
	cfg.tls = false // WithClientTLS does not apply
	return newClient(cc, &cfg)
}

func newClient(cc grpc.ClientConnInterface, cfg *clientConfig) *Client {
	c := &Client{cc: cc, tls: cfg.tls, service: cfg.service}
	if cfg.compressor != "" {
		cfg.callOpts = append(cfg.callOpts, grpc.UseCompressor(cfg.compressor))
	}
	if t, ok := cc.(interface{ Target() string }); ok {
		c.peer = t.Target()
	}
	c.opts = append([]grpc.CallOption{grpc.ForceCodecV2(wireCodec{})}, cfg.callOpts...)
	c.msgOpts = append([]grpc.CallOption(nil), cfg.callOpts...)
	c.jsonOpts = append([]grpc.CallOption{grpc.ForceCodecV2(jsonCodec{})}, cfg.callOpts...)
	c.pipe = callkit.New(transport.GRPC, c.send, cfg.mws...)
	return c
}

// Close closes the connection if NewClient made it.
func (c *Client) Close() error {
	if c.owned == nil {
		return nil
	}
	return c.owned.Close()
}

// Invoke calls endpoint of service with req and decodes the reply into resp.
// Request metadata comes from transport.WithMetadata, the deadline from ctx;
// reply metadata goes to transport.CaptureReply's destination. A failure is
// an *errs.Error: the server's code, message and details, or Unavailable,
// DeadlineExceeded or Canceled as grpc-go reports them.
//
// A json.RawMessage request is sent unchanged as application/grpc+json,
// which a Ferry server answers in JSON: a *json.RawMessage resp receives
// the reply's bytes, any other resp is decoded from them as JSON. This is
// how a caller that has JSON but not the Go types (an API gateway, a CLI)
// calls over gRPC; errors are the same statuses as on the protobuf path.
func (c *Client) Invoke(ctx context.Context, service, endpoint string, req, resp any) error {
	if c.pipe.Bare(ctx) {
		return callkit.Received(c.invoke(ctx, c.method(service, endpoint), req, resp, transport.OutgoingMetadata(ctx)), service, endpoint)
	}
	w := callkit.Wire{Peer: c.peer, Method: c.method(service, endpoint), TLS: c.tls}
	return c.pipe.InvokeWire(ctx, service, endpoint, w, req, resp)
}

// send is the innermost handler under client middleware.
func (c *Client) send(ctx context.Context, call *transport.Call, req, resp any) error {
	var hdr, trl metadata.MD
	err := c.cc.Invoke(outgoingContext(ctx, call.Request), c.method(call.Service, call.Endpoint), req, resp, withHeader(c.callOptions(req, resp), &hdr, &trl)...)
	call.Reply = replyMetadata(hdr, trl)
	return fromStatus(err)
}

// invoke is the call without middleware: no Call value, and reply metadata
// is asked for only when someone captures it.
func (c *Client) invoke(ctx context.Context, method string, req, resp any, md transport.Metadata) error {
	if len(md) > 0 {
		ctx = outgoingContext(ctx, md)
	}
	opts := c.callOptions(req, resp)
	sink := callkit.ReplySink(ctx)
	if sink == nil {
		return fromStatus(c.cc.Invoke(ctx, method, req, resp, opts...))
	}
	var hdr, trl metadata.MD
	err := c.cc.Invoke(ctx, method, req, resp, withHeader(opts, &hdr, &trl)...)
	*sink = replyMetadata(hdr, trl)
	return fromStatus(err)
}

// callOptions picks the codec: generated messages both ways go through
// grpc-go's registered "proto" codec, exactly as a generated client would
// (content-type application/grpc); a json.RawMessage request goes as it is
// in a grpc+json call (what an API gateway forwards without knowing the
// types); anything else needs wireCodec, which encodes the same bytes for
// messages and also handles plain structs.
func (c *Client) callOptions(req, resp any) []grpc.CallOption {
	switch req.(type) {
	case proto.Message:
		if _, ok := resp.(proto.Message); ok {
			return c.msgOpts
		}
	case json.RawMessage:
		return c.jsonOpts
	}
	return c.opts
}

// withHeader returns opts plus options that store the reply header in *md
// and the trailer in *trl, leaving opts' backing array alone.
func withHeader(opts []grpc.CallOption, md, trl *metadata.MD) []grpc.CallOption {
	return append(opts[:len(opts):len(opts)], grpc.Header(md), grpc.Trailer(trl))
}

// replyMetadata is the reply metadata a caller sees: the header, with the
// trailer's keys merged in, so that what a server sends only in trailers
// (grpc-retry-pushback-ms, metadata of an error reply) is visible too.
func replyMetadata(hdr, trl metadata.MD) transport.Metadata {
	if len(trl) == 0 {
		if hdr == nil {
			return transport.Metadata{}
		}
		return transport.Metadata(hdr)
	}
	if len(hdr) == 0 {
		return transport.Metadata(trl)
	}
	return transport.Metadata(metadata.Join(hdr, trl))
}

// outgoingContext returns ctx sending h as gRPC metadata, after any
// metadata already attached with grpc-go's own metadata package.
func outgoingContext(ctx context.Context, h transport.Header) context.Context {
	var md metadata.MD
	if m, ok := h.(transport.Metadata); ok {
		md = metadata.MD(m) // both hold lower-case keys
	} else if h != nil {
		md = metadata.MD(transport.Copy(h))
	}
	if len(md) == 0 {
		return ctx
	}
	if prev, ok := metadata.FromOutgoingContext(ctx); ok {
		md = metadata.Join(prev, md)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

type methodKey struct{ service, endpoint string }

// maxCachedMethods bounds the method-name cache of a client.
const maxCachedMethods = 1024

// method returns MethodName(service, endpoint), cached so that steady
// traffic builds no strings. The cache is copy-on-write: reads take no lock.
func (c *Client) method(service, endpoint string) string {
	k := methodKey{service, endpoint}
	for {
		old := c.methods.Load()
		if old != nil {
			if m, ok := (*old)[k]; ok {
				return m
			}
		}
		m := MethodName(service, endpoint)
		if c.service != "" && !strings.Contains(service, ".") {
			m = "/" + c.service + "/" + endpoint
		}
		if old != nil && len(*old) >= maxCachedMethods {
			return m
		}
		next := make(map[methodKey]string, 1+lenOf(old))
		if old != nil {
			for k, v := range *old {
				next[k] = v
			}
		}
		next[k] = m
		if c.methods.CompareAndSwap(old, &next) {
			return m
		}
	}
}

func lenOf(m *map[methodKey]string) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
