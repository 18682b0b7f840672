package config

import (
	"time"

	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
)

// Config is a Ferry service's whole configuration. Every field has a key
// (its mapstructure tags joined with dots, e.g. "transports.http.addr"), an
// environment variable (FERRY_ + the key upper-cased with dots as
// underscores, e.g. FERRY_TRANSPORTS_HTTP_ADDR) and a default (Default).
// docs/CONFIG.md lists them all; a test keeps it in step with this type.
type Config struct {
	Service    Service                 `mapstructure:"service"`
	Transports Transports              `mapstructure:"transports"`
	NATS       NATS                    `mapstructure:"nats"`
	Registry   Registry                `mapstructure:"registry"`
	Broker     Broker                  `mapstructure:"broker"`
	Middleware []Middleware            `mapstructure:"middleware" doc:"server middleware by name with settings, outermost first (recovery is always on); file only" validate:"dive"`
	Log        Log                     `mapstructure:"log"`
	Telemetry  Telemetry               `mapstructure:"telemetry"`
	Admin      Admin                   `mapstructure:"admin"`
	Gateway    Gateway                 `mapstructure:"gateway"`
	Client     Calls                   `mapstructure:"client"`
	Clients    map[string]ServiceCalls `mapstructure:"clients" doc:"per called service (by name): transports, timeout, retry, tls, grpc_compression and idempotent endpoints of calls to it; a key left out keeps client's (see Calling other services below); file only" validate:"dive,keys,service_name,endkeys"`
	// ShutdownTimeout bounds the graceful drain.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout" doc:"how long a stop may drain in-flight work" validate:"gt=0"`
	// AdvertiseHost replaces an unspecified listen host in registered
	// addresses.
	AdvertiseHost string `mapstructure:"advertise_host" doc:"host put into registered addresses whose listener has none (default: the first non-loopback IPv4)"`

	sources map[string]string // key → where its value came from
}

// Calls configures the client the service calls other services with
// (config.Client).
type Calls struct {
	Transports      []string      `mapstructure:"transports" doc:"transports outgoing calls may use, most preferred first" validate:"min=1,dive,oneof=nats grpc http"`
	Timeout         time.Duration `mapstructure:"timeout" doc:"deadline of an outgoing call whose context has none" validate:"gt=0"`
	Retry           Retry         `mapstructure:"retry"`
	TLS             ClientTLS     `mapstructure:"tls"`
	GRPCCompression string        `mapstructure:"grpc_compression" doc:"compress the requests of gRPC calls: gzip (servers answer in kind), or identity for none (the default); HTTP and NATS calls are not compressed" validate:"omitempty,oneof=gzip identity"`
}

// Gateway configures the API gateway (package gateway) a service serves
// besides its endpoints; `ferry gateway` runs one that serves only that.
type Gateway struct {
	Enabled     bool           `mapstructure:"enabled" doc:"serve the API gateway: POST /<service>/<Endpoint> for every service of the registry (without one, every service NATS $SRV discovery finds), through config.Client"`
	Addr        string         `mapstructure:"addr" doc:"gateway listen address, host:port" validate:"required_if=Enabled true,omitempty,listen_addr"`
	MaxBody     int64          `mapstructure:"max_body" doc:"largest request body forwarded, in bytes; -1: no limit" validate:"gte=-1,ne=0"`
	Timeout     time.Duration  `mapstructure:"timeout" doc:"deadline of a request without Ferry-Timeout-Ms" validate:"gt=0"`
	MaxTimeout  time.Duration  `mapstructure:"max_timeout" doc:"longest deadline a request may ask for" validate:"gt=0"`
	DropHeaders []string       `mapstructure:"drop_headers" doc:"request headers not forwarded to services, e.g. Authorization once the edge checked it (hop-by-hop ones and User-Agent, Accept… never are)"`
	TLS         TLS            `mapstructure:"tls"`
	Routes      []GatewayRoute `mapstructure:"routes" doc:"rules: [{service, endpoint, path, hide, pin}] to rename, hide or pin routes; file only" validate:"dive"`
}

