package telemetry

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
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
	// With a logger of its own, the line's first attributes are formatted
	// once per endpoint (prefixes); slog.Default() may change, so lines to
	// it are formatted whole each time.
	var pre *prefixes
	if l != nil {
		pre = &prefixes{h: l.Handler()}
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
			if ph := pre.handler(prefixKey{call.Service, call.Endpoint, call.Kind, side}); ph != nil {
				h = ph // service, endpoint, transport and side already formatted
			} else {
				attrs = appendPrefix(attrs, call.Service, call.Endpoint, call.Kind, side)
			}
			attrs = append(attrs,
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

// appendPrefix appends the attributes every access line begins with.
func appendPrefix(attrs []slog.Attr, service, endpoint string, kind transport.Kind, side string) []slog.Attr {
	return append(attrs,
		slog.String("service", service),
		slog.String("endpoint", endpoint),
		slog.String("transport", kind.String()),
		slog.String("side", side),
	)
}

// prefixes holds, per endpoint, h with the attributes an access line
// begins with (appendPrefix) added by WithAttrs. slog's handlers format
// such attributes once, when added, rather than on every line; a line
// then has few enough attributes left for slog.Record to hold them
// without an allocation. Endpoints past maxPrefixes (an event
// subscription with a wildcard sees a topic per message, say) are not
// kept: their lines are formatted whole.
type prefixes struct {
	h slog.Handler
	m sync.Map // prefixKey → slog.Handler
	n atomic.Int32
}

type prefixKey struct {
	service, endpoint string
	kind              transport.Kind
	side              string
}

// maxPrefixes bounds the handlers a prefixes keeps.
const maxPrefixes = 1024

// handler returns the handler for k's lines, or nil if p is nil or full.
func (p *prefixes) handler(k prefixKey) slog.Handler {
	if p == nil {
		return nil
	}
	if h, ok := p.m.Load(k); ok {
		return h.(slog.Handler)
	}
	if p.n.Load() >= maxPrefixes {
		return nil
	}
	h := p.h.WithAttrs(appendPrefix(make([]slog.Attr, 0, 4), k.service, k.endpoint, k.kind, k.side))
	if got, loaded := p.m.LoadOrStore(k, h); loaded {
		return got.(slog.Handler)
	}
	p.n.Add(1)
	return h
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
