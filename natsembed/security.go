package natsembed

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// User is a client of the embedded server that logs in with a name and a
// password (nats.UserInfo in nats.go, nats.user and nats.password in
// Ferry's configuration).
//
// User, Permissions and SubjectPermission are this package's own small
// types rather than nats-server's server.User and server.Permissions: they
// hold the common case — a name, a password, allow and deny lists — as
// plain values whose zero value means "no restriction", without the
// pointers and response-limit tuning of nats-server's types, and they keep
// nats-server's API out of a service's configuration code. Everything else
// nats-server can do (NKey users, accounts, connection types, response
// limits) is one [Options.Configure] away, on server.Options directly.
type User struct {
	// Name is the user name.
	Name string
	// Password is the password, in clear or as a bcrypt hash ("$2a$…", as
	// `nats server passwd` makes one), so that a file need not hold it in
	// clear. It may not be empty.
	Password string
	// Permissions limits the subjects the user may publish and subscribe
	// to. nil: any subject.
	Permissions *Permissions
}

// Permissions are a user's subject permissions, as in a nats-server
// configuration file. docs/PRODUCTION.md lists the least-privilege
// permissions of a Ferry service and of its callers.
type Permissions struct {
	// Publish are the subjects the user may publish to.
	Publish SubjectPermission
	// Subscribe are the subjects the user may subscribe to; an entry may
	// name a queue group after a space ("orders.* orders").
	Subscribe SubjectPermission
	// AllowResponses lets the user publish one reply to the reply subject
	// of each request it received, within two minutes, whatever Publish
	// says — a service can answer callers' inboxes without publish rights
	// on _INBOX.>. With AllowResponses and no Publish.Allow, the user may
	// publish nothing but those replies (nats-server's allow_responses).
	AllowResponses bool
}

// SubjectPermission allows and denies subjects, wildcards included
// ("orders.*", "$SRV.>"). An empty Allow allows every subject Deny does not
// name; Deny wins over Allow. The zero value allows everything.
type SubjectPermission struct {
	Allow []string
	Deny  []string
}

// IsLoopback reports whether host names the loopback interface only:
// an address in 127.0.0.0/8, ::1 (bracketed or not) or "localhost". "",
// "0.0.0.0" and "::" are not: they listen on every interface (Start
// replaces an empty [Options.Host] by 127.0.0.1 before it checks).
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// tlsTimeout is how long, in seconds, a client has to finish the TLS
// handshake: nats-server's 2 s default, widened for busy machines while
// still bounding connections that never finish.
const tlsTimeout = 5

// applySecurity sets the authentication and TLS fields of opts.
func (o Options) applySecurity(opts *server.Options) error {
	if o.Token != "" && len(o.Users) > 0 {
		return errors.New("natsembed: Token and Users cannot be combined: nats-server ignores the token when it has users; give the token's holder a user")
	}
	opts.Authorization = o.Token
	seen := make(map[string]bool, len(o.Users))
	for i, u := range o.Users {
		switch {
		case u.Name == "":
			return fmt.Errorf("natsembed: Users[%d] has no name", i)
		case u.Password == "":
			return fmt.Errorf("natsembed: user %q has no password", u.Name)
		case seen[u.Name]:
			return fmt.Errorf("natsembed: user %q is listed twice", u.Name)
		}
		seen[u.Name] = true
		opts.Users = append(opts.Users, &server.User{Username: u.Name, Password: u.Password, Permissions: u.Permissions.server()})
	}
	if o.TLS != nil {
		if len(o.TLS.Certificates) == 0 && o.TLS.GetCertificate == nil && o.TLS.GetConfigForClient == nil {
			return errors.New("natsembed: the TLS configuration has no certificate")
		}
		tc := o.TLS.Clone()
		tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
		opts.TLS = true
		opts.TLSConfig = tc
		opts.TLSVerify = tc.ClientAuth == tls.RequireAndVerifyClientCert
		opts.TLSTimeout = tlsTimeout
	}
	return nil
}

func (p *Permissions) server() *server.Permissions {
	if p == nil {
		return nil
	}
	sp := &server.Permissions{Publish: p.Publish.server(), Subscribe: p.Subscribe.server()}
	if p.AllowResponses {
		sp.Response = &server.ResponsePermission{MaxMsgs: server.DEFAULT_ALLOW_RESPONSE_MAX_MSGS, Expires: server.DEFAULT_ALLOW_RESPONSE_EXPIRATION}
	}
	return sp
}

func (s SubjectPermission) server() *server.SubjectPermission {
	if len(s.Allow) == 0 && len(s.Deny) == 0 {
		return nil
	}
	return &server.SubjectPermission{Allow: slices.Clone(s.Allow), Deny: slices.Clone(s.Deny)}
}

// clientAuth reports whether nats-server will authenticate every client
// with opts: it mirrors nats-server's configureAuthorization, plus TLS that
// requires a verified client certificate of every client.
func clientAuth(opts *server.Options) bool {
	return opts.CustomClientAuthentication != nil ||
		len(opts.TrustedKeys) > 0 || len(opts.TrustedOperators) > 0 ||
		opts.Nkeys != nil || opts.Users != nil ||
		opts.Username != "" || opts.Authorization != "" ||
		(opts.TLSConfig != nil && opts.TLSConfig.ClientAuth == tls.RequireAndVerifyClientCert && !opts.AllowNonTLS)
}

// routeAuth reports whether cluster routes must authenticate.
func routeAuth(opts *server.Options) bool {
	c := opts.Cluster
	return c.Username != "" || (c.TLSConfig != nil && c.TLSConfig.ClientAuth == tls.RequireAndVerifyClientCert)
}

// checkExposure refuses listeners beyond loopback that anyone could use:
// clients without authentication, cluster routes without it.
func checkExposure(opts *server.Options, allowAnonymous bool) error {
	if allowAnonymous {
		return nil
	}
	if !IsLoopback(opts.Host) && !clientAuth(opts) {
		return fmt.Errorf("natsembed: refusing to serve NATS clients on %q without authentication: "+
			"any client that reaches it could join a service's queue group and read its requests; "+
			"set Users or Token (or TLS requiring client certificates, or authentication in Configure), "+
			"listen on 127.0.0.1, or set AllowAnonymous if only trusted clients can reach it", opts.Host)
	}
	if opts.Cluster.Port != 0 && !IsLoopback(opts.Cluster.Host) && !routeAuth(opts) {
		return fmt.Errorf("natsembed: refusing to accept cluster routes on %q without authentication: "+
			"anyone who reaches it could join the cluster and receive its messages; "+
			"set Cluster.Username and Cluster.Password (or route TLS requiring client certificates) in Configure, "+
			"use a loopback Cluster.Host, or set AllowAnonymous", opts.Cluster.Host)
	}
	return nil
}
