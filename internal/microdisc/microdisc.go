// Package microdisc is the asking side of the NATS micro discovery
// protocol ($SRV.PING, $SRV.INFO, $SRV.STATS), shared by the ferry command
// and registry/natssrv. The answering side is transport/nats.
package microdisc

import (
	"context"
	"errors"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/nats-io/nats.go"
)

// DefaultQuiet is how long Gather waits for one more reply after the last
// unless told otherwise.
const DefaultQuiet = 300 * time.Millisecond

// Gather publishes an empty request on subject and collects the replies
// until none has come for quiet (DefaultQuiet when 0 or less) after the
// last one, until want replies have come (want > 0), or until ctx ends:
// every instance answers at once, so a pause means all have. The first
// reply may take until ctx ends. No responders ends it at once with none.
// Errors are Unavailable; the replies gathered so far come with them.
func Gather(ctx context.Context, nc *nats.Conn, subject string, quiet time.Duration, want int) ([][]byte, error) {
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
			wait = time.Hour // the first answer may take until ctx's deadline
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
