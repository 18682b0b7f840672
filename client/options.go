package client

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"github.com/nats-io/nats.go"
	"github.com/sony/gobreaker/v2"
)

// DefaultTimeout is the deadline given to a call whose context has none.
const DefaultTimeout = 10 * time.Second

// Option configures a Client.
type Option func(*config)

// EndpointConfig configures calls to one endpoint; see WithEndpoint.
type EndpointConfig struct {
	// Idempotent marks the endpoint safe to call twice, so that failures
	// after which the server may have processed the call are retried too.
	Idempotent bool
	// Retry replaces the client's retry policy (WithRetry) for the
	// endpoint; nil keeps it. Its Idempotent field is ORed with the one
	// above, and a nil Budget means the client's shared budget.
	Retry *middleware.RetryPolicy
	// Bulkhead limits the endpoint's calls in flight from this client; 0
	// means no limit. Excess calls fail at once with ResourceExhausted.
	Bulkhead int
	// Timeout bounds each call, retries included, below any deadline the
	// caller set; 0 leaves the caller's deadline (or the default timeout).
	Timeout time.Duration
}

// OutlierDetection configures the ejection of failing instances; see
// WithOutlierDetection.
type OutlierDetection struct {
	// ConsecutiveFailures ejects an instance after this many health
	// failures in a row (default 5; negative disables detection). An
	// instance that cannot be reached at all — connection refused, a
	// failed dial: the request was not sent — is ejected at its first such
	// failure.
	ConsecutiveFailures int
	// BaseEjectionTime is the first ejection's length; the n-th ejection
	// in a row lasts n times as long, up to 10 times (default 30s).
	BaseEjectionTime time.Duration
	// MaxEjectedFraction bounds the fraction of a service's instances
	// ejected at once (default 1/2, so two of five; at most 1), except that
	// one instance may always be ejected when there are two or more; the
	// last instance is never ejected. When every instance is ejected or
	// failing, calls still go to the least bad one.
	MaxEjectedFraction float64
}

// BreakerSettings configure the per-instance circuit breakers; see
// WithCircuitBreaker.
type BreakerSettings = gobreaker.Settings

type config struct {
	transports []string
	nc         *nats.Conn
	mws        []middleware.Middleware
	timeout    time.Duration
	newSel     func() Selector
	retry      middleware.RetryPolicy
	budget     *middleware.RetryBudget
	endpoints  map[string]EndpointConfig
	breaker    *BreakerSettings
	outlier    OutlierDetection
	tls        *tls.Config
	dialers    map[transport.Kind]Dialer
	grpcOpts   []fgrpc.ClientOption // WithGRPCOptions', for the built-in gRPC dialer
	errs       []error              // invalid options, reported by New
}

// usable lists the transports calls may use: those configured, less NATS
// without a connection.
func (c *config) usable(withNATS bool) []string {
	out := make([]string, 0, len(c.transports))
	for _, t := range c.transports {
		if t != "nats" || withNATS {
			out = append(out, t)
		}
	}
	return out
}

// fail records an invalid option for New to report.
func (c *config) fail(err error) { c.errs = append(c.errs, err) }

// Dialer makes the transport client of one instance at address (what the
// instance registered for the transport).
type Dialer func(address string, o DialOptions) (transport.Client, error)

// DialOptions are what a Dialer must honour.
type DialOptions struct {
	// TLS says the instance's registry entry asks for TLS; TLSConfig is
	// WithTLS's configuration (nil: the system's roots).
	TLS       bool
	TLSConfig *tls.Config
	// Middleware is the client's (WithMiddleware), to run in the transport
	// client's pipeline (transport/callkit), once per attempt.
	Middleware []middleware.Middleware
	// Metadata is the instance's registry metadata (read only), e.g.
	// registry.MetadataGRPCService, which the gRPC dialer calls the
	// service by.
	Metadata map[string]string
}

// WithDialer makes the client call instances of a transport kind — a
// plug-in's ("quic"), or a built-in one dialled differently — with d. The
// kind must also be listed in WithTransports to be used.
func WithDialer(kind transport.Kind, d Dialer) Option {
	return func(c *config) {
		if kind == "" || kind == transport.NATS || d == nil {
			c.fail(fmt.Errorf("client: WithDialer(%q): want a kind other than nats and a non-nil dialer", kind))
			return
		}
		c.dialers[kind] = d
	}
}

// WithGRPCOptions adds opts to the transport/grpc client of every instance
// called over gRPC, after the client's own (WithMiddleware, WithTLS):
// fgrpc.WithCompression("gzip") to compress requests, say, or
// fgrpc.WithCallOptions(grpc.MaxCallRecvMsgSize(n)). A dialer given for
// "grpc" with WithDialer replaces the built-in one and does not see them.
// An option fgrpc.NewClient refuses (an unknown compressor) is an error of
// New.
func WithGRPCOptions(opts ...fgrpc.ClientOption) Option {
	return func(c *config) { c.grpcOpts = append(c.grpcOpts, opts...) }
}

// dialGRPC returns the built-in gRPC dialer, adding extra to the client
// options of every instance.
func dialGRPC(extra []fgrpc.ClientOption) Dialer {
	return func(address string, o DialOptions) (transport.Client, error) {
		opts := []fgrpc.ClientOption{fgrpc.WithClientMiddleware(o.Middleware...)}
		if name := o.Metadata[registry.MetadataGRPCService]; name != "" {
			opts = append(opts, fgrpc.WithGRPCServiceName(name)) // a contract's (server.WithProtoService)
		}
		if o.TLS {
			opts = append(opts, fgrpc.WithClientTLS(o.TLSConfig))
		}
		return fgrpc.NewClient(address, append(opts, extra...)...)
	}
}

