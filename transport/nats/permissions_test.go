package nats_test

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	fnats "github.com/ferry-go/ferry/transport/nats"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// The least-privilege NATS permissions of a service "orders" served over
// NATS, as docs/PRODUCTION.md documents them, and of a caller of it.
var (
	servicePerms = &natsserver.Permissions{
		Subscribe: &natsserver.SubjectPermission{Allow: []string{"orders.*", "$SRV.>", "_INBOX.>"}},
		Publish:   &natsserver.SubjectPermission{Allow: []string{"_INBOX.>", "$JS.API.STREAM.NAMES"}},
	}
	callerPerms = &natsserver.Permissions{
		Subscribe: &natsserver.SubjectPermission{Allow: []string{"_INBOX.>"}},
		Publish:   &natsserver.SubjectPermission{Allow: []string{"orders.*"}},
	}
	// An intruder may use NATS for its own subjects, not orders'.
	intruderPerms = &natsserver.Permissions{
		Subscribe: &natsserver.SubjectPermission{Allow: []string{">"}, Deny: []string{"orders.>", "$SRV.>"}},
		Publish:   &natsserver.SubjectPermission{Allow: []string{">"}, Deny: []string{"orders.>"}},
	}
)

// Issue #12: with subject permissions, a client on the same NATS server
// without them can neither join the service's queue group (and read its
// requests) nor call it; the service and a permitted caller work.
func TestLeastPrivilegePermissions(t *testing.T) {
	users := []*natsserver.User{
		{Username: "orders", Password: "orders-secret", Permissions: servicePerms},
		{Username: "caller", Password: "caller-secret", Permissions: callerPerms},
		{Username: "intruder", Password: "intruder-secret", Permissions: intruderPerms},
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(ferrytest.WaitBound) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(ns.Shutdown)
	url := ns.ClientURL()
	connect := func(user, pass string, opts ...nats.Option) *nats.Conn {
		nc, err := nats.Connect(url, append(opts, nats.UserInfo(user, pass))...)
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		return nc
	}

	srv := server.New("orders")
	server.Handle(srv, "Place", func(_ context.Context, r *HelloRequest) (*HelloReply, error) {
		return &HelloReply{Message: "placed " + r.Name}, nil
	})
	serve(t, connect("orders", "orders-secret"), srv)

	var violations ferrytest.NATSErrors
	intruder := connect("intruder", "intruder-secret", violations.Option())
	var stolen atomic.Int64
	if _, err := intruder.QueueSubscribe("orders.*", "orders", func(m *nats.Msg) { stolen.Add(1) }); err != nil {
		t.Fatalf("QueueSubscribe = %v", err)
	}
	violations.AwaitViolation(t, "the intruder's subscription refused", "orders.*")

	caller := fnats.NewClient(connect("caller", "caller-secret"))
	for i := range 20 {
		var out HelloReply
		if err := caller.Invoke(testCtx(t), "orders", "Place", &HelloRequest{Name: "o"}, &out); err != nil || out.Message != "placed o" {
			t.Fatalf("call %d by a permitted caller = %+v, %v", i, out, err)
		}
	}
	if n := stolen.Load(); n != 0 {
		t.Errorf("the intruder received %d requests, want none", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var out HelloReply
	if err := fnats.NewClient(intruder).Invoke(ctx, "orders", "Place", &HelloRequest{Name: "x"}, &out); err == nil {
		t.Error("the intruder's call succeeded, want it refused")
	} else if c := errs.CodeOf(err); c == errs.Unknown {
		t.Errorf("the intruder's call = %v, want a clear code", err)
	}
}

// TestLeastPrivilegeStreams: a service with streaming endpoints needs to
// subscribe to its stream inboxes, <service>._stream.>, and its callers to
// publish there; with exactly the permissions docs/PRODUCTION.md lists, a
// bidirectional stream runs. Callers need no right to publish into
// _INBOX.>, which would let them forge replies to other clients.
func TestLeastPrivilegeStreams(t *testing.T) {
	users := []*natsserver.User{
		{Username: "wire", Password: "wire-secret", Permissions: &natsserver.Permissions{
			Subscribe: &natsserver.SubjectPermission{Allow: []string{"wire.*", "wire._stream.>", "$SRV.>", "_INBOX.>"}},
			Publish:   &natsserver.SubjectPermission{Allow: []string{"_INBOX.>", "$JS.API.STREAM.NAMES"}},
		}},
		{Username: "caller", Password: "caller-secret", Permissions: &natsserver.Permissions{
			Subscribe: &natsserver.SubjectPermission{Allow: []string{"_INBOX.>"}},
			Publish:   &natsserver.SubjectPermission{Allow: []string{"wire.*", "wire._stream.>"}},
		}},
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(ferrytest.WaitBound) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(ns.Shutdown)
	var mu sync.Mutex
	var violations []string
	onErr := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		violations = append(violations, err.Error())
		mu.Unlock()
	})
	connect := func(user, pass string) *nats.Conn {
		nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo(user, pass), onErr)
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	s, _ := streamServer(t)
	serve(t, connect("wire", "wire-secret"), s)
	c := fnats.NewClient(connect("caller", "caller-secret"))
	bs, err := chatEP.Open(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(5) {
		if err := bs.Send(&Item{Num: i}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		if m, err := bs.Recv(); err != nil || m.Num != i {
			t.Fatalf("Recv %d = %+v, %v", i, m, err)
		}
	}
	if err := bs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Recv(); err != io.EOF {
		t.Errorf("end of the stream = %v, want io.EOF", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(violations) > 0 {
		t.Errorf("NATS errors: %q", violations)
	}
}
