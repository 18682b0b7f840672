package config

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
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
	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/dns"
	regmemory "github.com/ferry-go/ferry/registry/memory"
	natsreg "github.com/ferry-go/ferry/registry/nats"
	"github.com/ferry-go/ferry/registry/natssrv"
	"github.com/ferry-go/ferry/registry/static"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/telemetry"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// RegistryFactory makes the registry of kind registry.kind at start, once
// the service's connections are up; res gives what they made.
type RegistryFactory func(ctx context.Context, cfg *Config, res Resources) (registry.Registry, error)

// BrokerFactory makes the broker of kind broker.kind; res as for
// RegistryFactory.
type BrokerFactory func(ctx context.Context, cfg *Config, res Resources) (broker.Broker, error)

// Resources are what a service built from a configuration has made that
// plug-ins may use: today its NATS connection.
type Resources struct {
	nats *fnats.Conn
}

// NATS returns the service's NATS connection, nil when NATS is off (no
// transport, registry or broker needs it).
func (r Resources) NATS() *nats.Conn {
	if r.nats == nil {
		return nil
	}
	return r.nats.NATS()
}

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

// DefaultFactories returns a new table of the built-in kinds — registries
// none, memory, nats, srv, static, dns; brokers none, memory, nats, jetstream;
// middleware bulkhead, timeout, ratelimit, shed, requestid, validate and
// auth, each with its settings (docs/CONFIG.md) — and of the plug-ins
// registered by the packages the program imports (RegisterBroker,
// RegisterRegistry).
func DefaultFactories() Factories {
	f := builtinFactories()
	addPlugins(&f)
	return f
}

func builtinFactories() Factories {
	return Factories{
		Registries: map[string]RegistryFactory{
			"none":   nil,
			"memory": func(context.Context, *Config, Resources) (registry.Registry, error) { return regmemory.New(), nil },
			"nats":   natsRegistry,
			"static": staticRegistry,
			"dns":    dnsRegistry,
			"srv":    srvRegistry,
		},
		Brokers: map[string]BrokerFactory{
			"none": nil,
			"memory": func(context.Context, *Config, Resources) (broker.Broker, error) {
				return brokermemory.New()
			},
			"nats": func(_ context.Context, _ *Config, res Resources) (broker.Broker, error) {
				return natsbroker.New(res.NATS())
			},
			"jetstream": jetStreamBroker,
		},
		Middleware: maps.Clone(builtinMiddleware),
		needsNATS:  map[string]bool{"registry nats": true, "registry srv": true, "broker nats": true, "broker jetstream": true},
	}
}

