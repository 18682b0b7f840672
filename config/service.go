package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/broker"
	jsbroker "github.com/ferry-go/ferry/broker/jetstream"
	brokermemory "github.com/ferry-go/ferry/broker/memory"
	natsbroker "github.com/ferry-go/ferry/broker/nats"
	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/dns"
	regmemory "github.com/ferry-go/ferry/registry/memory"
	natsreg "github.com/ferry-go/ferry/registry/nats"
	"github.com/ferry-go/ferry/registry/static"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RegistryFactory makes the registry of kind registry.kind. nc is the
// service's NATS connection once it started, nil when NATS is off.
type RegistryFactory func(ctx context.Context, cfg *Config, nc *nats.Conn) (registry.Registry, error)

// BrokerFactory makes the broker of kind broker.kind; nc as for
// RegistryFactory.
type BrokerFactory func(ctx context.Context, cfg *Config, nc *nats.Conn) (broker.Broker, error)

// MiddlewareFactory makes a server middleware from its settings.
type MiddlewareFactory func(settings map[string]any) (middleware.Middleware, error)

// Factories are the explicit by-name tables NewService picks registries,
// brokers and middleware from. A plug-in adds its own entry:
//
//	f := config.DefaultFactories()
//	f.Registries["consul"] = consulreg.Factory
//	svc, err := config.NewService(cfg, register, config.WithFactories(f))
type Factories struct {
	Registries map[string]RegistryFactory
	Brokers    map[string]BrokerFactory
	Middleware map[string]MiddlewareFactory
	// needsNATS names the built-in kinds that need the NATS connection.
	needsNATS map[string]bool
}

// DefaultFactories returns a new table of the built-in kinds: registries
// none, memory, nats, static, dns; brokers none, memory, nats, jetstream;
// middleware bulkhead (settings: max).
func DefaultFactories() Factories {
	return Factories{
		Registries: map[string]RegistryFactory{
			"none":   nil,
			"memory": func(context.Context, *Config, *nats.Conn) (registry.Registry, error) { return regmemory.New(), nil },
			"nats":   natsRegistry,
			"static": staticRegistry,
			"dns":    dnsRegistry,
		},
		Brokers: map[string]BrokerFactory{
			"none": nil,
			"memory": func(context.Context, *Config, *nats.Conn) (broker.Broker, error) {
				return brokermemory.New()
			},
			"nats": func(_ context.Context, _ *Config, nc *nats.Conn) (broker.Broker, error) {
				return natsbroker.New(nc)
			},
			"jetstream": jetStreamBroker,
		},
		Middleware: map[string]MiddlewareFactory{
			"bulkhead": bulkhead,
		},
		needsNATS: map[string]bool{"registry nats": true, "broker nats": true, "broker jetstream": true},
	}
}

func natsRegistry(ctx context.Context, cfg *Config, nc *nats.Conn) (registry.Registry, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	r := cfg.Registry.NATS
	opts := []natsreg.Option{natsreg.WithBucket(r.Bucket), natsreg.WithTTL(r.TTL), natsreg.WithReplicas(r.Replicas)}
	if r.Heartbeat > 0 {
		opts = append(opts, natsreg.WithHeartbeat(r.Heartbeat))
	}
	return natsreg.New(ctx, js, opts...)
}

func staticRegistry(_ context.Context, cfg *Config, _ *nats.Conn) (registry.Registry, error) {
	ins := make([]registry.Instance, 0, len(cfg.Registry.Static))
	for _, s := range cfg.Registry.Static {
		in := registry.Instance{ID: s.ID, Service: s.Service}
		for _, tr := range slices.Sorted(maps.Keys(s.Endpoints)) {
			in.Endpoints = append(in.Endpoints, registry.Endpoint{Transport: tr, Address: s.Endpoints[tr]})
		}
		ins = append(ins, in)
	}
	return static.New(ins...)
}

