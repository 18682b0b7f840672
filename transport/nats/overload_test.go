package nats_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestBurstSurvives is issue #11's defect 15: a burst larger than the
// connection's queue made nats.go drop requests and report a slow
// consumer once; the workers took that error for the end of the
// subscription and stopped for good, while the subscription stayed
// registered — every later request timed out. Here the queue holds 64
// requests, one handler runs at a time and is held, and 500 requests
// arrive: the server must shed what is over its bound with
// ResourceExhausted, survive the drops, and serve the next call.
func TestBurstSurvives(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	snc, err := nats.Connect(ns.ClientURL(), nats.SyncQueueLen(64), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(snc.Close)
	release := make(chan struct{})
	var served atomic.Int64
	srv := server.New("burst", server.WithLogger(discardLogger()))
	server.Handle(srv, "Hello", func(ctx context.Context, r *HelloRequest) (*HelloReply, error) {
		if served.Add(1) == 1 {
			select { // the first request holds the only handler
			case <-release:
			case <-ctx.Done():
			}
		}
		return &HelloReply{Message: "hi " + r.Name}, nil
	})
	tr := serve(t, snc, srv, fnats.WithMaxConcurrent(1), fnats.WithMaxQueued(10))

	cnc := connect(t, ns)
	replies, err := cnc.SubscribeSync(nats.NewInbox() + ".>")
	if err != nil {
		t.Fatal(err)
	}
	inbox := strings.TrimSuffix(replies.Subject, ">")
	if err := cnc.PublishRequest("burst.Hello", inbox+"first", []byte(`{"name":"first"}`)); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, "the first request holds the handler", func() bool { return served.Load() == 1 })
	const burst = 500
	for i := range burst {
		if err := cnc.PublishRequest("burst.Hello", inbox+"b", []byte(`{"name":"x"}`)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if err := cnc.Flush(); err != nil {
		t.Fatal(err)
	}
	// Every request has reached the server's connection; nats.go dropped
	// what its 64-slot queue could not hold.
	ferrytest.Eventually(t, "the burst reaches the server's connection", func() bool {
		return snc.Stats().InMsgs >= burst+1
	})
	close(release)

	// The server goes on: every request it did not drop is answered,
	// the ones past the bound with ResourceExhausted. A probe may itself
	// be shed, or dropped if the queue is still full when it arrives: it
	// is tried again until one is served. (Before the fix none ever was.)
	c := fnats.NewClient(cnc)
	ctx := testCtx(t)
	var last error
	if err := ferrytest.Poll(ctx, func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		r, err := transport.Invoke[HelloRequest, HelloReply](pctx, c, "burst", "Hello", &HelloRequest{Name: "after"})
		last = err
		return err == nil && r.Message == "hi after"
	}); err != nil {
		t.Fatalf("no call after the burst was served (the transport died): %v; last error %v", err, last)
	}
	if err := tr.Check(ctx); err != nil {
		t.Errorf("Check after the burst = %v, want nil", err)
	}
	var ok, shed int
	for {
		m, err := replies.NextMsg(0)
		if err != nil {
			break
		}
		switch {
		case m.Header.Get("Ferry-Error-Code") == "resource_exhausted":
			shed++
			if !strings.Contains(string(m.Data), "overloaded") {
				t.Errorf("shed reply %s, want it to say the service is overloaded", m.Data)
			}
		case m.Header.Get("Ferry-Error-Code") == "":
			ok++
		default:
			t.Errorf("reply with error %s: %s", m.Header.Get("Ferry-Error-Code"), m.Data)
		}
	}
	t.Logf("burst of %d into a 64-request queue, bound 10: %d served, %d shed, %d dropped by nats.go", burst, ok, shed, burst+1-ok-shed)
	if shed == 0 || ok == 0 {
		t.Errorf("%d served, %d shed: want both", ok, shed)
	}
}

// TestCheck: readiness follows the transport's life.
func TestCheck(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	srv := server.New("check", server.WithLogger(discardLogger()))
	server.Handle(srv, "Hello", func(context.Context, *HelloRequest) (*HelloReply, error) { return &HelloReply{}, nil })
	tr := fnats.NewServer(nc)
	ctx := testCtx(t)
	if err := tr.Check(ctx); err == nil {
		t.Error("Check before Start = nil, want an error")
	}
	if err := tr.Start(ctx, srv); err != nil {
		t.Fatal(err)
	}
	if err := tr.Check(ctx); err != nil {
		t.Errorf("Check while serving = %v", err)
	}
	nc.Close() // the subscription ends under the server
	ferrytest.Eventually(t, "Check reports the ended subscription", func() bool { return tr.Check(ctx) != nil })
	if err := tr.Stop(ctx); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		t.Logf("Stop after the connection closed = %v", err)
	}
	if err := tr.Check(ctx); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("Check after Stop = %v, want stopped", err)
	}
}

// TestStreamCapturingRequestsRefused is issue #11's defect 6: a JetStream
// stream whose subjects cover "<service>.>" answered the service's
// requests with a PubAck, which callers decoded as an empty reply with no
// error, and stored the requests as events. The transport now refuses to
// start, naming the stream; a service whose subjects it does not cover
// starts.
func TestStreamCapturingRequestsRefused(t *testing.T) {
	ns := startNATS(t, natsembed.Options{JetStream: true, StoreDir: t.TempDir()})
	nc := connect(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	hello := func(context.Context, *HelloRequest) (*HelloReply, error) { return &HelloReply{Message: "hi"}, nil }
	orders := server.New("orders", server.WithLogger(discardLogger()))
	server.Handle(orders, "Place", hello)
	err = fnats.NewServer(nc).Start(ctx, orders)
	if errs.CodeOf(err) != errs.FailedPrecondition || !strings.Contains(err.Error(), "JetStream stream ORDERS captures orders.*") {
		t.Errorf("Start(orders) beside stream ORDERS on orders.> = %v, want failed_precondition naming the stream", err)
	}
	billing := server.New("billing", server.WithLogger(discardLogger()))
	server.Handle(billing, "Charge", hello)
	serve(t, nc, billing) // fails the test if Start does
}
