package natsembed_test

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// start starts a server with opts for the rest of the test.
func start(t *testing.T, opts natsembed.Options) *natsembed.Server {
	t.Helper()
	s, err := natsembed.Start(ferrytest.Context(t), opts)
	if err != nil {
		t.Fatalf("Start = %v, want nil", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// connectWith connects with opts for the rest of the test, or returns
// the error.
func connectWith(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, error) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

// echo answers requests on subject with their data, on nc.
func echo(t *testing.T, nc *nats.Conn, subject string) {
	t.Helper()
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		t.Fatalf("Subscribe(%s) = %v", subject, err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("Flush = %v", err)
	}
}

// request asks subject on nc and wants its data back.
func request(t *testing.T, nc *nats.Conn, subject string) {
	t.Helper()
	msg, err := nc.RequestWithContext(ferrytest.Context(t), subject, []byte("hi"))
	if err != nil || string(msg.Data) != "hi" {
		t.Fatalf("Request(%s) = %v, %v, want hi", subject, msg, err)
	}
}

// A server that would listen beyond loopback without authentication is
// refused before it listens (port 0 on 0.0.0.0 would be a random port on
// every interface; nothing is opened), with an error naming the host and
// what to do. Authentication set by Configure counts; accounts alone, or a
// Configure that moves the server off loopback, do not.
func TestNonLoopbackWithoutAuthRefused(t *testing.T) {
	withAccounts := func(o *server.Options) { o.Accounts = []*server.Account{server.NewAccount("A")} }
	tests := []struct {
		name string
		opts natsembed.Options
		want []string
	}{
		{"all IPv4 interfaces", natsembed.Options{Host: "0.0.0.0"},
			[]string{`"0.0.0.0"`, "without authentication", "Users or Token", "AllowAnonymous"}},
		{"all IPv6 interfaces", natsembed.Options{Host: "::"}, []string{`"::"`, "AllowAnonymous"}},
		{"accounts only", natsembed.Options{Host: "0.0.0.0", Configure: withAccounts}, []string{`"0.0.0.0"`}},
		{"moved by Configure", natsembed.Options{Configure: func(o *server.Options) { o.Host = "0.0.0.0" }}, []string{`"0.0.0.0"`}},
		{"mutual TLS but non-TLS clients allowed", natsembed.Options{Host: "0.0.0.0",
			TLS:       ferrytest.TLS(t).Server(true),
			Configure: func(o *server.Options) { o.AllowNonTLS = true }}, []string{`"0.0.0.0"`}},
		{"cluster routes", natsembed.Options{Users: []natsembed.User{{Name: "a", Password: "p"}},
			Cluster: natsembed.ClusterOptions{Name: "c", Host: "0.0.0.0"}},
			[]string{"cluster routes", `"0.0.0.0"`, "Cluster.Username", "AllowAnonymous"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := natsembed.Start(ferrytest.Context(t), tt.opts)
			if err == nil {
				s.Shutdown()
				t.Fatal("Start = nil error, want a refusal")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Start = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// With users, a client must log in as one of them: none or a wrong
// password is an authorization error; the right user connects. On a
// non-loopback host the server then starts.
func TestUsers(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "0.0.0.0"} {
		t.Run(host, func(t *testing.T) {
			s := start(t, natsembed.Options{Host: host, Users: []natsembed.User{
				{Name: "orders", Password: "orders-secret"},
				{Name: "caller", Password: "caller-secret"},
			}})
			url := s.ClientURL()
			if _, err := connectWith(t, url); !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("connect without credentials = %v, want %v", err, nats.ErrAuthorization)
			}
			if _, err := connectWith(t, url, nats.UserInfo("orders", "caller-secret")); !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("connect with a wrong password = %v, want %v", err, nats.ErrAuthorization)
			}
			orders, err := connectWith(t, url, nats.UserInfo("orders", "orders-secret"))
			if err != nil {
				t.Fatalf("connect as orders = %v, want nil", err)
			}
			caller, err := connectWith(t, url, nats.UserInfo("caller", "caller-secret"))
			if err != nil {
				t.Fatalf("connect as caller = %v, want nil", err)
			}
			echo(t, orders, "orders.Echo")
			request(t, caller, "orders.Echo")
		})
	}
}

// A bcrypt hash stands for the password (a file need not hold it in
// clear).
func TestUserBcryptPassword(t *testing.T) {
	// bcrypt of "s3cret", cost 4.
	const hash = "$2a$04$ZtGc8YqgzFdeXSHSH3.CD.PPemo1kURPLQMkiD.2aiYTpGQ1lvpsK"
	s := start(t, natsembed.Options{Users: []natsembed.User{{Name: "orders", Password: hash}}})
	if _, err := connectWith(t, s.ClientURL(), nats.UserInfo("orders", "s3cret")); err != nil {
		t.Errorf("connect with the password of a bcrypt hash = %v, want nil", err)
	}
	if _, err := connectWith(t, s.ClientURL(), nats.UserInfo("orders", hash)); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("connect with the hash itself = %v, want %v", err, nats.ErrAuthorization)
	}
}

func TestToken(t *testing.T) {
	s := start(t, natsembed.Options{Token: "t0ken"})
	if _, err := connectWith(t, s.ClientURL()); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("connect without a token = %v, want %v", err, nats.ErrAuthorization)
	}
	if _, err := connectWith(t, s.ClientURL(), nats.Token("wrong")); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("connect with a wrong token = %v, want %v", err, nats.ErrAuthorization)
	}
	nc, err := connectWith(t, s.ClientURL(), nats.Token("t0ken"))
	if err != nil {
		t.Fatalf("connect with the token = %v, want nil", err)
	}
	echo(t, nc, "svc.Echo")
	request(t, nc, "svc.Echo")
}

// Users' permissions are enforced: a user denied subscribe on svc.> gets a
// permissions violation and receives none of svc's requests; a user with
// only AllowResponses answers requests but may publish nothing else; a
// user without Permissions may do anything.
func TestPermissions(t *testing.T) {
	s := start(t, natsembed.Options{Users: []natsembed.User{
		{Name: "svc", Password: "svc-secret"},
		{Name: "intruder", Password: "intruder-secret", Permissions: &natsembed.Permissions{
			Subscribe: natsembed.SubjectPermission{Allow: []string{">"}, Deny: []string{"svc.>"}},
		}},
		{Name: "responder", Password: "responder-secret", Permissions: &natsembed.Permissions{
			Subscribe:      natsembed.SubjectPermission{Allow: []string{"work.>"}},
			AllowResponses: true,
		}},
	}})
	url := s.ClientURL()
	svc, err := connectWith(t, url, nats.UserInfo("svc", "svc-secret"))
	if err != nil {
		t.Fatal(err)
	}
	echo(t, svc, "svc.Echo")

	var iv ferrytest.NATSErrors
	intruder, err := connectWith(t, url, nats.UserInfo("intruder", "intruder-secret"), iv.Option())
	if err != nil {
		t.Fatal(err)
	}
	stolen := make(chan *nats.Msg, 16)
	if _, err := intruder.ChanQueueSubscribe("svc.>", "svc", stolen); err != nil {
		t.Fatalf("QueueSubscribe(svc.>) = %v", err)
	}
	iv.AwaitViolation(t, "the intruder's subscription to svc.> refused", "svc.>")
	for range 10 {
		request(t, svc, "svc.Echo") // all answered by svc, none stolen
	}
	if n := len(stolen); n != 0 {
		t.Errorf("the intruder received %d requests, want none", n)
	}
	echo(t, intruder, "other.Echo") // what it is allowed still works
	request(t, svc, "other.Echo")

	var rv ferrytest.NATSErrors
	responder, err := connectWith(t, url, nats.UserInfo("responder", "responder-secret"), rv.Option())
	if err != nil {
		t.Fatal(err)
	}
	echo(t, responder, "work.Echo")
	request(t, svc, "work.Echo") // the reply is allowed
	if err := responder.Publish("elsewhere", []byte("x")); err != nil {
		t.Fatalf("Publish = %v", err)
	}
	rv.AwaitViolation(t, "the responder's publish to elsewhere refused", "elsewhere")
}

// With TLS requiring client certificates, ClientURL says tls://, and only
// a client presenting a certificate the CA signed gets in: none, one from
// another CA, or no TLS at all is refused.
func TestTLSClientCertificates(t *testing.T) {
	ca := ferrytest.TLS(t)
	s := start(t, natsembed.Options{TLS: ca.Server(true)})
	url := s.ClientURL()
	if !strings.HasPrefix(url, "tls://127.0.0.1:") {
		t.Fatalf("ClientURL() = %q, want tls://127.0.0.1:<port>", url)
	}
	tlsTo := func(certs ...tls.Certificate) nats.Option {
		return nats.Secure(&tls.Config{RootCAs: ca.Pool, Certificates: certs, MinVersion: tls.VersionTLS12})
	}
	if _, err := connectWith(t, url, tlsTo()); err == nil {
		t.Error("connect over TLS without a client certificate succeeded, want it refused")
	}
	if _, err := connectWith(t, url, tlsTo(ferrytest.TLS(t).Cert)); err == nil {
		t.Error("connect with a certificate of another CA succeeded, want it refused")
	}
	if _, err := connectWith(t, "nats://"+s.Addr().String()); err == nil {
		t.Error("connect without TLS succeeded, want it refused")
	}
	nc, err := connectWith(t, url, tlsTo(ca.Sign(t).Cert))
	if err != nil {
		t.Fatalf("connect with a certificate the CA signed = %v, want nil", err)
	}
	echo(t, nc, "svc.Echo")
	request(t, nc, "svc.Echo")
}

// TLS without client certificates serves anyone who trusts the server.
func TestTLSServerOnly(t *testing.T) {
	ca := ferrytest.TLS(t)
	s := start(t, natsembed.Options{TLS: ca.Server(false)})
	nc, err := connectWith(t, s.ClientURL(), nats.Secure(ca.Client(false)))
	if err != nil {
		t.Fatalf("connect over TLS = %v, want nil", err)
	}
	if st, err := nc.TLSConnectionState(); err != nil || !st.HandshakeComplete {
		t.Errorf("TLSConnectionState() = %+v, %v, want a completed handshake", st, err)
	}
}

// Configure runs last, on the nats-server options.
func TestConfigure(t *testing.T) {
	s := start(t, natsembed.Options{Configure: func(o *server.Options) {
		o.Username, o.Password = "single", "pw"
	}})
	if _, err := connectWith(t, s.ClientURL()); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("connect without credentials = %v, want %v", err, nats.ErrAuthorization)
	}
	if _, err := connectWith(t, s.ClientURL(), nats.UserInfo("single", "pw")); err != nil {
		t.Errorf("connect as the user Configure set = %v, want nil", err)
	}
}

func TestSecurityOptionsInvalid(t *testing.T) {
	tests := []struct {
		name string
		opts natsembed.Options
		want string
	}{
		{"token and users", natsembed.Options{Token: "t", Users: []natsembed.User{{Name: "a", Password: "p"}}}, "Token and Users"},
		{"user without name", natsembed.Options{Users: []natsembed.User{{Password: "p"}}}, "no name"},
		{"user without password", natsembed.Options{Users: []natsembed.User{{Name: "a"}}}, `"a" has no password`},
		{"user twice", natsembed.Options{Users: []natsembed.User{{Name: "a", Password: "p"}, {Name: "a", Password: "q"}}}, "twice"},
		{"TLS without a certificate", natsembed.Options{TLS: &tls.Config{}}, "no certificate"},
		{"bad permission subject", natsembed.Options{Users: []natsembed.User{{Name: "a", Password: "p",
			Permissions: &natsembed.Permissions{Publish: natsembed.SubjectPermission{Allow: []string{"a..b"}}}}}}, "a..b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := natsembed.Start(ferrytest.Context(t), tt.opts)
			if err == nil {
				s.Shutdown()
				t.Fatal("Start = nil error, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}