func dnsRegistry(_ context.Context, cfg *Config, _ *nats.Conn) (registry.Registry, error) {
	services := make(map[string][]dns.Target, len(cfg.Registry.DNS))
	for name, ts := range cfg.Registry.DNS {
		for _, t := range ts {
			services[name] = append(services[name], dns.Target{Transport: t.Transport, SRV: t.SRV, Host: t.Host, Port: t.Port})
		}
	}
	return dns.New(services)
}

func jetStreamBroker(ctx context.Context, cfg *Config, nc *nats.Conn) (broker.Broker, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	j := cfg.Broker.JetStream
	opts := []jsbroker.Option{jsbroker.WithPrefetch(j.Prefetch)}
	for _, s := range j.Streams {
		sc := jetstream.StreamConfig{Name: s.Name, Subjects: s.Subjects, Replicas: s.Replicas, MaxAge: s.MaxAge, Duplicates: s.Duplicates}
		if s.Storage == "memory" {
			sc.Storage = jetstream.MemoryStorage
		}
		opts = append(opts, jsbroker.WithStream(sc))
	}
	switch {
	case !j.DeadLetterStream:
		opts = append(opts, jsbroker.WithoutDeadLetterStream())
	case j.DeadLetterReplicas > 1:
		opts = append(opts, jsbroker.WithDeadLetterStream(jetstream.StreamConfig{
			Name: jsbroker.DefaultDeadLetterStream, Subjects: []string{"dlq.>"}, Replicas: j.DeadLetterReplicas,
		}))
	}
	return jsbroker.New(ctx, js, opts...)
}

func bulkhead(settings map[string]any) (middleware.Middleware, error) {
	n, ok := settings["max"]
	if !ok {
		return nil, errors.New(`want settings.max, the most calls in flight`)
	}
	var max int
	switch v := n.(type) {
	case int:
		max = v
	case float64:
		max = int(v)
	default:
		return nil, fmt.Errorf("settings.max = %v: want a whole number", n)
	}
	if max < 1 {
		return nil, fmt.Errorf("settings.max = %d: want at least 1", max)
	}
	return middleware.Bulkhead(max), nil
}

// Option configures NewService.
type Option func(*buildOptions)

type buildOptions struct {
	factories Factories
	extra     []ferry.Option
	server    []server.Option
}

// WithFactories replaces the built-in factory table (start from
// DefaultFactories to keep the built-ins).
func WithFactories(f Factories) Option { return func(o *buildOptions) { o.factories = f } }

// WithServiceOptions adds ferry.Service options after the ones the
// configuration makes (e.g. a WithComponent of your own).
func WithServiceOptions(opts ...ferry.Option) Option {
	return func(o *buildOptions) { o.extra = append(o.extra, opts...) }
}

// WithServerOptions adds server.Options after the ones the configuration
// makes (e.g. more middleware, which runs inside the configured ones).
func WithServerOptions(opts ...server.Option) Option {
	return func(o *buildOptions) { o.server = append(o.server, opts...) }
}

