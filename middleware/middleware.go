// Package middleware defines Ferry's one middleware type and the built-in
// middleware that every transport shares.
//
// A Handler sees the request already decoded into its typed Go value, and
// the call's details (service, endpoint, transport, metadata, peer,
// deadline) through transport.CallFromContext, so one middleware serves
// HTTP, gRPC and NATS servers and clients alike.
//
// Chains are composed once, when an endpoint is registered or a client is
// built, never per request. The first middleware listed runs outermost.
package middleware

import (
	"context"
	"log/slog"
	"runtime"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
)

// Handler handles one decoded request and returns the reply to encode.
type Handler func(ctx context.Context, req any) (any, error)

// Middleware wraps a Handler with behaviour that runs before and after it.
type Middleware func(Handler) Handler

// Chain composes mws into one Middleware. The first runs outermost: for
// Chain(a, b)(h), a sees the call first and the reply last.
func Chain(mws ...Middleware) Middleware {
	mws = append([]Middleware(nil), mws...)
	return func(h Handler) Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			if mws[i] != nil {
				h = mws[i](h)
			}
		}
		return h
	}
}

// RecoverOption configures Recover.
type RecoverOption func(*recoverConfig)

type recoverConfig struct {
	logger *slog.Logger
}

// WithRecoverLogger sets the logger that records recovered panics with their
// stack. The default is slog.Default().
func WithRecoverLogger(l *slog.Logger) RecoverOption {
	return func(c *recoverConfig) { c.logger = l }
}

// Recover turns a panic in the wrapped handler into an Internal error whose
// message does not reveal the panic value; the panic and its stack are logged
// at error level. The process survives.
//
// Servers always run Recover outermost, so a handler panic never takes a
// process down even when it is not listed.
func Recover(opts ...RecoverOption) Middleware {
	cfg := recoverConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	return func(next Handler) Handler {
		return func(ctx context.Context, req any) (resp any, err error) {
			defer func() {
				if p := recover(); p != nil {
					logPanic(ctx, cfg.logger, p)
					resp, err = nil, errs.New(errs.Internal, "internal error")
				}
			}()
			return next(ctx, req)
		}
	}
}

func logPanic(ctx context.Context, l *slog.Logger, p any) {
	if l == nil {
		l = slog.Default()
	}
	buf := make([]byte, 8<<10)
	buf = buf[:runtime.Stack(buf, false)]
	attrs := []any{slog.Any("panic", p), slog.String("stack", string(buf))}
	if c, ok := transport.CallFromContext(ctx); ok {
		attrs = append(attrs, slog.String("service", c.Service), slog.String("endpoint", c.Endpoint),
			slog.String("transport", c.Kind.String()))
	}
	l.ErrorContext(ctx, "handler panicked", attrs...)
}
