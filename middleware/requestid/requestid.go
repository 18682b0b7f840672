package requestid

import (
	"context"

	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	"github.com/nats-io/nuid"
)

// Key is the metadata key that carries the ID.
const Key = "x-request-id"

// MaxLen is the longest incoming ID that is kept.
const MaxLen = 128

type ctxKey struct{}

// NewContext returns a copy of ctx carrying id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the request ID in ctx, or "".
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Generate returns a fresh ID (a NUID: 22 characters, unique without
// coordination).
func Generate() string { return nuid.Next() }

// Valid reports whether id is acceptable from a caller: 1 to MaxLen
// printable ASCII characters.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// New returns server middleware that takes the caller's ID (or makes
// one), puts it in the handler's context and in the reply metadata. On a
// client call it behaves as Client.
func New() middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			call, ok := transport.CallFromContext(ctx)
			if ok && call.Client {
				return propagate(ctx, call, req, next)
			}
			var id string
			if ok && call.Request != nil {
				id = call.Request.Get(Key)
			}
			if !Valid(id) {
				id = Generate()
			}
			if ok && call.Reply != nil {
				call.Reply.Set(Key, id)
			}
			return next(NewContext(ctx, id), req)
		}
	}
}

// Client returns client middleware that sends the context's request ID
// (FromContext) as x-request-id on outgoing calls, or a fresh ID when the
// context has none; an x-request-id the caller set is left alone.
func Client() middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			call, ok := transport.CallFromContext(ctx)
			if !ok || !call.Client {
				return next(ctx, req)
			}
			return propagate(ctx, call, req, next)
		}
	}
}

func propagate(ctx context.Context, call *transport.Call, req any, next middleware.Handler) (any, error) {
	if call.Request == nil {
		return next(ctx, req)
	}
	if id := call.Request.Get(Key); id != "" {
		return next(ctx, req)
	}
	id := FromContext(ctx)
	if id == "" {
		id = Generate()
	}
	call.Request.Set(Key, id)
	return next(ctx, req)
}