// NewService builds the service cfg describes: a server named
// service.name with the configured middleware and logger, on which
// register adds the endpoints and subscriptions (it gets the Service too,
// for ferry.Subscribe and Broker); exactly the transports that are
// enabled; the NATS connection (embedded server when nats.url is empty)
// when a transport, the registry or the broker needs it; the registry and
// broker of their kinds. Kinds come from the factory table; an unknown
// kind or a kind that needs NATS while NATS is off is an *Error naming the
// key and its source.
func NewService(cfg *Config, register func(*ferry.Service, *server.Server), opts ...Option) (*ferry.Service, error) {
	if cfg == nil || cfg.sources == nil {
		return nil, errors.New("config: NewService needs a configuration from Load")
	}
	bo := buildOptions{factories: DefaultFactories()}
	for _, o := range opts {
		if o != nil {
			o(&bo)
		}
	}
	f := bo.factories
	logger := NewLogger(cfg.Log)
	var problems []Problem
	problem := func(key, value, msg string) {
		problems = append(problems, Problem{Key: key, Source: cfg.Source(key), Value: value, Message: msg})
	}

	var mws []middleware.Middleware
	for i, m := range cfg.Middleware {
		key := fmt.Sprintf("middleware[%d]", i)
		mf, ok := f.Middleware[m.Name]
		if !ok {
			problem(key, m.Name, "unknown middleware; known: "+names(f.Middleware))
			continue
		}
		mw, err := mf(m.Settings)
		if err != nil {
			problem(key, m.Name, err.Error())
			continue
		}
		mws = append(mws, mw)
	}
	regFactory, regOK := f.Registries[cfg.Registry.Kind]
	if !regOK {
		problem("registry.kind", cfg.Registry.Kind, "unknown registry; known: "+names(f.Registries))
	}
	brokerFactory, brokerOK := f.Brokers[cfg.Broker.Kind]
	if !brokerOK {
		problem("broker.kind", cfg.Broker.Kind, "unknown broker; known: "+names(f.Brokers))
	}
	t := cfg.Transports
	natsOn := t.NATS.Enabled || f.needsNATS["registry "+cfg.Registry.Kind] || f.needsNATS["broker "+cfg.Broker.Kind]
	if !t.HTTP.Enabled && !t.GRPC.Enabled && !t.NATS.Enabled && (cfg.Broker.Kind == "none" || !brokerOK) {
		problem("transports", "", "no transport is enabled and there is no broker: the service would do nothing")
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}

	var tel *telemetry.Telemetry
	if cfg.Telemetry.Enabled || cfg.Admin.Enabled {
		tc := cfg.Telemetry
		var err error
		tel, err = telemetry.Setup(context.Background(), telemetry.Config{
			ServiceName: cfg.Service.Name, ServiceVersion: cfg.Service.Version,
			OTLPEndpoint: tc.OTLPEndpoint, OTLPInsecure: tc.OTLPInsecure, Stdout: tc.Stdout,
			Sampler: tc.Sampler, SamplerRatio: tc.SamplerRatio,
			Logger: logger, SecretHeaders: tc.SecretHeaders,
		})
		if err != nil {
			return nil, &Error{Problems: []Problem{{Key: "telemetry", Source: cfg.Source("telemetry.enabled"), Message: err.Error()}}}
		}
		if cfg.Telemetry.Enabled {
			tm := []middleware.Middleware{tel.Tracing(), tel.Metrics()}
			if cfg.Telemetry.AccessLog {
				tm = append(tm, tel.AccessLog())
			}
			mws = append(tm, mws...) // outermost: they see what the configured middleware decide
		}
	}

	srvOpts := []server.Option{server.WithVersion(cfg.Service.Version), server.WithLogger(logger),
		server.WithAdmission(server.Admission{MaxCalls: cfg.Service.Admission.MaxCalls, MaxBytes: cfg.Service.Admission.MaxBytes})}
	if cfg.Service.Description != "" {
		srvOpts = append(srvOpts, server.WithDescription(cfg.Service.Description))
	}
	if j := cfg.Service.JSON; j.DisallowUnknownFields || j.CaseSensitive {
		srvOpts = append(srvOpts, server.WithJSON(codec.NewJSON(codec.JSONOptions{DisallowUnknownFields: j.DisallowUnknownFields, CaseSensitive: j.CaseSensitive})))
	}
	if len(mws) > 0 {
		srvOpts = append(srvOpts, server.WithMiddleware(mws...))
	}
	srv := server.New(cfg.Service.Name, append(srvOpts, bo.server...)...)

	sopts := []ferry.Option{ferry.WithLogger(logger), ferry.WithShutdownTimeout(cfg.ShutdownTimeout)}
	var admin *telemetry.Admin
	if tel != nil {
		// First: the providers flush last, after everything else stopped.
		sopts = append(sopts, ferry.WithComponent(shutdownComponent(tel.Shutdown)))
		if cfg.Admin.Enabled {
			admin = tel.Admin(cfg.Admin.Addr)
			sopts = append(sopts, ferry.WithComponent(&keyedComponent{Component: admin, key: "admin.addr", cfg: cfg}))
		}
	}
	if cfg.AdvertiseHost != "" {
		sopts = append(sopts, ferry.WithAdvertiseHost(cfg.AdvertiseHost))
	}
	if t.HTTP.Enabled {
		hopts := []fhttp.ServerOption{fhttp.WithDefaultTimeout(t.HTTP.Timeout), fhttp.WithMaxTimeout(t.HTTP.MaxTimeout)}
		if t.HTTP.TLS.CertFile != "" {
			tc, err := loadTLS(t.HTTP.TLS)
			if err != nil {
				_ = shutdownTel(tel)
				return nil, &Error{Problems: []Problem{{Key: "transports.http.tls.cert_file", Source: cfg.Source("transports.http.tls.cert_file"), Value: t.HTTP.TLS.CertFile, Message: err.Error()}}}
			}
			hopts = append(hopts, fhttp.WithTLS(tc))
		}
		sopts = append(sopts, ferry.WithTransport(&keyed{Transport: fhttp.NewServer(t.HTTP.Addr, hopts...), key: "transports.http.addr", cfg: cfg}))
	}
	if t.GRPC.Enabled {
		gopts := []fgrpc.ServerOption{fgrpc.WithDefaultTimeout(t.GRPC.Timeout), fgrpc.WithMaxTimeout(t.GRPC.MaxTimeout)}
		if t.GRPC.TLS.CertFile != "" {
			tc, err := loadTLS(t.GRPC.TLS)
			if err != nil {
				_ = shutdownTel(tel)
				return nil, &Error{Problems: []Problem{{Key: "transports.grpc.tls.cert_file", Source: cfg.Source("transports.grpc.tls.cert_file"), Value: t.GRPC.TLS.CertFile, Message: err.Error()}}}
			}
			gopts = append(gopts, fgrpc.WithTLS(tc))
		}
		g := fgrpc.NewServer(t.GRPC.Addr, gopts...)
		if admin != nil {
			admin.OnDrain(func() { g.SetServing(false) }) // gRPC health follows /readyz
		}
		sopts = append(sopts, ferry.WithTransport(&keyed{Transport: g, key: "transports.grpc.addr", cfg: cfg}))
	}
	if natsOn {
		nopts, err := natsOptions(cfg)
		if err != nil {
			_ = shutdownTel(tel)
			return nil, err
		}
		if len(nopts) > 0 {
			sopts = append(sopts, ferry.WithNATSOptions(nopts...))
		}
		if t.NATS.Enabled {
			sopts = append(sopts, ferry.WithNATS(cfg.NATS.URL, fnats.WithDefaultTimeout(t.NATS.Timeout), fnats.WithMaxTimeout(t.NATS.MaxTimeout)))
		} else {
			sopts = append(sopts, ferry.WithNATSConnection(cfg.NATS.URL))
		}
		e := cfg.NATS.Embedded
		sopts = append(sopts, ferry.WithEmbeddedNATS(natsembed.Options{Host: e.Host, Port: e.Port, JetStream: e.JetStream, StoreDir: e.StoreDir}))
	}
	if regFactory != nil {
		sopts = append(sopts, ferry.WithRegistryFrom(func(ctx context.Context, nc *nats.Conn) (registry.Registrar, error) {
			r, err := regFactory(ctx, cfg, nc)
			if err != nil {
				return nil, fmt.Errorf("registry.kind = %s (from %s): %w", cfg.Registry.Kind, cfg.Source("registry.kind"), err)
			}
			return r, nil
		}))
	}
	if brokerFactory != nil {
		sopts = append(sopts, ferry.WithBrokerFrom(func(ctx context.Context, nc *nats.Conn) (broker.Broker, error) {
			b, err := brokerFactory(ctx, cfg, nc)
			if err != nil {
				return nil, fmt.Errorf("broker.kind = %s (from %s): %w", cfg.Broker.Kind, cfg.Source("broker.kind"), err)
			}
			if tel != nil && cfg.Telemetry.Enabled {
				b = tel.Broker(b) // producer spans, published and dead-lettered counts
			}
			return b, nil
		}))
	}
	var svc *ferry.Service
	if admin != nil {
		if natsOn {
			admin.AddCheck("nats", telemetry.NATSConnected(func() *nats.Conn { return svc.NATSConn() }))
		}
		// Transports that can tell they stopped working (the NATS transport
		// whose subscription ended) take the service out of rotation.
		admin.AddCheck("transports", func(ctx context.Context) error { return svc.Check(ctx) })
		// Last: at stop, readiness drops before anything drains.
		sopts = append(sopts, ferry.WithComponent(admin.DrainSignal()))
	}
	svc = ferry.New(srv, append(sopts, bo.extra...)...)
	if register != nil {
		register(svc, srv)
	}
	return svc, nil
}