func natsRegistry(ctx context.Context, cfg *Config, res Resources) (registry.Registry, error) {
	js, err := jetstream.New(res.NATS())
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

// srvRegistry is NATS $SRV discovery (registry/natssrv): read-only, as
// services announce themselves by answering it.
func srvRegistry(_ context.Context, _ *Config, res Resources) (registry.Registry, error) {
	return natssrv.New(res.NATS())
}

func staticRegistry(_ context.Context, cfg *Config, _ Resources) (registry.Registry, error) {
	ins := make([]registry.Instance, 0, len(cfg.Registry.Static))
	for _, s := range cfg.Registry.Static {
		in := registry.Instance{ID: s.ID, Service: s.Service}
		for _, tr := range slices.Sorted(maps.Keys(s.Endpoints)) {
			in.Endpoints = append(in.Endpoints, registry.Endpoint{Transport: tr, Address: s.Endpoints[tr], TLS: slices.Contains(s.TLS, tr)})
		}
		ins = append(ins, in)
	}
	return static.New(ins...)
}

func dnsRegistry(_ context.Context, cfg *Config, _ Resources) (registry.Registry, error) {
	services := make(map[string][]dns.Target, len(cfg.Registry.DNS))
	for name, ts := range cfg.Registry.DNS {
		for _, t := range ts {
			services[name] = append(services[name], dns.Target{Transport: t.Transport, SRV: t.SRV, Host: t.Host, Port: t.Port, TLS: t.TLS})
		}
	}
	return dns.New(services)
}

func jetStreamBroker(ctx context.Context, cfg *Config, res Resources) (broker.Broker, error) {
	js, err := jetstream.New(res.NATS())
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

// Option configures NewService.
type Option func(*buildOptions)

type buildOptions struct {
	factories Factories
	extra     []ferry.Option
	server    []server.Option
	tracer    []sdktrace.TracerProviderOption
	defaults  func(*Config)
	logOut    io.Writer
}

// WithDefaults changes the defaults Run loads the configuration over
// (Sources.Defaults): a program's own, which every source still overrides.
// NewService, given a loaded configuration, ignores it.
func WithDefaults(f func(*Config)) Option { return func(o *buildOptions) { o.defaults = f } }

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

// WithLogOutput sends the service's logs, the access log among them, to w
// instead of stderr, in the configured format and level (log.format,
// log.level): a file, a buffered or rotating writer, io.Discard. Run makes
// that logger slog's default too.
func WithLogOutput(w io.Writer) Option { return func(o *buildOptions) { o.logOut = w } }

// WithTracerOptions adds TracerProvider options after the ones the
// configuration makes (telemetry.Config.TracerOptions): an exporter the
// configuration cannot name (sdktrace.WithBatcher(vendorExporter)), an
// in-memory one in a test (sdktrace.WithSyncer(tracetest.NewInMemoryExporter())),
// a span processor, span limits.
func WithTracerOptions(opts ...sdktrace.TracerProviderOption) Option {
	return func(o *buildOptions) { o.tracer = append(o.tracer, opts...) }
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
	b := &builder{cfg: cfg, f: bo.factories, logger: newLogger(cfg.Log, bo.logOut)}
	if err := b.check(); err != nil {
		return nil, err
	}
	if err := b.telemetry(bo.tracer); err != nil {
		return nil, err
	}
	srv := b.server(bo.server)
	b.sopts = []ferry.Option{ferry.WithLogger(b.logger), ferry.WithShutdownTimeout(cfg.ShutdownTimeout)}
	if cfg.AdvertiseHost != "" {
		b.sopts = append(b.sopts, ferry.WithAdvertiseHost(cfg.AdvertiseHost))
	}
	gatewayPart := func() error { return b.gatewayPart(srv) }
	for _, part := range []func() error{b.adminServer, b.client, b.http, b.grpc, b.nats, b.registry, gatewayPart, b.broker} {
		if err := part(); err != nil {
			_ = shutdownTel(b.tel)
			return nil, err
		}
	}
	svc := b.service(srv, bo.extra)
	if register != nil {
		register(svc, srv)
	}
	return svc, nil
}

// builder makes a service from a configuration, one part per method.
type builder struct {
	cfg    *Config
	f      Factories
	logger *slog.Logger

	mws           []middleware.Middleware // configured server middleware, telemetry first
	regFactory    RegistryFactory
	brokerFactory BrokerFactory
	natsOn        bool // a transport, the registry or the broker needs NATS

	tel   *telemetry.Telemetry
	adm   *telemetry.Admin
	conn  *fnats.Conn     // the NATS connection, when natsOn
	reg   *sharedRegistry // the registry, made once for registration and client
	lc    *lazyClient     // the service's outgoing client (Client)
	sopts []ferry.Option
}

// problemAt is the *Error for one key.
func (b *builder) problemAt(key, value, msg string) error {
	return &Error{Problems: []Problem{{Key: key, Source: b.cfg.Source(key), Value: value, Message: msg}}}
}

// check resolves the middleware and the registry and broker kinds, and
// reports every problem at once.
func (b *builder) check() error {
	cfg, f := b.cfg, b.f
	var problems []Problem
	problem := func(key, value, msg string) {
		problems = append(problems, Problem{Key: key, Source: cfg.Source(topKey(key)), Value: value, Message: msg})
	}
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
		b.mws = append(b.mws, mw)
	}
	var regOK, brokerOK bool
	if b.regFactory, regOK = f.Registries[cfg.Registry.Kind]; !regOK {
		problem("registry.kind", cfg.Registry.Kind, unknownKind("registry", cfg.Registry.Kind, f.Registries))
	}
	if b.brokerFactory, brokerOK = f.Brokers[cfg.Broker.Kind]; !brokerOK {
		problem("broker.kind", cfg.Broker.Kind, unknownKind("broker", cfg.Broker.Kind, f.Brokers))
	}
	t := cfg.Transports
	b.natsOn = t.NATS.Enabled || f.needsNATS["registry "+cfg.Registry.Kind] || f.needsNATS["broker "+cfg.Broker.Kind]
	if !t.HTTP.Enabled && !t.GRPC.Enabled && !t.NATS.Enabled && !cfg.Gateway.Enabled && (cfg.Broker.Kind == "none" || !brokerOK) {
		problem("transports", "", "no transport is enabled and there is no broker: the service would do nothing")
	}
	if len(problems) > 0 {
		return &Error{Problems: problems}
	}
	return nil
}

// telemetry sets up tracing, metrics and the access log, which run
// outermost of the server middleware.
func (b *builder) telemetry(tracerOpts []sdktrace.TracerProviderOption) error {
	cfg := b.cfg
	if !cfg.Telemetry.Enabled && !cfg.Admin.Enabled {
		return nil
	}
	tc := cfg.Telemetry
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{
		ServiceName: cfg.Service.Name, ServiceVersion: cfg.Service.Version,
		OTLPEndpoint: tc.OTLPEndpoint, OTLPInsecure: tc.OTLPInsecure, OTLPProtocol: tc.OTLPProtocol, Stdout: tc.Stdout,
		Sampler: tc.Sampler, SamplerRatio: tc.SamplerRatio,
		Logger: b.logger, SecretHeaders: tc.SecretHeaders, TracerOptions: tracerOpts,
		GoCollectors: cfg.Admin.Enabled, // /metrics shows the Go runtime and the process too
	})
	if err != nil {
		return &Error{Problems: []Problem{{Key: "telemetry", Source: cfg.Source("telemetry.enabled"), Message: err.Error()}}}
	}
	b.tel = tel
	if cfg.Telemetry.Enabled {
		tm := []middleware.Middleware{tel.Tracing(), tel.Metrics()}
		if cfg.Telemetry.AccessLog {
			tm = append(tm, tel.AccessLog())
		}
		b.mws = append(tm, b.mws...) // outermost: they see what the configured middleware decide
	}
	return nil
}