// dialHTTP is the built-in HTTP dialer.
func dialHTTP(address string, o DialOptions) (transport.Client, error) {
	return fhttp.NewClient(address, fhttp.WithClientMiddleware(o.Middleware...), fhttp.WithClientTLS(o.TLSConfig))
}

// WithTLS configures the TLS of calls to instances that serve it — those
// whose registry entry says TLS (a ferry.Service registers that for a TLS
// transport) or whose HTTP address is https://: trusted roots in
// cfg.RootCAs (nil for the system's), a client certificate in
// cfg.Certificates for mutual TLS. Without it such instances are dialled
// with TLS and the system's roots.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) {
		c.tls = cfg
	}
}

// WithTransports sets the transports calls may use, most preferred first:
// "nats", "grpc", "http" (default all three in that order), or a plug-in's
// kind given a dialer with WithDialer. Each instance is called over the
// first of them it offers; instances offering none are not called.
func WithTransports(names ...string) Option {
	return func(c *config) {
		if len(names) == 0 {
			c.fail(fmt.Errorf("client: WithTransports needs at least one transport"))
			return
		}
		seen := map[string]bool{}
		for _, n := range names {
			if n == "" {
				c.fail(fmt.Errorf("client: empty transport name"))
				return
			}
			if seen[n] {
				c.fail(fmt.Errorf("client: transport %q listed twice", n))
				return
			}
			seen[n] = true
		}
		c.transports = append([]string(nil), names...)
	}
}

// WithNATS lets the client call over NATS through nc, which stays the
// caller's to close. Without it, instances' NATS endpoints are skipped.
func WithNATS(nc *nats.Conn) Option {
	return func(c *config) {
		if nc == nil {
			c.fail(fmt.Errorf("client: WithNATS(nil)"))
			return
		}
		c.nc = nc
	}
}

// WithMiddleware appends client middleware, the first listed outermost,
// run once per attempt: after the instance and its transport are picked, so
// the transport.Call in its context names the Kind and the Peer; inside the
// retries, bulkhead and default timeout, so a retried call runs it again
// (a span and a measurement per attempt). Metadata it adds to Call.Request
// is sent with that attempt; Call.Reply holds the attempt's reply metadata
// once next returns, and a reply it returns instead of calling next (a
// cache) is the call's reply.
func WithMiddleware(mws ...middleware.Middleware) Option {
	return func(c *config) {
		c.mws = append(c.mws, mws...)
	}
}

// WithDefaultTimeout sets the deadline of calls whose context has none
// (default DefaultTimeout, 10s). It must be positive.
func WithDefaultTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail(fmt.Errorf("client: default timeout %v: want > 0", d))
			return
		}
		c.timeout = d
	}
}

// WithSelector sets how an instance is picked, by a constructor called
// once per service: RoundRobin, Random or P2C (the default).
func WithSelector(newSelector func() Selector) Option {
	return func(c *config) {
		if newSelector == nil {
			c.fail(fmt.Errorf("client: WithSelector(nil)"))
			return
		}
		c.newSel = newSelector
	}
}

// WithRetry sets the retry policy of every endpoint without one of its
// own. The default is the zero RetryPolicy: up to 5 attempts of calls that
// were not processed. A nil Budget means the client's shared budget.
func WithRetry(p middleware.RetryPolicy) Option {
	return func(c *config) {
		c.retry = p
	}
}

// WithRetryBudget sets the budget shared by the client's retries (default
// middleware.NewRetryBudget(0.2, 10): 20% of calls plus 10 per second).
func WithRetryBudget(b *middleware.RetryBudget) Option {
	return func(c *config) {
		if b == nil {
			c.fail(fmt.Errorf("client: WithRetryBudget(nil)"))
			return
		}
		c.budget = b
	}
}

// WithEndpoint configures calls to endpoint, named "Endpoint" (any
// service) or "service/Endpoint" (that service only, which wins).
func WithEndpoint(endpoint string, cfg EndpointConfig) Option {
	return func(c *config) {
		if endpoint == "" {
			c.fail(fmt.Errorf("client: WithEndpoint with an empty name"))
			return
		}
		if cfg.Bulkhead < 0 || cfg.Timeout < 0 {
			c.fail(fmt.Errorf("client: endpoint %q: negative bulkhead or timeout", endpoint))
			return
		}
		if c.endpoints == nil {
			c.endpoints = map[string]EndpointConfig{}
		}
		c.endpoints[endpoint] = cfg
	}
}

// WithCircuitBreaker gives every instance a gobreaker circuit breaker made
// from s (Name is set to the instance; IsSuccessful and IsExcluded, when
// nil, count the health failures listed in the package doc and ignore
// Canceled). An open breaker takes its instance out of selection; when
// every instance's breaker is open, calls fail at once with Unavailable.
// Without this option there is no breaker.
func WithCircuitBreaker(s BreakerSettings) Option {
	return func(c *config) {
		c.breaker = &s
	}
}

// WithOutlierDetection configures outlier detection, which is on by
// default with the defaults of OutlierDetection's fields.
func WithOutlierDetection(o OutlierDetection) Option {
	return func(c *config) {
		if o.MaxEjectedFraction < 0 || o.MaxEjectedFraction > 1 {
			c.fail(fmt.Errorf("client: max ejected fraction %v: want between 0 and 1", o.MaxEjectedFraction))
			return
		}
		if o.BaseEjectionTime < 0 {
			c.fail(fmt.Errorf("client: base ejection time %v: want >= 0", o.BaseEjectionTime))
			return
		}
		c.outlier = o
	}
}
