package config

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/ferry-go/ferry/middleware/requestid"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/registry"
	regmemory "github.com/ferry-go/ferry/registry/memory"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
)

// clients holds the outgoing client of each service NewService built.
var clients sync.Map // *ferry.Service → *lazyClient

// Client returns the client a service built by NewService calls other
// services with — the same configuration, swapped by it like the service
// itself:
//
//   - it finds services in the service's registry (registry.kind), or over
//     its NATS connection (queue groups need no registry), preferring the
//     transports of client.transports;
//   - its timeout and retry policy are client.timeout and client.retry;
//   - instances registered with TLS are dialled with TLS, trusting
//     client.tls.ca_file and presenting client.tls.cert_file;
//   - gRPC requests are compressed with client.grpc_compression (gzip);
//   - clients.<service> replaces any of these for calls to that service;
//   - with telemetry.enabled every call is a client span and is measured,
//     and the trace goes on in the called service.
//
// Take it in register and call through it from handlers:
//
//	func register(svc *ferry.Service, srv *server.Server) {
//		payments := config.Client(svc)
//		server.Register(srv, PlaceOrder, func(ctx context.Context, r *Order) (*Placed, error) {
//			charged, err := Charge.Call(ctx, payments, &ChargeRequest{...})
//			...
//		})
//	}
//
// It calls once the service has started (before that a call is
// Unavailable) and is closed when the service stops. For a Service not
// built by NewService it returns a client whose calls all fail.
func Client(svc *ferry.Service) transport.Client {
	if lc, ok := clients.Load(svc); ok {
		return lc.(*lazyClient)
	}
	return &lazyClient{}
}

// lazyClient is the service's client before and after it is made: the
// client of client:, and one per service listed in clients:.
type lazyClient struct {
	c atomic.Pointer[callers]
}

// callers are the clients of a running service.
type callers struct {
	def   *client.Client
	perSv map[string]*client.Client
}

func (l *lazyClient) Invoke(ctx context.Context, service, endpoint string, req, resp any) error {
	cs := l.c.Load()
	if cs == nil {
		return errs.Newf(errs.Unavailable, "config: the service's client is not running (the service has not started, has stopped, or was not built by config.NewService)")
	}
	if c := cs.perSv[service]; c != nil {
		return c.Invoke(ctx, service, endpoint, req, resp)
	}
	return cs.def.Invoke(ctx, service, endpoint, req, resp)
}

// Close does nothing: the client belongs to the service, which closes it
// when it stops.
func (l *lazyClient) Close() error { return nil }

// sharedRegistry makes the configured registry once, for the
// registration and the client alike.
type sharedRegistry struct {
	make func(ctx context.Context) (registry.Registry, error)
	mu   sync.Mutex
	r    registry.Registry
}

func (s *sharedRegistry) get(ctx context.Context) (registry.Registry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r != nil {
		return s.r, nil
	}
	r, err := s.make(ctx)
	if err != nil {
		return nil, err
	}
	s.r = r
	return r, nil
}

// clientComponent makes the service's client at start, once the
// connections are up and before the transports serve, and closes it at
// stop, after they drained.
type clientComponent struct {
	b     *builder
	lc    *lazyClient
	opts  []client.Option            // client:
	perSv map[string][]client.Option // clients:
}

func (cc *clientComponent) Start(ctx context.Context) error {
	b := cc.b
	var d registry.Discovery = regmemory.New() // no registry: NATS routes by subject
	if b.reg != nil {
		r, err := b.reg.get(ctx)
		if err != nil {
			return err
		}
		d = r
	}
	var shared []client.Option
	if b.conn != nil {
		shared = append(shared, client.WithNATS(b.conn.NATS()))
	}
	if b.tel != nil && b.cfg.Telemetry.Enabled {
		shared = append(shared, client.WithMiddleware(b.tel.Tracing(), b.tel.Metrics()))
	}
	if slices.ContainsFunc(b.cfg.Middleware, func(m Middleware) bool { return m.Name == "requestid" }) {
		// The request's ID goes on to every service it calls (and the
		// gateway's forwarded calls carry the ID its edge gave them).
		shared = append(shared, client.WithMiddleware(requestid.Client()))
	}
	cs := &callers{perSv: map[string]*client.Client{}}
	closeAll := func() {
		for _, c := range cs.perSv {
			_ = c.Close()
		}
		if cs.def != nil {
			_ = cs.def.Close()
		}
	}
	var err error
	if cs.def, err = client.New(d, append(shared, cc.opts...)...); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(cc.perSv)) {
		c, err := client.New(d, append(shared, cc.perSv[name]...)...)
		if err != nil {
			closeAll()
			return fmt.Errorf("clients.%s: %w", name, err)
		}
		cs.perSv[name] = c
	}
	cc.lc.c.Store(cs)
	return nil
}