// server makes the server the endpoints are registered on.
func (b *builder) server(extra []server.Option) *server.Server {
	cfg := b.cfg
	opts := []server.Option{server.WithVersion(cfg.Service.Version), server.WithLogger(b.logger),
		server.WithAdmission(server.Admission{MaxCalls: cfg.Service.Admission.MaxCalls, MaxBytes: cfg.Service.Admission.MaxBytes})}
	if cfg.Service.Description != "" {
		opts = append(opts, server.WithDescription(cfg.Service.Description))
	}
	if j := cfg.Service.JSON; j.DisallowUnknownFields || j.CaseSensitive {
		opts = append(opts, server.WithJSON(codec.NewJSON(codec.JSONOptions{DisallowUnknownFields: j.DisallowUnknownFields, CaseSensitive: j.CaseSensitive})))
	}
	if len(b.mws) > 0 {
		opts = append(opts, server.WithMiddleware(b.mws...))
	}
	return server.New(cfg.Service.Name, append(opts, extra...)...)
}

// admin adds the telemetry providers' flush, first to start and last to
// stop, and the admin server.
func (b *builder) adminServer() error {
	if b.tel == nil {
		return nil
	}
	b.sopts = append(b.sopts, ferry.WithConnection(shutdownComponent(b.tel.Shutdown)))
	if b.cfg.Admin.Enabled {
		b.adm = b.tel.Admin(b.cfg.Admin.Addr)
		b.sopts = append(b.sopts, ferry.WithComponent(&keyedComponent{Component: b.adm, key: "admin.addr", cfg: b.cfg}))
	}
	return nil
}

