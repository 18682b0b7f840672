package fault_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	jsbroker "github.com/ferry-go/ferry/broker/jetstream"
	"github.com/ferry-go/ferry/internal/dbtest"
	"github.com/ferry-go/ferry/outbox"
	"github.com/ferry-go/ferry/outbox/pgnotify"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// relayEnv makes the test binary the relay process of TestOutboxFault
// (TestRelayProcess acts only when it is set): its value is a relaySpec in
// JSON.
const relayEnv = "FERRY_OUTBOX_FAULT_RELAY"

// relaySpec is what the relay process is told.
type relaySpec struct {
	DSN  string `json:"dsn"`
	NATS string `json:"nats"`
}

// The relay process's settings: short waits, so that a fault heals in a
// fraction of a second rather than the defaults' seconds.
const (
	relayPoll           = 250 * time.Millisecond
	relayMaxBackoff     = 500 * time.Millisecond
	relayPublishTimeout = time.Second
	// relayLeaseTTL is how long a killed relay keeps the SQLite lease: the
	// new process takes over once it has run out. It must exceed the
	// publish timeout by more than a second, or a relay may never publish
	// (a round publishes only while more than the publish timeout and a
	// second of lease are left).
	relayLeaseTTL = 3 * time.Second
)

// TestRelayProcess is the relay process of TestOutboxFault: the test
// binary re-executed with relayEnv set. It runs an outbox relay on the
// database, publishing to JetStream over a connection that reconnects for
// ever, prints "ready <pid>" and relays until its stdin closes (the
// parent's clean-up) or it is killed.
func TestRelayProcess(t *testing.T) {
	v := os.Getenv(relayEnv)
	if v == "" {
		t.Skip("the relay process of TestOutboxFault; runs only when that test starts it")
	}
	var spec relaySpec
	if err := json.Unmarshal([]byte(v), &spec); err != nil {
		t.Fatalf("%s: %v", relayEnv, err)
	}
	if err := serveRelay(spec); err != nil {
		t.Fatal(err)
	}
}

func serveRelay(spec relaySpec) error {
	ctx := context.Background()
	driver := dbtest.Driver(spec.DSN)
	db, err := sql.Open(driver, spec.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	// The server may be down when this process starts (a relay restarted
	// during a broker outage): connect in the background and buffer.
	nc, err := nats.Connect(spec.NATS, nats.Name("outbox-fault-relay"), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// The parent provisions the stream: this broker only publishes, so it
	// needs no word with the server to start.
	b, err := jsbroker.New(ctx, js, jsbroker.WithoutDeadLetterStream(), jsbroker.WithLogger(logger))
	if err != nil {
		return err
	}
	defer b.Close(ctx)
	opts := []outbox.Option{
		outbox.WithBroker(b), outbox.WithLogger(logger),
		outbox.WithPollInterval(relayPoll), outbox.WithMaxBackoff(relayMaxBackoff),
		outbox.WithPublishTimeout(relayPublishTimeout), outbox.WithLeaseTTL(relayLeaseTTL),
	}
	if driver == "pgx" {
		opts = append(opts, outbox.WithNotifier(pgnotify.New(db)))
	}
	r := outbox.NewRelay(db, opts...)
	if err := r.Start(ctx); err != nil {
		return err
	}
	fmt.Printf("ready %d\n", os.Getpid())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes stdin; a SIGKILL ends it sooner
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return r.Stop(sctx)
}
