package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ferry-go/ferry/errs"
	natsreg "github.com/ferry-go/ferry/registry/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"
)

// defaultNATSURL is where the commands look for NATS without --nats-url or
// $NATS_URL: the embedded server of a service started with ferry.yaml's
// defaults.
const defaultNATSURL = "nats://127.0.0.1:4222"

// discoveryQuiet is how long discovery waits for one more answer after the
// last: every instance answers at once, so a pause means all have.
const discoveryQuiet = 300 * time.Millisecond

// natsFlags are the NATS connection flags shared by the commands.
type natsFlags struct {
	url    string
	bucket string
}

func (n *natsFlags) register(f *pflag.FlagSet, bucket bool) {
	f.StringVar(&n.url, "nats-url", "", "NATS server URL (default $NATS_URL, else "+defaultNATSURL+")")
	if bucket {
		f.StringVar(&n.bucket, "bucket", natsreg.DefaultBucket, "key-value bucket of the NATS registry")
	}
}

func (n *natsFlags) resolvedURL() string {
	switch {
	case n.url != "":
		return n.url
	case os.Getenv("NATS_URL") != "":
		return os.Getenv("NATS_URL")
	}
	return defaultNATSURL
}

// connect connects to NATS within ctx's deadline, without reconnecting: a
// command that loses its connection fails rather than waits.
func (n *natsFlags) connect(ctx context.Context) (*nats.Conn, error) {
	url := n.resolvedURL()
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	nc, err := nats.Connect(url, nats.Name("ferry-cli"), nats.Timeout(timeout), nats.NoReconnect())
	if err != nil {
		return nil, errs.Newf(errs.Unavailable, "cannot connect to NATS at %s: %v", url, err)
	}
	return nc, nil
}

// errNoRegistry says that the registry bucket does not exist.
var errNoRegistry = errors.New("no registry bucket")

// openRegistry opens the registry bucket without creating it: a look-up
// must not leave a bucket behind. A missing bucket is errNoRegistry.
func (n *natsFlags) openRegistry(ctx context.Context, nc *nats.Conn) (jetstream.JetStream, jetstream.KeyValue, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, errs.Newf(errs.Unavailable, "JetStream on %s: %v", n.resolvedURL(), err)
	}
	kv, err := js.KeyValue(ctx, n.bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return nil, nil, fmt.Errorf("%w %q on %s", errNoRegistry, n.bucket, n.resolvedURL())
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount),
		errors.Is(err, nats.ErrNoResponders): // nothing answers the JetStream API
		return nil, nil, fmt.Errorf("%w %q on %s: JetStream is not enabled there", errNoRegistry, n.bucket, n.resolvedURL())
	case err != nil:
		code := errs.CodeOf(err)
		if code == errs.Unknown {
			code = errs.Unavailable
		}
		return nil, nil, errs.Newf(code, "open registry bucket %q on %s: %v", n.bucket, n.resolvedURL(), err)
	}
	return js, kv, nil
}
