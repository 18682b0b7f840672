package shed_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/middleware/shed"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type Req struct {
	N int `json:"n"`
}

// TestServerWide: two endpoints share one limit of 2; with both slots
// held by calls to A, a call to B is shed on every transport, an exempt
// endpoint still runs, and freeing a slot admits calls again.
func TestServerWide(t *testing.T) {
	s, err := shed.New(2, shed.WithExempt("svc/Health"), shed.WithRetryAfter(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	srv := server.New("svc", server.WithMiddleware(s.Middleware()))
	server.Handle(srv, "A", func(ctx context.Context, req *Req) (*Req, error) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return req, nil
	})
	server.Handle(srv, "B", func(ctx context.Context, req *Req) (*Req, error) { return req, nil })
	server.Handle(srv, "Health", func(ctx context.Context, req *Req) (*Req, error) { return req, nil })
	inst := ferrytest.Start(t, srv)

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _, _ = transport.Invoke[Req, Req](ctx, inst.HTTP, "svc", "A", &Req{}) })
	}
	<-entered
	<-entered
	if s.InFlight() != 2 {
		t.Errorf("in flight = %d", s.InFlight())
	}
	for name, c := range map[string]transport.Client{"http": inst.HTTP, "grpc": inst.GRPC, "nats": inst.NATS} {
		var reply transport.Metadata
		_, err := transport.Invoke[Req, Req](transport.CaptureReply(ctx, &reply), c, "svc", "B", &Req{})
		var e *errs.Error
		if !errors.As(err, &e) || e.Code() != errs.ResourceExhausted {
			t.Errorf("%s: %v", name, err)
		}
		if reply.Get("retry-after") != "2" {
			t.Errorf("%s: reply %v", name, reply)
		}
		if _, err := transport.Invoke[Req, Req](ctx, c, "svc", "Health", &Req{}); err != nil {
			t.Errorf("%s: exempt endpoint: %v", name, err)
		}
	}
	if s.Shed() != 3 {
		t.Errorf("shed = %d", s.Shed())
	}
	close(release)
	wg.Wait()
	if _, err := transport.Invoke[Req, Req](ctx, inst.GRPC, "svc", "B", &Req{}); err != nil {
		t.Errorf("after release: %v", err)
	}
	if s.InFlight() != 0 {
		t.Errorf("in flight = %d after all returned", s.InFlight())
	}
}

func TestInvalidOptions(t *testing.T) {
	for name, f := range map[string]func() (*shed.Shedder, error){
		"zero max":         func() (*shed.Shedder, error) { return shed.New(0) },
		"negative retry":   func() (*shed.Shedder, error) { return shed.New(1, shed.WithRetryAfter(-1)) },
		"bad exempt":       func() (*shed.Shedder, error) { return shed.New(1, shed.WithExempt("")) },
		"bad exempt slash": func() (*shed.Shedder, error) { return shed.New(1, shed.WithExempt("/x")) },
	} {
		if s, err := f(); err == nil || s != nil {
			t.Errorf("%s: %v %v", name, s, err)
		}
	}
	if _, err := shed.New(1, nil, shed.WithRetryAfter(0)); err != nil {
		t.Error(err)
	}
}