// GatewayRoute is one rule of the gateway's routes (gateway.Rule).
type GatewayRoute struct {
	Service  string `mapstructure:"service" validate:"required,service_name"`
	Endpoint string `mapstructure:"endpoint"`
	Path     string `mapstructure:"path" validate:"omitempty,startswith=/"`
	Hide     bool   `mapstructure:"hide"`
	Pin      bool   `mapstructure:"pin"`
}

// ServiceCalls configures calls to one service; every key left out (zero)
// keeps the value of client.
type ServiceCalls struct {
	Transports      []string      `mapstructure:"transports" doc:"transports calls to the service may use, most preferred first" validate:"omitempty,dive,oneof=nats grpc http"`
	Timeout         time.Duration `mapstructure:"timeout" doc:"deadline of a call whose context has none" validate:"gte=0"`
	Retry           Retry         `mapstructure:"retry"`
	TLS             ClientTLS     `mapstructure:"tls"`
	GRPCCompression string        `mapstructure:"grpc_compression" doc:"compress the requests of gRPC calls to the service: gzip, or identity for none" validate:"omitempty,oneof=gzip identity"`
	Idempotent      []string      `mapstructure:"idempotent" doc:"endpoints safe to call twice: calls the server may have processed are retried too (endpoints the service registers as idempotent need not be listed)"`
}

// Retry is the retry policy of outgoing calls (middleware.RetryPolicy).
// Calls that were not processed (refused, no instance reached, overload)
// are retried; others only on idempotent endpoints.
type Retry struct {
	MaxAttempts    int           `mapstructure:"max_attempts" doc:"attempts per call, the first included; 1 disables retries" validate:"gte=0,lte=5"`
	BaseBackoff    time.Duration `mapstructure:"base_backoff" doc:"back-off before the first retry is drawn from [0, base); it doubles per retry" validate:"gte=0"`
	MaxBackoff     time.Duration `mapstructure:"max_backoff" doc:"longest back-off" validate:"gte=0"`
	AttemptTimeout time.Duration `mapstructure:"attempt_timeout" doc:"bounds each attempt within the call's deadline, so a server that died without a word is retried in time; 0: none" validate:"gte=0"`
}

// ClientTLS configures TLS to the instances that serve it (registered
// with TLS, or https:// addresses).
type ClientTLS struct {
	CAFile     string `mapstructure:"ca_file" doc:"PEM CA certificates to trust for servers (default: the system's)" validate:"omitempty,file"`
	CertFile   string `mapstructure:"cert_file" doc:"PEM client certificate presented to servers that require one (mutual TLS)" validate:"required_with=KeyFile,omitempty,file"`
	KeyFile    string `mapstructure:"key_file" doc:"PEM private key of cert_file" validate:"required_with=CertFile,omitempty,file"`
	ServerName string `mapstructure:"server_name" doc:"name to verify in server certificates (default: the host dialled)"`
}

// Service names the service.
type Service struct {
	Name        string    `mapstructure:"name" doc:"service name: a letter, then letters, digits, '-' or '_'" validate:"required,service_name"`
	Version     string    `mapstructure:"version" doc:"semantic version" validate:"required,semver"`
	Description string    `mapstructure:"description" doc:"shown by discovery tools such as nats micro info"`
	JSON        JSON      `mapstructure:"json"`
	Admission   Admission `mapstructure:"admission"`
}

// Admission bounds the calls decoded and run at once (server.Admission).
type Admission struct {
	MaxCalls int   `mapstructure:"max_calls" doc:"calls admitted at once across transports; more wait for room until their deadline; -1: no bound" validate:"gte=-1"`
	MaxBytes int64 `mapstructure:"max_bytes" doc:"request bytes admitted at once (requests of 64 KiB or less are not counted); -1: no bound" validate:"gte=-1"`
}

// JSON says how strictly JSON requests are decoded (codec.JSONOptions).
type JSON struct {
	DisallowUnknownFields bool `mapstructure:"disallow_unknown_fields" doc:"refuse request fields the endpoint's type does not have (default: ignored)"`
	CaseSensitive         bool `mapstructure:"case_sensitive" doc:"refuse keys that match a field's JSON name only when case is ignored (default: accepted)"`
}