// shutdownTel releases telemetry set up for a service that will not run.
func shutdownTel(t *telemetry.Telemetry) error {
	if t == nil {
		return nil
	}
	return t.Shutdown(context.Background())
}

// shutdownComponent runs f at stop.
type shutdownComponent func(context.Context) error

func (shutdownComponent) Start(context.Context) error      { return nil }
func (f shutdownComponent) Stop(ctx context.Context) error { return f(ctx) }

// keyedComponent is a component whose start errors name its key.
type keyedComponent struct {
	ferry.Component
	key string
	cfg *Config
}

func (k *keyedComponent) Start(ctx context.Context) error {
	if err := k.Component.Start(ctx); err != nil {
		return fmt.Errorf("%s (from %s): %w", k.key, k.cfg.Source(k.key), err)
	}
	return nil
}

// ListenAddr forwards to the component, so the start log shows its address.
func (k *keyedComponent) ListenAddr() (string, string, bool) {
	if l, ok := k.Component.(ferry.Listener); ok {
		return l.ListenAddr()
	}
	return "", "", false
}

// ServesTLS forwards to the transport, so the registry says TLS.
func (k *keyed) ServesTLS() bool {
	r, ok := k.Transport.(server.TLSReporter)
	return ok && r.ServesTLS()
}

