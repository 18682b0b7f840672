// Package ratelimit is Ferry middleware that limits calls per key — the
// authenticated principal, the peer IP or a metadata value — with a token
// bucket (golang.org/x/time/rate) per key.
//
// A call over its key's limit is rejected before the handler with
// errs.ResourceExhausted ("rate limit exceeded") and a retry-after reply
// metadata value in whole seconds, which the HTTP transport sends as the
// Retry-After header of its 429 reply, gRPC as reply metadata (plus
// grpc-retry-pushback-ms) and NATS as a reply header. middleware.Retry on
// the calling side honours both.
//
//	l, err := ratelimit.New(10, 20, ratelimit.WithKey(ratelimit.ByPrincipal())) // 10/s, bursts of 20
//	if err != nil { ... }
//	srv := server.New("orders", server.WithMiddleware(a.Require(), l.Middleware()))
//
// Memory stays bounded when keys churn: limiters live in an LRU of at most
// WithMaxKeys entries (default 10 000), and the least recently used one is
// dropped when a new key arrives at a full table. Nothing runs in the
// background. A limiter idle for burst/rate is full again anyway, so
// dropping it forgets nothing; only a table too small for the keys active
// at once lets an evicted, busy key start again with a full bucket, so size
// WithMaxKeys above the number of callers active within burst/rate.
//
// Calls for which the key function finds no key (no principal, no peer —
// NATS carries no peer address — or no such metadata) share one bucket
// under the empty key, so missing a key never means unlimited.
package ratelimit
