package middleware_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
)

func TestRecover(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := middleware.Recover(middleware.WithRecoverLogger(quiet))(func(context.Context, any) (any, error) {
		panic("secret detail")
	})
	resp, err := h(context.Background(), nil)
	if resp != nil {
		t.Errorf("resp = %v, want nil", resp)
	}
	if got := errs.CodeOf(err); got != errs.Internal {
		t.Fatalf("CodeOf(err) = %v, want internal", got)
	}
	if got := err.Error(); got != "internal: internal error" {
		t.Errorf("err = %q, want the panic value hidden", got)
	}
}

func TestChainSkipsNil(t *testing.T) {
	h := middleware.Chain(nil)(func(_ context.Context, req any) (any, error) { return req, nil })
	if got, _ := h(context.Background(), 7); got != 7 {
		t.Errorf("h(7) = %v, want 7", got)
	}
}