// Transports says which transports serve the service.
type Transports struct {
	HTTP HTTP          `mapstructure:"http"`
	GRPC GRPC          `mapstructure:"grpc"`
	NATS NATSTransport `mapstructure:"nats"`
}

// HTTP configures the HTTP transport.
type HTTP struct {
	Enabled    bool          `mapstructure:"enabled" doc:"serve over HTTP"`
	Addr       string        `mapstructure:"addr" doc:"listen address, host:port" validate:"required_if=Enabled true,omitempty,listen_addr"`
	Timeout    time.Duration `mapstructure:"timeout" doc:"deadline of a call that carries none (no Ferry-Timeout-Ms)" validate:"gt=0"`
	MaxTimeout time.Duration `mapstructure:"max_timeout" doc:"longest deadline a caller may ask for; longer ones are cut to it" validate:"gt=0"`
	TLS        TLS           `mapstructure:"tls"`
}

// GRPC configures the gRPC transport.
type GRPC struct {
	Enabled    bool          `mapstructure:"enabled" doc:"serve over gRPC"`
	Addr       string        `mapstructure:"addr" doc:"listen address, host:port" validate:"required_if=Enabled true,omitempty,listen_addr"`
	Timeout    time.Duration `mapstructure:"timeout" doc:"deadline of a call that carries none (no grpc-timeout)" validate:"gt=0"`
	MaxTimeout time.Duration `mapstructure:"max_timeout" doc:"longest deadline a caller may ask for; longer ones are cut to it" validate:"gt=0"`
	TLS        TLS           `mapstructure:"tls"`
}

// TLS names a certificate and key; both or neither. With ClientCAFile
// too, clients must present a certificate it signed (mutual TLS).
type TLS struct {
	CertFile     string `mapstructure:"cert_file" doc:"PEM certificate; with key_file, serve TLS" validate:"required_with=KeyFile,omitempty,file"`
	KeyFile      string `mapstructure:"key_file" doc:"PEM private key of cert_file" validate:"required_with=CertFile,omitempty,file"`
	ClientCAFile string `mapstructure:"client_ca_file" doc:"PEM CA certificates; with cert_file, require client certificates they signed (mutual TLS)" validate:"excluded_without=CertFile,omitempty,file"`
}

// NATSTransport configures the NATS transport.
type NATSTransport struct {
	Enabled    bool          `mapstructure:"enabled" doc:"serve over NATS (subjects <service>.<Endpoint>, queue group <service>)"`
	Timeout    time.Duration `mapstructure:"timeout" doc:"deadline of a call that carries none (no Ferry-Timeout-Ms)" validate:"gt=0"`
	MaxTimeout time.Duration `mapstructure:"max_timeout" doc:"longest deadline a caller may ask for; longer ones are cut to it" validate:"gt=0"`
}

// NATS is the service's NATS connection, shared by the NATS transport, the
// NATS registry and the NATS brokers.
type NATS struct {
	URL string `mapstructure:"url" doc:"NATS server URL(s), comma-separated; empty starts an embedded server" validate:"omitempty,nats_urls"`
	// At most one way to authenticate.
	User      string   `mapstructure:"user" doc:"user name, with password; an embedded server requires them (this user may use any subject)" validate:"required_with=Password,excluded_with=Token CredsFile NKeyFile"`
	Password  string   `mapstructure:"password" doc:"password of user (prefer the environment variable to a file)" validate:"required_with=User"`
	Token     string   `mapstructure:"token" doc:"authentication token; an embedded server requires it" validate:"excluded_with=CredsFile NKeyFile"`
	CredsFile string   `mapstructure:"creds_file" doc:"credentials file (JWT and NKey seed), as nsc writes for a user; needs nats.url (an external server)" validate:"excluded_with=NKeyFile,omitempty,file"`
	NKeyFile  string   `mapstructure:"nkey_file" doc:"NKey seed file of the user; needs nats.url (an external server)" validate:"omitempty,file"`
	TLS       NATSTLS  `mapstructure:"tls"`
	Embedded  Embedded `mapstructure:"embedded"`
}