// Check forwards to the transport, for Service.Check.
func (k *keyed) Check(ctx context.Context) error {
	if c, ok := k.Transport.(ferry.Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// keyed is a transport whose start errors name its configuration key.
type keyed struct {
	server.Transport
	key string
	cfg *Config
}

func (k *keyed) Start(ctx context.Context, srv *server.Server) error {
	if err := k.Transport.Start(ctx, srv); err != nil {
		return fmt.Errorf("%s (from %s): %w", k.key, k.cfg.Source(k.key), err)
	}
	return nil
}

// Advertise forwards to the transport, so the registry sees its address.
func (k *keyed) Advertise() (string, string, bool) {
	if a, ok := k.Transport.(server.Advertiser); ok {
		return a.Advertise()
	}
	return "", "", false
}

// natsOptions are the NATS connection's credentials and TLS settings.
func natsOptions(cfg *Config) ([]nats.Option, error) {
	n := cfg.NATS
	var opts []nats.Option
	switch {
	case n.User != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	case n.Token != "":
		opts = append(opts, nats.Token(n.Token))
	case n.CredsFile != "":
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	case n.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(n.NKeyFile)
		if err != nil {
			return nil, &Error{Problems: []Problem{{Key: "nats.nkey_file", Source: cfg.Source("nats.nkey_file"), Value: n.NKeyFile, Message: err.Error()}}}
		}
		opts = append(opts, o)
	}
	if n.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(n.TLS.CAFile))
	}
	if n.TLS.CertFile != "" {
		opts = append(opts, nats.ClientCert(n.TLS.CertFile, n.TLS.KeyFile))
	}
	return opts, nil
}

func loadTLS(t TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load the certificate and key: %v", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("read the client CA file: %v", err)
		}
		c.ClientCAs = x509.NewCertPool()
		if !c.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA file %s holds no PEM certificate", t.ClientCAFile)
		}
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

func names[V any](m map[string]V) string {
	return strings.Join(slices.Sorted(maps.Keys(m)), ", ")
}

// NewLogger returns the logger Log describes, writing to stderr.
func NewLogger(l Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level)) // validated by Load
	ho := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, ho))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, ho))
}
