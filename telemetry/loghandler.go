package telemetry

import (
	"context"
	"encoding/hex"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// LogHandler wraps h so that every record logged with a context holding a
// span (slog.InfoContext(ctx, …) in a handler, say) carries its trace_id
// and span_id, and a log line can be found from a trace and back. Records
// that already name a trace_id are left as they are.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		has := false
		r.Attrs(func(a slog.Attr) bool {
			has = a.Key == "trace_id"
			return !has
		})
		if !has {
			r = r.Clone()
			tid, sid := idStrings(sc)
			r.AddAttrs(slog.String("trace_id", tid), slog.String("span_id", sid))
		}
	}
	return l.Handler.Handle(ctx, r)
}

func (l logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(attrs)}
}

func (l logHandler) WithGroup(name string) slog.Handler { return logHandler{l.Handler.WithGroup(name)} }

// idStrings returns sc's trace and span IDs in hex, as TraceID.String and
// SpanID.String do, in one allocation instead of two.
func idStrings(sc trace.SpanContext) (traceID, spanID string) {
	var buf [48]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(buf[:32], tid[:])
	hex.Encode(buf[32:], sid[:])
	s := string(buf[:])
	return s[:32], s[32:]
}
