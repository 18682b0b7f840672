package natsembed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures an embedded server. The zero value is a plain NATS
// server on 127.0.0.1 at a random free port, without JetStream, without
// authentication, logging nothing.
//
// A server on any other interface must authenticate its clients (Users,
// Token, TLS with verified client certificates, or authentication set by
// Configure) unless AllowAnonymous says otherwise; see [Start].
type Options struct {
	// Host is the interface to listen on. Default "127.0.0.1". A host
	// that is not loopback (127.0.0.0/8, ::1, "localhost") — "0.0.0.0"
	// and "::" included — needs authentication or AllowAnonymous.
	Host string
	// Port is the client port. 0 (or a negative value) picks a random free
	// port; the conventional NATS port is 4222.
	Port int
	// JetStream enables JetStream. Default false.
	JetStream bool
	// StoreDir is the JetStream store directory. Default: a temporary
	// directory, created by Start and removed by Shutdown. A directory
	// given here is kept.
	StoreDir string
	// ServerName names the server (shown by `nats server info` and in
	// JetStream placement). Default: nats-server picks its own ID.
	ServerName string
	// MaxPayload is the largest message, headers included, that clients may
	// publish, in bytes. 0 keeps the nats-server default of 1 MiB.
	MaxPayload int32
	// Cluster makes the server a member of a NATS cluster when its Name is
	// set. Default: no clustering. [StartCluster] starts a whole cluster.
	Cluster ClusterOptions
	// Users may connect with a name and password, each with its own
	// subject permissions. With Users, every client must log in as one of
	// them. Users and Token cannot be combined.
	Users []User
	// Token is the one authentication token clients must present
	// (nats.Token). Default: none.
	Token string
	// TLS serves client connections over TLS (ClientURL then says tls://)
	// with this configuration, which must hold a certificate. With
	// ClientAuth set to tls.RequireAndVerifyClientCert, every client must
	// present a certificate that ClientCAs signed; that counts as
	// authentication. The handshake must finish within 5 seconds. nil: no
	// TLS.
	TLS *tls.Config
	// AllowAnonymous lets a server on a non-loopback Host run without
	// authentication. Any client that reaches it can then subscribe to any
	// subject — join a service's queue group and read its requests,
	// Authorization headers included — so set it only on a network that
	// only trusted clients can reach. Default false.
	AllowAnonymous bool
	// Configure, if set, is called with the nats-server options last, after
	// everything above has been applied, for what this package does not
	// wrap: accounts, NKey users, a JWT operator and resolver, a no-auth
	// user, the monitoring port, leaf nodes, route authentication. Start
	// then checks the result: authentication set here (Users, Nkeys,
	// Username, Authorization, TrustedOperators or TrustedKeys, or
	// CustomClientAuthentication) satisfies the rule for non-loopback
	// hosts; accounts alone do not, since nats-server lets clients without
	// credentials in as before. Listeners added here (monitoring, leaf
	// nodes, websocket, MQTT) are the caller's to protect.
	Configure func(*server.Options)
	// Logger receives the server's log lines: notices at Info, warnings at
	// Warn, errors at Error, debug lines at Debug (only when the logger is
	// enabled for Debug). nil logs nothing.
	Logger *slog.Logger
}

// readyPoll is how long one readiness probe waits; Start repeats it until
// the server is ready, it reports a fatal error, or ctx is done.
const readyPoll = 25 * time.Millisecond

// Server is an in-process NATS server. Create it with [Start] or [New];
// its methods are safe for concurrent use.
type Server struct {
	opts Options

	mu      sync.Mutex
	ns      *server.Server
	tempDir string
	started bool
	done    chan struct{} // closed once shutdown has finished
	stopErr error         // set before done is closed
}

// New returns a Server configured by opts that is not yet running; call
// [Server.Start]. It does nothing else, so a Server can be built while
// wiring and started later with the other components.
func New(opts Options) *Server {
	return &Server{opts: opts}
}