// NATSTLS configures TLS to the NATS server; a tls:// URL turns it on too.
type NATSTLS struct {
	CAFile   string `mapstructure:"ca_file" doc:"PEM CA certificates to trust for the NATS server (default: the system's; for an embedded server, exactly its certificate); sets TLS on" validate:"omitempty,file"`
	CertFile string `mapstructure:"cert_file" doc:"PEM client certificate, for servers that verify clients (an embedded one with tls.client_ca_file)" validate:"required_with=KeyFile,omitempty,file"`
	KeyFile  string `mapstructure:"key_file" doc:"PEM private key of cert_file" validate:"required_with=CertFile,omitempty,file"`
}

// Embedded configures the embedded NATS server. It requires the
// credentials the service's own connection has (nats.user and
// nats.password, or nats.token): the service's user may do anything, Users
// are other clients with their own permissions. Beyond loopback it refuses
// to start without authentication unless AllowAnonymous.
type Embedded struct {
	Host           string         `mapstructure:"host" doc:"interface the embedded server listens on; beyond loopback (0.0.0.0, a LAN address) it needs nats.user and nats.password, nats.token or tls.client_ca_file, or allow_anonymous"`
	Port           int            `mapstructure:"port" doc:"client port of the embedded server; 0 picks a free one" validate:"gte=0,lte=65535"`
	JetStream      bool           `mapstructure:"jetstream" doc:"enable JetStream on the embedded server (the nats registry and jetstream broker need it)"`
	StoreDir       string         `mapstructure:"store_dir" doc:"JetStream store directory; empty: a temporary one, removed at exit"`
	AllowAnonymous bool           `mapstructure:"allow_anonymous" doc:"let clients without credentials use an embedded server on a non-loopback host: any of them could read the service's requests, so only where only trusted clients reach it"`
	TLS            TLS            `mapstructure:"tls"`
	Users          []EmbeddedUser `mapstructure:"users" doc:"other clients of the embedded server: name, password (or its bcrypt hash), publish and subscribe {allow, deny} subject lists, allow_responses; needs nats.user; file only" validate:"dive"`
}

// EmbeddedUser is a client of the embedded server other than the service.
// Without publish and subscribe lists it may use any subject; an empty
// allow list allows what deny does not name.
type EmbeddedUser struct {
	Name           string              `mapstructure:"name" validate:"required"`
	Password       string              `mapstructure:"password" validate:"required"` // or its bcrypt hash
	Publish        PublishPermission   `mapstructure:"publish"`
	Subscribe      SubscribePermission `mapstructure:"subscribe"`
	AllowResponses bool                `mapstructure:"allow_responses"` // may reply to requests it received
}

// PublishPermission allows and denies subjects to publish to, wildcards
// included.
type PublishPermission struct {
	Allow []string `mapstructure:"allow" validate:"dive,nats_subject"`
	Deny  []string `mapstructure:"deny" validate:"dive,nats_subject"`
}

// SubscribePermission allows and denies subjects to subscribe to,
// wildcards included; an entry may name a queue group after a space.
type SubscribePermission struct {
	Allow []string `mapstructure:"allow" validate:"dive,nats_subject_queue"`
	Deny  []string `mapstructure:"deny" validate:"dive,nats_subject_queue"`
}

// Registry selects and configures the service registry.
type Registry struct {
	Kind   string                 `mapstructure:"kind" doc:"none, memory, nats, srv (NATS $SRV discovery, read-only), static, dns, or a plug-in's name" validate:"required"`
	NATS   RegistryNATS           `mapstructure:"nats"`
	Static []StaticInstance       `mapstructure:"static" doc:"the instances of the static registry: [{service, id, endpoints: {transport: address}, tls: [transports served with TLS]}]; file only" validate:"dive"`
	DNS    map[string][]DNSTarget `mapstructure:"dns" doc:"service name → targets of the dns registry: [{transport, srv, or host and port, tls}]; file only" validate:"dive,dive"`
	// Settings are a plug-in registry's (RegisterRegistry), checked by it.
	Settings map[string]any `mapstructure:"settings" doc:"settings of a plug-in registry (registry.kind names it; see Plug-ins below)"`
}