func (b *builder) http() error {
	t := b.cfg.Transports.HTTP
	if !t.Enabled {
		return nil
	}
	opts := []fhttp.ServerOption{fhttp.WithDefaultTimeout(t.Timeout), fhttp.WithMaxTimeout(t.MaxTimeout)}
	if t.TLS.CertFile != "" {
		tc, err := loadTLS(t.TLS)
		if err != nil {
			return b.problemAt("transports.http.tls.cert_file", t.TLS.CertFile, err.Error())
		}
		opts = append(opts, fhttp.WithTLS(tc))
	}
	b.sopts = append(b.sopts, ferry.WithTransport(&keyed{Transport: fhttp.NewServer(t.Addr, opts...), key: "transports.http.addr", cfg: b.cfg}))
	return nil
}

func (b *builder) grpc() error {
	t := b.cfg.Transports.GRPC
	if !t.Enabled {
		return nil
	}
	opts := []fgrpc.ServerOption{fgrpc.WithDefaultTimeout(t.Timeout), fgrpc.WithMaxTimeout(t.MaxTimeout)}
	if t.TLS.CertFile != "" {
		tc, err := loadTLS(t.TLS)
		if err != nil {
			return b.problemAt("transports.grpc.tls.cert_file", t.TLS.CertFile, err.Error())
		}
		opts = append(opts, fgrpc.WithTLS(tc))
	}
	g := fgrpc.NewServer(t.Addr, opts...)
	if b.adm != nil {
		b.adm.OnDrain(func() { g.SetServing(false) }) // gRPC health follows /readyz
	}
	b.sopts = append(b.sopts, ferry.WithTransport(&keyed{Transport: g, key: "transports.grpc.addr", cfg: b.cfg}))
	return nil
}

// nats adds the NATS connection — to the embedded server when nats.url is
// empty, which then requires the connection's credentials — and the NATS
// transport when enabled.
func (b *builder) nats() error {
	if !b.natsOn {
		return nil
	}
	cfg := b.cfg
	var (
		eo    natsembed.Options
		trust *tls.Config
	)
	if cfg.NATS.URL == "" {
		var err error
		if eo, trust, err = b.embedded(); err != nil {
			return err
		}
	}
	opts, err := natsOptions(cfg)
	if err != nil {
		return err
	}
	opts = append([]nats.Option{nats.Name(cfg.Service.Name)}, opts...)
	if cfg.NATS.URL == "" {
		emb := natsembed.New(eo)
		b.sopts = append(b.sopts, ferry.WithConnection(&keyedComponent{Component: emb, key: "nats.embedded.port", cfg: cfg}))
		if trust != nil {
			opts = append([]nats.Option{nats.Secure(trust)}, opts...)
		}
		b.conn = fnats.ConnectTo(emb.ClientURL, opts...)
	} else {
		b.conn = fnats.Connect(cfg.NATS.URL, opts...)
	}
	b.sopts = append(b.sopts, ferry.WithConnection(&keyedComponent{Component: b.conn, key: "nats.url", cfg: cfg}))
	if b.adm != nil {
		b.adm.AddCheck("nats", b.conn.Check)
	}
	if t := cfg.Transports.NATS; t.Enabled {
		tr := b.conn.Serve(fnats.WithDefaultTimeout(t.Timeout), fnats.WithMaxTimeout(t.MaxTimeout))
		b.sopts = append(b.sopts, ferry.WithTransport(tr))
	}
	return nil
}