func (cc *clientComponent) Stop(context.Context) error {
	cs := cc.lc.c.Swap(nil)
	if cs == nil {
		return nil
	}
	var errsOut []error
	for _, c := range cs.perSv {
		errsOut = append(errsOut, c.Close())
	}
	errsOut = append(errsOut, cs.def.Close())
	return errors.Join(errsOut...)
}

// clientOptions are the options of the client of c, merged over base
// (client:) for a service of clients: — a zero field keeps base's.
// A TLS file that cannot be used is a *tlsFileError.
func clientOptions(base Calls, per *ServiceCalls, service string) ([]client.Option, error) {
	c := base
	var idempotent []string
	if per != nil {
		if len(per.Transports) > 0 {
			c.Transports = per.Transports
		}
		c.Timeout = cmp.Or(per.Timeout, c.Timeout)
		r := per.Retry
		c.Retry = Retry{MaxAttempts: cmp.Or(r.MaxAttempts, c.Retry.MaxAttempts), BaseBackoff: cmp.Or(r.BaseBackoff, c.Retry.BaseBackoff),
			MaxBackoff: cmp.Or(r.MaxBackoff, c.Retry.MaxBackoff), AttemptTimeout: cmp.Or(r.AttemptTimeout, c.Retry.AttemptTimeout)}
		t := per.TLS
		c.TLS = ClientTLS{CAFile: cmp.Or(t.CAFile, c.TLS.CAFile), ServerName: cmp.Or(t.ServerName, c.TLS.ServerName),
			CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile}
		if t.CertFile != "" {
			c.TLS.CertFile, c.TLS.KeyFile = t.CertFile, t.KeyFile
		}
		c.GRPCCompression = cmp.Or(per.GRPCCompression, c.GRPCCompression)
		idempotent = per.Idempotent
	}
	opts := []client.Option{client.WithTransports(c.Transports...), client.WithDefaultTimeout(c.Timeout),
		client.WithRetry(middleware.RetryPolicy{MaxAttempts: c.Retry.MaxAttempts, BaseBackoff: c.Retry.BaseBackoff,
			MaxBackoff: c.Retry.MaxBackoff, AttemptTimeout: c.Retry.AttemptTimeout})}
	if c.GRPCCompression != "" {
		opts = append(opts, client.WithGRPCOptions(fgrpc.WithCompression(c.GRPCCompression)))
	}
	for _, ep := range idempotent {
		opts = append(opts, client.WithEndpoint(service+"/"+ep, client.EndpointConfig{Idempotent: true}))
	}
	if c.TLS != (ClientTLS{}) {
		tc, err := clientTLS(c.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithTLS(tc))
	}
	return opts, nil
}

// tlsFileError says which TLS file (the key under tls) cannot be used.
type tlsFileError struct {
	key, file string
	err       error
}

func (e *tlsFileError) Error() string { return e.err.Error() }

// clientTLS is the tls.Config of t.
func clientTLS(t ClientTLS) (*tls.Config, error) {
	c := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, &tlsFileError{"ca_file", t.CAFile, err}
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, &tlsFileError{"ca_file", t.CAFile, errors.New("holds no PEM certificate")}
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, &tlsFileError{"cert_file", t.CertFile, fmt.Errorf("load the certificate and key: %v", err)}
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