// RegistryNATS configures the NATS (JetStream key-value) registry.
type RegistryNATS struct {
	Bucket    string        `mapstructure:"bucket" doc:"key-value bucket" validate:"required"`
	TTL       time.Duration `mapstructure:"ttl" doc:"how long an instance stays registered after its last heartbeat" validate:"gte=1s"`
	Heartbeat time.Duration `mapstructure:"heartbeat" doc:"how often an instance is put again; 0 means a third of the TTL" validate:"gte=0"`
	Replicas  int           `mapstructure:"replicas" doc:"bucket replicas on a NATS cluster" validate:"gte=1,lte=5"`
}

// StaticInstance is one instance of the static registry.
type StaticInstance struct {
	Service   string            `mapstructure:"service" validate:"required"`
	ID        string            `mapstructure:"id" validate:"required"`
	Endpoints map[string]string `mapstructure:"endpoints" validate:"required,min=1"`      // transport → address
	TLS       []string          `mapstructure:"tls" validate:"dive,oneof=http grpc nats"` // transports it serves with TLS
}

// DNSTarget is where one transport of a service is found in DNS.
type DNSTarget struct {
	Transport string `mapstructure:"transport" validate:"required,oneof=http grpc nats"`
	SRV       string `mapstructure:"srv"`
	Host      string `mapstructure:"host"`
	Port      int    `mapstructure:"port" validate:"gte=0,lte=65535"`
	TLS       bool   `mapstructure:"tls"` // the transport serves TLS: dial it with TLS
}

// Broker selects and configures the broker.
type Broker struct {
	Kind      string          `mapstructure:"kind" doc:"none, memory, nats, jetstream, or a plug-in's name" validate:"required"`
	JetStream BrokerJetStream `mapstructure:"jetstream"`
	// Settings are a plug-in broker's (RegisterBroker), checked by it.
	Settings map[string]any `mapstructure:"settings" doc:"settings of a plug-in broker (broker.kind names it; see Plug-ins below)"`
}

// BrokerJetStream configures the JetStream broker.
type BrokerJetStream struct {
	Streams            []Stream `mapstructure:"streams" doc:"streams to create or update at start; file only" validate:"dive"`
	Prefetch           int      `mapstructure:"prefetch" doc:"messages each subscription fetches ahead of its handlers" validate:"gte=1"`
	DeadLetterStream   bool     `mapstructure:"dead_letter_stream" doc:"provision the FERRY_DEAD_LETTERS stream on dlq.>"`
	DeadLetterReplicas int      `mapstructure:"dead_letter_replicas" doc:"replicas of the dead-letter stream" validate:"gte=1,lte=5"`
}

// Stream is a JetStream stream to provision.
type Stream struct {
	Name       string        `mapstructure:"name" validate:"required"`
	Subjects   []string      `mapstructure:"subjects" validate:"required,min=1"`
	Replicas   int           `mapstructure:"replicas" validate:"gte=0,lte=5"`
	MaxAge     time.Duration `mapstructure:"max_age" validate:"gte=0"`
	Duplicates time.Duration `mapstructure:"duplicates" validate:"gte=0"`
	Storage    string        `mapstructure:"storage" validate:"omitempty,oneof=file memory"`
}

// Middleware is one server middleware by name.
type Middleware struct {
	Name     string         `mapstructure:"name" validate:"required"`
	Settings map[string]any `mapstructure:"settings"`
}

// Log configures logging.
type Log struct {
	Level  string `mapstructure:"level" doc:"debug, info, warn or error" validate:"oneof=debug info warn error"`
	Format string `mapstructure:"format" doc:"text or json" validate:"oneof=text json"`
}

