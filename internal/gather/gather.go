// Package gather collects the many replies to one NATS request, as the
// $SRV discovery subjects give them: every instance of every service
// answers the same request.
//
// It is the logic of cmd/ferry's gather, shared so that the development
// dashboard (dev/dashboard) need not copy it; cmd/ferry can switch to it.
package gather

import (
	"context"
	"errors"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/nats-io/nats.go"
)

// DefaultQuiet is how long Replies waits for one more reply after the last
// unless told otherwise: every instance answers at once, so a pause means
// all have.
const DefaultQuiet = 300 * time.Millisecond

// Replies publishes an empty request on subject and collects the replies
// until none has come for quiet (DefaultQuiet when 0 or less) after the
// last one, until want replies have come (want > 0), or until ctx ends.
// The first reply may take until ctx's deadline. No responders ends it at
// once with none. Errors are Unavailable *errs.Error values; the replies
// collected before an error are returned with it.
func Replies(ctx context.Context, nc *nats.Conn, subject string, quiet time.Duration, want int) ([][]byte, error) {
	if quiet <= 0 {
		quiet = DefaultQuiet
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, errs.Newf(errs.Unavailable, "subscribe to replies: %v", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return nil, errs.Newf(errs.Unavailable, "publish %s: %v", subject, err)
	}
	var out [][]byte
	for want <= 0 || len(out) < want {
		wait := quiet
		if len(out) == 0 {
			wait = time.Hour // bounded by ctx
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		msg, err := sub.NextMsgWithContext(wctx)
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			return out, nil // quiet, or out of time
		case errors.Is(err, nats.ErrNoResponders):
			return out, nil
		case err != nil:
			return out, errs.Newf(errs.Unavailable, "waiting for answers on %s: %v", subject, err)
		}
		out = append(out, msg.Data)
	}
	return out, nil
}