// embedded returns the embedded server's options — the service's own
// credentials as its user or token, nats.embedded.users, TLS — and, when it
// serves TLS and nats.tls.ca_file is unset, the TLS configuration of the
// service's own connection to it, which trusts exactly the certificate the
// server presents (the service loaded it itself; no CA or host name needs to
// match the address it connects to, such as 0.0.0.0). With
// nats.tls.ca_file, the connection verifies the server against that CA and
// the embedded host as usual.
func (b *builder) embedded() (natsembed.Options, *tls.Config, error) {
	cfg := b.cfg
	n, e := cfg.NATS, cfg.NATS.Embedded
	var problems []Problem
	problem := func(key, value, msg string) {
		problems = append(problems, Problem{Key: key, Source: cfg.Source(key), Value: value, Message: msg})
	}
	const external = "; use nats.user and nats.password or nats.token with the embedded server, or set nats.url to a NATS server set up for them"
	if n.CredsFile != "" {
		problem("nats.creds_file", n.CredsFile, "the embedded server (nats.url is empty) cannot check JWT credentials"+external)
	}
	if n.NKeyFile != "" {
		problem("nats.nkey_file", n.NKeyFile, "the embedded server (nats.url is empty) cannot check NKeys"+external)
	}
	eo := natsembed.Options{Host: e.Host, Port: e.Port, JetStream: e.JetStream, StoreDir: e.StoreDir, AllowAnonymous: e.AllowAnonymous, Token: n.Token}
	if n.User != "" {
		eo.Users = append(eo.Users, natsembed.User{Name: n.User, Password: n.Password}) // the service: any subject
	}
	if len(e.Users) > 0 && n.User == "" {
		if n.Token != "" {
			problem("nats.embedded.users", "", "cannot be used with nats.token: the embedded server takes users or a token, not both; give the service a user (nats.user, nats.password)")
		} else {
			problem("nats.user", "", "is required with nats.embedded.users: the embedded server then lets in only its users, the service too")
		}
	}
	seen := map[string]bool{n.User: n.User != ""}
	for _, u := range e.Users {
		if seen[u.Name] {
			problem("nats.embedded.users", u.Name, "user listed twice (the service's own is nats.user)")
			continue
		}
		seen[u.Name] = true
		var perms *natsembed.Permissions
		if len(u.Publish.Allow)+len(u.Publish.Deny)+len(u.Subscribe.Allow)+len(u.Subscribe.Deny) > 0 || u.AllowResponses {
			perms = &natsembed.Permissions{
				Publish:        natsembed.SubjectPermission{Allow: u.Publish.Allow, Deny: u.Publish.Deny},
				Subscribe:      natsembed.SubjectPermission{Allow: u.Subscribe.Allow, Deny: u.Subscribe.Deny},
				AllowResponses: u.AllowResponses,
			}
		}
		eo.Users = append(eo.Users, natsembed.User{Name: u.Name, Password: u.Password, Permissions: perms})
	}
	var trust *tls.Config
	if e.TLS.CertFile != "" {
		tc, err := loadTLS(e.TLS)
		if err != nil {
			problem("nats.embedded.tls.cert_file", e.TLS.CertFile, err.Error())
		} else {
			eo.TLS = tc
			if n.TLS.CAFile == "" {
				trust = pinned(tc.Certificates[0])
			}
		}
		if e.TLS.ClientCAFile != "" && n.TLS.CertFile == "" {
			problem("nats.tls.cert_file", "", "is required with nats.embedded.tls.client_ca_file: the service's own connection to its embedded server must present a client certificate that CA signed")
		}
	}
	host := cmp.Or(e.Host, "127.0.0.1")
	if !natsembed.IsLoopback(host) && n.User == "" && n.Token == "" && e.TLS.ClientCAFile == "" && !e.AllowAnonymous {
		problem("nats.embedded.host", e.Host, "the embedded server would let any client that reaches "+host+" read the service's requests: "+
			"set nats.user and nats.password (or nats.token), which it then requires, or nats.embedded.tls with client_ca_file; "+
			"or listen on 127.0.0.1; or set nats.embedded.allow_anonymous: true where only trusted clients reach it")
	}
	if len(problems) > 0 {
		return eo, nil, &Error{Problems: problems}
	}
	return eo, trust, nil
}

// pinned is a client TLS configuration that accepts only a server
// presenting cert (and, by the handshake, holding its key).
func pinned(cert tls.Certificate) *tls.Config {
	want := cert.Certificate[0]
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The usual chain and host name checks are replaced by the pin:
		// VerifyConnection runs even so.
		InsecureSkipVerify: true, //nolint:gosec // pinned below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
				return errors.New("the NATS server does not present the embedded server's certificate (nats.embedded.tls.cert_file)")
			}
			return nil
		},
	}
}