// Start starts an embedded NATS server configured by opts and returns once
// it accepts client connections. ctx bounds the wait: if the server is not
// ready when ctx is done, it is shut down and ctx's error returned. A port
// already in use is an error naming the address.
//
// Start refuses, before listening, to serve clients or cluster routes on an
// interface other than loopback without authentication: with the NATS
// transport, any client that can subscribe may join a service's queue
// group and receive its requests. Configure Users, Token or TLS with
// verified client certificates (routes: authentication in Configure), or
// set AllowAnonymous.
func Start(ctx context.Context, opts Options) (*Server, error) {
	s := New(opts)
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Start starts the server and waits until it accepts client connections,
// at most until ctx is done. It may be called once; after a failed Start
// the Server is unusable.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.done != nil:
		return errors.New("natsembed: server already shut down")
	case s.started:
		return errors.New("natsembed: server already started")
	}
	s.started = true

	host := s.opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := max(s.opts.Port, 0)
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if port == 0 {
		port = server.RANDOM_PORT
	}

	storeDir := s.opts.StoreDir
	if s.opts.JetStream && storeDir == "" {
		dir, err := os.MkdirTemp("", "natsembed-*")
		if err != nil {
			return fmt.Errorf("natsembed: create JetStream store directory: %w", err)
		}
		s.tempDir, storeDir = dir, dir
	}

	sopts := &server.Options{
		ServerName: s.opts.ServerName,
		Host:       host,
		Port:       port,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: s.opts.MaxPayload,
		JetStream:  s.opts.JetStream,
		StoreDir:   storeDir,
	}
	err := s.opts.Cluster.apply(sopts, host)
	if err == nil {
		err = s.opts.applySecurity(sopts)
	}
	if err == nil && s.opts.Configure != nil {
		s.opts.Configure(sopts)
		addr = net.JoinHostPort(sopts.Host, strconv.Itoa(max(sopts.Port, 0)))
	}
	if err == nil {
		if err := checkExposure(sopts, s.opts.AllowAnonymous); err != nil {
			s.removeTemp()
			return err
		}
	}
	var ns *server.Server
	if err == nil {
		ns, err = server.NewServer(sopts)
	}
	if err != nil {
		s.removeTemp()
		return fmt.Errorf("natsembed: configure nats-server on %s: %w", addr, err)
	}
	logs := &logAdapter{l: s.opts.Logger}
	debug := s.opts.Logger != nil && s.opts.Logger.Enabled(ctx, slog.LevelDebug)
	ns.SetLoggerV2(logs, debug, false, false)

	// Start sets up the listener before it returns; a bind failure is
	// reported only through the logger's Fatalf, which logAdapter records.
	ns.Start()
	for {
		if msg := logs.fatalMsg(); msg != "" {
			s.abort(ns)
			return fmt.Errorf("natsembed: start nats-server on %s: %s", addr, msg)
		}
		if ns.ReadyForConnections(readyPoll) {
			break
		}
		if err := ctx.Err(); err != nil {
			s.abort(ns)
			return fmt.Errorf("natsembed: nats-server on %s not ready: %w", addr, err)
		}
	}
	s.ns = ns
	return nil
}

// abort shuts down a server that failed to start. s.mu is held.
func (s *Server) abort(ns *server.Server) {
	ns.Shutdown()
	ns.WaitForShutdown()
	s.removeTemp()
}

func (s *Server) removeTemp() error {
	if s.tempDir == "" {
		return nil
	}
	err := os.RemoveAll(s.tempDir)
	s.tempDir = ""
	if err != nil {
		return fmt.Errorf("natsembed: remove JetStream store: %w", err)
	}
	return nil
}

// ClientURL returns the URL clients connect to, such as
// "nats://127.0.0.1:41234" — "tls://127.0.0.1:41234" when the server
// serves TLS, so that nats.go does the TLS handshake — or "" if the server
// is not running. Its host is the one listened on: with "0.0.0.0" it is
// "nats://0.0.0.0:4222", which connects to the local machine.
func (s *Server) ClientURL() string {
	if ns := s.NATS(); ns != nil {
		return ns.ClientURL()
	}
	return ""
}

// Addr returns the client listener's address, or nil if the server is not
// running.
func (s *Server) Addr() net.Addr {
	if ns := s.NATS(); ns != nil {
		return ns.Addr()
	}
	return nil
}

// NATS returns the underlying nats-server, for what this package does not
// wrap (monitoring, account setup, JetStream inspection). It is nil before
// a successful Start.
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ns
}

// Shutdown stops the server, closing client connections, waits until it
// has stopped, and removes the temporary JetStream store if Start created
// one. It is safe to call more than once and before Start.
func (s *Server) Shutdown() {
	<-s.shutdown()
}

// Stop is Shutdown bounded by ctx, so the Server can be stopped like any
// other lifecycle component. If ctx is done first Stop returns ctx's error
// while the shutdown goes on in the background. Otherwise it returns the
// error, if any, of removing the temporary store.
func (s *Server) Stop(ctx context.Context) error {
	done := s.shutdown()
	select {
	case <-done:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.stopErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) shutdown() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return s.done
	}
	done := make(chan struct{})
	s.done = done
	ns := s.ns
	go func() {
		if ns != nil {
			ns.Shutdown()
			ns.WaitForShutdown()
		}
		s.mu.Lock()
		s.stopErr = s.removeTemp()
		s.mu.Unlock()
		close(done)
	}()
	return done
}

// logAdapter routes nats-server logs to a slog.Logger and remembers the
// first fatal message, which is how nats-server reports a failed start.
type logAdapter struct {
	l *slog.Logger

	mu    sync.Mutex
	fatal string
}

var _ server.Logger = (*logAdapter)(nil)

func (a *logAdapter) fatalMsg() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fatal
}

func (a *logAdapter) log(level slog.Level, format string, v []any) {
	if a.l == nil {
		return
	}
	ctx := context.Background() // log lines of the server itself, not of a request
	if !a.l.Enabled(ctx, level) {
		return
	}
	a.l.Log(ctx, level, fmt.Sprintf(format, v...), slog.String("component", "nats-server"))
}

func (a *logAdapter) Noticef(format string, v ...any) { a.log(slog.LevelInfo, format, v) }
func (a *logAdapter) Warnf(format string, v ...any)   { a.log(slog.LevelWarn, format, v) }
func (a *logAdapter) Errorf(format string, v ...any)  { a.log(slog.LevelError, format, v) }
func (a *logAdapter) Debugf(format string, v ...any)  { a.log(slog.LevelDebug, format, v) }
func (a *logAdapter) Tracef(format string, v ...any)  { a.log(slog.LevelDebug-4, format, v) }

func (a *logAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.mu.Lock()
	if a.fatal == "" {
		a.fatal = msg
	}
	a.mu.Unlock()
	a.log(slog.LevelError, "%s", []any{msg})
}
