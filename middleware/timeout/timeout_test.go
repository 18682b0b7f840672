package timeout_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/middleware/timeout"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBounds(t *testing.T) {
	var got time.Time
	var has bool
	var callDL time.Time
	inner := func(ctx context.Context, req any) (any, error) {
		got, has = ctx.Deadline()
		if c, ok := transport.CallFromContext(ctx); ok {
			callDL = c.Deadline
		}
		return nil, nil
	}
	h := timeout.New(time.Second)(inner)

	// No incoming deadline: one second from now.
	call := &transport.Call{}
	start := time.Now()
	_, _ = h(transport.NewCallContext(context.Background(), call), nil)
	end := time.Now()
	if !has || got.Before(start.Add(time.Second)) || got.After(end.Add(time.Second)) {
		t.Errorf("deadline %v after the call began (has %v), want one second after the middleware ran", got.Sub(start), has)
	}
	if !callDL.Equal(got) {
		t.Errorf("Call.Deadline = %v, want %v", callDL, got)
	}

	// A tighter incoming deadline is kept.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	want, _ := ctx.Deadline()
	_, _ = h(ctx, nil)
	if !got.Equal(want) {
		t.Errorf("deadline %v, want the incoming %v", got, want)
	}

	// A looser one is tightened.
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Hour)
	defer cancel2()
	_, _ = h(ctx2, nil)
	if time.Until(got) > time.Second {
		t.Errorf("deadline in %v, want <= 1s", time.Until(got))
	}

	// Zero or negative: untouched.
	has = true
	_, _ = timeout.New(0)(inner)(context.Background(), nil)
	if has {
		t.Error("New(0) set a deadline")
	}
}

// TestPerTransport: a handler that waits on its context ends with
// DeadlineExceeded on every transport.
func TestPerTransport(t *testing.T) {
	type Req struct {
		N int `json:"n"`
	}
	srv := server.New("slow", server.WithMiddleware(timeout.New(50*time.Millisecond)))
	server.Handle(srv, "Wait", func(ctx context.Context, req *Req) (*Req, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
			return req, nil
		}
	})
	inst := ferrytest.Start(t, srv)
	for name, c := range map[string]transport.Client{"http": inst.HTTP, "grpc": inst.GRPC, "nats": inst.NATS} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		start := time.Now()
		_, err := transport.Invoke[Req, Req](ctx, c, "slow", "Wait", &Req{})
		cancel()
		var e *errs.Error
		if !errors.As(err, &e) || e.Code() != errs.DeadlineExceeded {
			t.Errorf("%s: %v", name, err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("%s: took %v", name, el)
		}
	}
}
