package telemetry

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	"go.opentelemetry.io/otel/trace"
)

// AccessLogOption configures AccessLog.
type AccessLogOption func(*accessLogConfig)

type accessLogConfig struct {
	metadata bool
	secrets  map[string]bool
	message  string
}

// DefaultSecretHeaders are metadata keys whose values are never logged.
var DefaultSecretHeaders = []string{"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}

// Redacted replaces the value of a secret metadata key in the log.
const Redacted = "[REDACTED]"

// WithLoggedMetadata adds the request metadata to each line, as a group
// "metadata" of key = values, with the values of secret keys (the
// DefaultSecretHeaders and those of WithSecretHeaders) replaced by
// Redacted. Off by default: metadata is not logged at all.
func WithLoggedMetadata() AccessLogOption {
	return func(c *accessLogConfig) { c.metadata = true }
}

// WithSecretHeaders adds metadata keys (case-insensitive) whose values are
// never logged, on top of DefaultSecretHeaders.
func WithSecretHeaders(keys ...string) AccessLogOption {
	return func(c *accessLogConfig) {
		for _, k := range keys {
			c.secrets[strings.ToLower(k)] = true
		}
	}
}

// WithLogMessage sets the message of each line (default "access").
func WithLogMessage(msg string) AccessLogOption {
	return func(c *accessLogConfig) { c.message = msg }
}

// AccessLog returns middleware that writes one slog line per call or event
// to l (nil means slog.Default()), after it completes, with: service,
// endpoint, transport, side (server, client or consumer), code, duration,
// trace_id and span_id (of the span in the context; put Tracing before
// AccessLog in the chain), peer, and for events topic, message_id and
// attempt. A call that succeeded logs at Info, one that failed with a
// caller-fault code at Warn, with a server-fault code at Error (plus the
// error text). Bodies are never logged; metadata only with
// WithLoggedMetadata, secrets redacted.
func AccessLog(l *slog.Logger, opts ...AccessLogOption) middleware.Middleware {
	cfg := accessLogConfig{secrets: map[string]bool{}, message: "access"}
	for _, k := range DefaultSecretHeaders {
		cfg.secrets[k] = true
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			call, ok := transport.CallFromContext(ctx)
			if !ok {
				return next(ctx, req)
			}
			began := time.Now()
			resp, err := next(ctx, req)
			end := time.Now()
			took := end.Sub(began)
			logger := l
			if logger == nil {
				logger = slog.Default()
			}
			h := logger.Handler()
			level := levelOf(err)
			if !h.Enabled(ctx, level) {
				return resp, err
			}
			side := "server"
			if call.Client {
				side = "client"
			}
			attrs := make([]slog.Attr, 0, 16)
			d, dok := deliveryOf(ctx, call)
			event := isEvent(call, d, dok)
			if event {
				side = "consumer"
			}
			attrs = append(attrs,
				slog.String("service", call.Service),
				slog.String("endpoint", call.Endpoint),
				slog.String("transport", call.Kind.String()),
				slog.String("side", side),
				slog.String("code", codeName(err)),
				slog.Duration("duration", took),
			)
			if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
				tid, sid := idStrings(sc)
				attrs = append(attrs, slog.String("trace_id", tid), slog.String("span_id", sid))
			}
			if call.Peer != "" {
				attrs = append(attrs, slog.String("peer", call.Peer))
			}
			if event {
				attrs = append(attrs, slog.String("topic", d.Topic), slog.String("message_id", d.ID), slog.Int("attempt", d.Attempt))
			}
			if err != nil && level >= slog.LevelError {
				attrs = append(attrs, slog.String("error", err.Error()))
			} else if err != nil {
				attrs = append(attrs, slog.String("error", errs.FromError(err).Message()))
			}
			if cfg.metadata && call.Request != nil {
				var md []any
				for _, k := range call.Request.Keys() {
					if cfg.secrets[k] {
						md = append(md, slog.String(k, Redacted))
						continue
					}
					md = append(md, slog.Any(k, call.Request.Values(k)))
				}
				attrs = append(attrs, slog.Group("metadata", md...))
			}
			// The handler directly, with the time the call ended: the
			// logger would read the clock again and walk the stack for a
			// source position that is always this line.
			r := slog.NewRecord(end, level, cfg.message, 0)
			r.AddAttrs(attrs...)
			_ = h.Handle(ctx, r)
			return resp, err
		}
	}
}

// levelOf returns Info for success, Error for server-fault codes and Warn
// for the rest (the caller's fault).
func levelOf(err error) slog.Level {
	switch {
	case err == nil:
		return slog.LevelInfo
	case serverFault(errs.CodeOf(err)):
		return slog.LevelError
	}
	return slog.LevelWarn
}
