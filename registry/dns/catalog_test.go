package dns_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/dns"
)

// keys returns "<service>/<id>" of each instance, in order.
func keys(set []registry.Instance) string {
	s := make([]string, len(set))
	for i, in := range set {
		s[i] = in.Service + "/" + in.ID
	}
	return strings.Join(s, ",")
}

// TestWatchAll follows three configured services on a real DNS server. The
// watcher resolves only inside Next, so records changed between two calls
// are all seen by the next poll: each Next below has one right answer.
//
// It shows that WatchAll returns every service's instances sorted by
// service then ID; that polls answering the same records end no Next (a
// Next spans several of them, counted at the server, and returns only the
// change that follows); that a service scaled up from zero, an instance
// added, and an instance moving from one service to another with the same
// ID and endpoints are each a change; and that a failure to resolve any
// service fails the Next as a whole, never returning a partial set.
func TestWatchAll(t *testing.T) {
	s := startServer(t)
	s.set("a.test.", "10.0.0.1")
	s.setSRV("_grpc._tcp.b.test.", srv("pod-1.b.test.", 9090))
	r, err := dns.New(map[string][]dns.Target{
		"beta":  {{Transport: "grpc", SRV: "_grpc._tcp.b.test."}},
		"alpha": {{Transport: "http", Host: "a.test.", Port: 8080}},
		"apex":  {{Transport: "http", Host: "p.test.", Port: 8080}}, // no records yet: scaled to zero
	}, dns.WithResolver(s.resolver()), dns.WithInterval(20*time.Millisecond))
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	ctx := ferrytest.Context(t)
	w, err := r.WatchAll(ctx)
	if err != nil {
		t.Fatalf("WatchAll = %v", err)
	}
	defer w.Stop()
	next := func(what, want string) {
		t.Helper()
		nctx, cancel := context.WithTimeout(ctx, ferrytest.WaitBound)
		defer cancel()
		got, err := w.Next(nctx)
		if err != nil || keys(got) != want {
			t.Fatalf("WatchAll Next %s = %s, %v; want %s", what, keys(got), err, want)
		}
	}
	next("first", "alpha/10-0-0-1,beta/pod-1-b-test")

	// A Next waits across polls that find the same records.
	pending := make(chan error, 1)
	var across []registry.Instance
	go func() {
		var err error
		across, err = w.Next(ctx)
		pending <- err
	}()
	const polls = 5
	asked := s.asked("p.test.") // one A and one AAAA question per poll
	ferrytest.Eventually(t, "polls of unchanged records", func() bool { return s.asked("p.test.") >= asked+2*polls })
	select {
	case err := <-pending:
		t.Fatalf("WatchAll Next returned %s, %v with no record changed, want it to wait for a change", keys(across), err)
	default:
	}
	s.set("p.test.", "10.0.0.3")
	if err := <-pending; err != nil || keys(across) != "alpha/10-0-0-1,apex/10-0-0-3,beta/pod-1-b-test" {
		t.Fatalf("WatchAll Next across %d+ polls, then apex scaled up = %s, %v; want alpha/10-0-0-1,apex/10-0-0-3,beta/pod-1-b-test",
			polls, keys(across), err)
	}

	s.setSRV("_grpc._tcp.b.test.", srv("pod-2.b.test.", 9090), srv("pod-1.b.test.", 9090))
	next("after beta gained pod-2", "alpha/10-0-0-1,apex/10-0-0-3,beta/pod-1-b-test,beta/pod-2-b-test")

	// 10.0.0.1 moves from alpha to apex: the same IDs and endpoints in the
	// same order, under another service, are another set.
	s.mu.Lock()
	s.ips["p.test."] = append(s.ips["a.test."], s.ips["p.test."]...)
	delete(s.ips, "a.test.")
	s.mu.Unlock()
	next("after 10.0.0.1 moved from alpha to apex", "apex/10-0-0-1,apex/10-0-0-3,beta/pod-1-b-test,beta/pod-2-b-test")

	// One service failing fails the Next, though the others resolve.
	s.setFail("_grpc._tcp.b.test.", true)
	if got, err := w.Next(ctx); errs.CodeOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "_grpc._tcp.b.test.") {
		t.Fatalf("WatchAll Next with beta failing = %s, %v; want an %v error naming _grpc._tcp.b.test.", keys(got), err, errs.Unavailable)
	}
	s.setFail("_grpc._tcp.b.test.", false)
	s.setSRV("_grpc._tcp.b.test.", srv("pod-2.b.test.", 9090))
	next("after beta recovered without pod-1", "apex/10-0-0-1,apex/10-0-0-3,beta/pod-2-b-test")
}

// TestWatchAllNoServices: a registry with no services watches an empty
// set; its first Next returns it at once.
func TestWatchAllNoServices(t *testing.T) {
	r, err := dns.New(nil)
	if err != nil {
		t.Fatalf("New(nil) = %v", err)
	}
	ctx := testCtx(t)
	w, err := r.WatchAll(ctx)
	if err != nil {
		t.Fatalf("WatchAll = %v", err)
	}
	defer w.Stop()
	if got, err := w.Next(ctx); err != nil || got == nil || len(got) != 0 {
		t.Errorf("first WatchAll Next = %#v, %v; want an empty set", got, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.WatchAll(cctx); err == nil {
		t.Errorf("WatchAll(cancelled ctx) = nil error, want the context's")
	}
}