// Telemetry configures tracing, metrics and access logs (package
// telemetry). Traces leave the process only with an OTLP endpoint (here or
// in OTEL_EXPORTER_OTLP_ENDPOINT) or stdout; metrics are served on the
// admin port.
type Telemetry struct {
	Enabled       bool     `mapstructure:"enabled" doc:"trace, measure and log every call and event"`
	OTLPEndpoint  string   `mapstructure:"otlp_endpoint" doc:"OTLP/HTTP trace endpoint: host:port (plain HTTP on loopback) or an http(s):// URL, /v1/traces added when missing; empty: OTEL_EXPORTER_OTLP_* env, if set"`
	OTLPInsecure  bool     `mapstructure:"otlp_insecure" doc:"send OTLP over plain HTTP to a host:port endpoint that is not loopback"`
	OTLPProtocol  string   `mapstructure:"otlp_protocol" doc:"http/protobuf (port 4318) or grpc (OTLP/gRPC, port 4317)" validate:"oneof=http/protobuf grpc"`
	Stdout        bool     `mapstructure:"stdout" doc:"write spans as JSON to stdout"`
	Sampler       string   `mapstructure:"sampler" doc:"an OTEL_TRACES_SAMPLER name; empty: OTEL_TRACES_SAMPLER, else parentbased_always_on" validate:"omitempty,oneof=always_on always_off traceidratio parentbased_always_on parentbased_always_off parentbased_traceidratio"`
	SamplerRatio  float64  `mapstructure:"sampler_ratio" doc:"ratio for the traceidratio samplers" validate:"gte=0,lte=1"`
	AccessLog     bool     `mapstructure:"access_log" doc:"one log line per call and event"`
	SecretHeaders []string `mapstructure:"secret_headers" doc:"metadata keys never logged, besides authorization, cookie, x-api-key and the like"`
}

// Admin configures the admin HTTP server: /metrics, /livez, /readyz.
type Admin struct {
	Enabled bool   `mapstructure:"enabled" doc:"serve /metrics (calls, events, Go runtime and process), /livez and /readyz"`
	Addr    string `mapstructure:"addr" doc:"admin listen address, host:port" validate:"required_if=Enabled true,omitempty,listen_addr"`
}

// Default returns the configuration used where no source sets a key: HTTP
// on :8080, gRPC on :9090, NATS on an embedded server (port 4222, with
// JetStream), no registry, no broker, info logs as text. Service.Name has
// no default.
func Default() Config {
	return Config{
		Service: Service{Version: "0.0.0", Admission: Admission{MaxCalls: server.DefaultMaxCalls, MaxBytes: server.DefaultMaxBytes}},
		Transports: Transports{
			HTTP: HTTP{Enabled: true, Addr: ":8080", Timeout: transport.DefaultTimeout, MaxTimeout: transport.DefaultMaxTimeout},
			GRPC: GRPC{Enabled: true, Addr: ":9090", Timeout: transport.DefaultTimeout, MaxTimeout: transport.DefaultMaxTimeout},
			NATS: NATSTransport{Enabled: true, Timeout: transport.DefaultTimeout, MaxTimeout: transport.DefaultMaxTimeout},
		},
		NATS: NATS{Embedded: Embedded{Host: "127.0.0.1", Port: 4222, JetStream: true}},
		Registry: Registry{
			Kind: "none",
			NATS: RegistryNATS{Bucket: "ferry_registry", TTL: 10 * time.Second, Replicas: 1},
		},
		Broker: Broker{
			Kind:      "none",
			JetStream: BrokerJetStream{Prefetch: 64, DeadLetterStream: true, DeadLetterReplicas: 1},
		},
		Log:       Log{Level: "info", Format: "text"},
		Telemetry: Telemetry{Enabled: true, AccessLog: true, OTLPProtocol: "http/protobuf"},
		Admin:     Admin{Enabled: true, Addr: ":9464"},
		Gateway:   Gateway{Addr: ":8000", MaxBody: 4 << 20, Timeout: 30 * time.Second, MaxTimeout: 5 * time.Minute},
		Client: Calls{Transports: []string{"nats", "grpc", "http"}, Timeout: 10 * time.Second,
			Retry: Retry{MaxAttempts: 5, BaseBackoff: 25 * time.Millisecond, MaxBackoff: time.Second}},
		ShutdownTimeout: 15 * time.Second,
	}
}

// Source returns where key's value came from: "flag --x", "env NAME",
// "file PATH" or "default". Keys are as in docs/CONFIG.md.
func (c *Config) Source(key string) string {
	if s, ok := c.sources[key]; ok {
		return s
	}
	return "default"
}
