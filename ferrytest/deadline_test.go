package ferrytest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
)

type hop struct {
	Path string `json:"path"`
}

// TestDeadlinePropagatesAcrossTransports: caller →HTTP→ A →NATS→ B →gRPC→ C,
// with a 300ms deadline and C slower than that. The caller gets
// DeadlineExceeded at about 300ms and C's context is cancelled.
func TestDeadlinePropagatesAcrossTransports(t *testing.T) {
	cDone := make(chan error, 1)
	cSrv := server.New("svc-c")
	server.Handle(cSrv, "Slow", func(ctx context.Context, h *hop) (*hop, error) {
		select {
		case <-ctx.Done():
			cDone <- ctx.Err()
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
			cDone <- nil
			return &hop{Path: h.Path + ">c"}, nil
		}
	})
	c := ferrytest.Start(t, cSrv)

	bSrv := server.New("svc-b")
	server.Handle(bSrv, "Relay", func(ctx context.Context, h *hop) (*hop, error) {
		return transport.Invoke[hop, hop](ctx, c.GRPC, "svc-c", "Slow", &hop{Path: h.Path + ">b"})
	})
	b := ferrytest.Start(t, bSrv)

	aSrv := server.New("svc-a")
	server.Handle(aSrv, "Relay", func(ctx context.Context, h *hop) (*hop, error) {
		return transport.Invoke[hop, hop](ctx, b.NATS, "svc-b", "Relay", &hop{Path: h.Path + ">a"})
	})
	a := ferrytest.Start(t, aSrv)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := transport.Invoke[hop, hop](ctx, a.HTTP, "svc-a", "Relay", &hop{Path: "caller"})
	took := time.Since(began)
	if errs.CodeOf(err) != errs.DeadlineExceeded {
		t.Errorf("call through A→B→C = %v, want deadline_exceeded", err)
	}
	if took < 250*time.Millisecond || took > 2*time.Second {
		t.Errorf("call returned after %v, want about 300ms", took)
	}
	select {
	case cerr := <-cDone:
		if !errors.Is(cerr, context.DeadlineExceeded) && !errors.Is(cerr, context.Canceled) {
			t.Errorf("C's context ended with %v, want it cancelled by the propagated deadline", cerr)
		}
	case <-time.After(3 * time.Second):
		t.Error("C's context was not cancelled within 3s")
	}
	t.Logf("caller got %v after %v", errs.CodeOf(err), took)
}
