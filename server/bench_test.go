package server_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/ferry-go/ferry/server"
)

type benchReq struct{ Name string }
type benchResp struct{ Msg string }

// BenchmarkEndpointChain: the cost of the chain every endpoint call goes
// through (recovery outermost and around the handler, the hidden-error
// check), with no middleware of the user's.
func BenchmarkEndpointChain(b *testing.B) {
	s := server.New("b", server.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	server.Handle(s, "E", func(_ context.Context, r *benchReq) (*benchResp, error) { return &benchResp{Msg: r.Name}, nil })
	e, _ := s.Endpoint("E")
	ctx := context.Background()
	req := &benchReq{Name: "x"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Handler(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