func (b *builder) registry() error {
	if b.regFactory == nil {
		return nil
	}
	cfg, res := b.cfg, Resources{nats: b.conn}
	b.reg = &sharedRegistry{make: func(ctx context.Context) (registry.Registry, error) {
		r, err := b.regFactory(ctx, cfg, res)
		if err != nil {
			return nil, fmt.Errorf("registry.kind = %s (from %s): %w", cfg.Registry.Kind, cfg.Source("registry.kind"), err)
		}
		return r, nil
	}}
	b.sopts = append(b.sopts, ferry.WithRegistryFrom(func(ctx context.Context) (registry.Registrar, error) {
		return b.reg.get(ctx)
	}))
	return nil
}

// client adds the service's outgoing client (Client): made before the
// transports serve, closed after they drained.
func (b *builder) client() error {
	b.lc = &lazyClient{}
	cc := &clientComponent{b: b, lc: b.lc, perSv: map[string][]client.Option{}}
	problem := func(prefix, sourceKey string, err error) error {
		var fe *tlsFileError
		if !errors.As(err, &fe) {
			return err
		}
		key := prefix + ".tls." + fe.key
		return &Error{Problems: []Problem{{Key: key, Source: b.cfg.Source(cmp.Or(sourceKey, key)), Value: fe.file, Message: fe.err.Error()}}}
	}
	var err error
	if cc.opts, err = clientOptions(b.cfg.Client, nil, ""); err != nil {
		return problem("client", "", err)
	}
	for name, per := range b.cfg.Clients {
		if cc.perSv[name], err = clientOptions(b.cfg.Client, &per, name); err != nil {
			// client: passed, so the file is one of clients.<name>.
			return problem("clients["+name+"]", "clients", err)
		}
	}
	b.sopts = append(b.sopts, ferry.WithComponent(cc))
	return nil
}

func (b *builder) broker() error {
	if b.brokerFactory == nil {
		return nil
	}
	cfg, res, tel := b.cfg, Resources{nats: b.conn}, b.tel
	b.sopts = append(b.sopts, ferry.WithBrokerFrom(func(ctx context.Context) (broker.Broker, error) {
		br, err := b.brokerFactory(ctx, cfg, res)
		if err != nil {
			return nil, fmt.Errorf("broker.kind = %s (from %s): %w", cfg.Broker.Kind, cfg.Source("broker.kind"), err)
		}
		if tel != nil && cfg.Telemetry.Enabled {
			br = tel.Broker(br) // producer spans, published and dead-lettered counts
		}
		return br, nil
	}))
	return nil
}

// service makes the Service; the admin server's readiness follows it.
func (b *builder) service(srv *server.Server, extra []ferry.Option) *ferry.Service {
	var svc *ferry.Service
	if b.adm != nil {
		// Transports that can tell they stopped working (the NATS transport
		// whose subscription ended) take the service out of rotation.
		b.adm.AddCheck("transports", func(ctx context.Context) error { return svc.Check(ctx) })
		// Last: at stop, readiness drops before anything drains.
		b.sopts = append(b.sopts, ferry.WithComponent(b.adm.DrainSignal()))
	}
	svc = ferry.New(srv, append(b.sopts, extra...)...)
	clients.Store(svc, b.lc)
	return svc
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

// Check forwards to the component, so Service.Check asks it.
func (k *keyedComponent) Check(ctx context.Context) error {
	if c, ok := k.Component.(ferry.Checker); ok {
		return c.Check(ctx)
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

// NewLogger returns the logger Log describes, writing to stderr; records
// logged with a span's context carry its trace_id and span_id.
func NewLogger(l Log) *slog.Logger { return newLogger(l, os.Stderr) }

// newLogger is NewLogger writing to w (nil: stderr).
func newLogger(l Log, w io.Writer) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level)) // validated by Load
	ho := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, ho)
	if l.Format == "json" {
		h = slog.NewJSONHandler(w, ho)
	}
	return slog.New(telemetry.LogHandler(h)) // trace_id and span_id on records logged with a span's context
}
