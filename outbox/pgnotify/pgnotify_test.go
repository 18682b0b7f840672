package pgnotify_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/broker/memory"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/internal/dbtest"
	"github.com/ferry-go/ferry/outbox"
	"github.com/ferry-go/ferry/outbox/pgnotify"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

type Order struct {
	Seq int `json:"seq"`
}

// A relay that polls once an hour publishes at once what another process
// commits (here another connection pool, committing with plain
// tx.Commit, which wakes nobody in-process): the NOTIFY of the commit.
func TestCommitElsewhereWakesTheRelay(t *testing.T) {
	dsn := dbtest.PostgresURL(t)
	relayDB := dbtest.Open(t, "pgx", dsn)
	appDB := dbtest.Open(t, "pgx", dsn)
	ctx := context.Background()
	if err := outbox.Migrate(ctx, appDB, outbox.Postgres); err != nil {
		t.Fatal(err)
	}
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	var got atomic.Int64
	cfg, _ := broker.NewSubscribeConfig("orders.placed")
	sub, err := b.Subscribe(ctx, "orders.placed", func(context.Context, *broker.Delivery) error {
		got.Add(1)
		return nil
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Drain(ctx)
	r := outbox.NewRelay(relayDB, outbox.WithBroker(b), outbox.WithPollInterval(time.Hour),
		outbox.WithNotifier(pgnotify.New(relayDB)), outbox.WithLogger(slog.New(slog.DiscardHandler)))
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Stop(ctx)
	for i := range 5 {
		tx, err := appDB.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := outbox.Publish(ctx, tx, "orders.placed", &Order{Seq: i}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		ferrytest.Eventually(t, fmt.Sprintf("event %d delivered through NOTIFY", i), func() bool { return got.Load() == int64(i+1) })
	}
}

// A listener on a database that is not PostgreSQL through pgx says so.
func TestListenNeedsPgx(t *testing.T) {
	db := dbtest.SQLite(t)
	err := pgnotify.New(db).Listen(context.Background(), func() {})
	if err == nil || !strings.Contains(err.Error(), "pgx's stdlib driver") {
		t.Fatalf("Listen on SQLite = %v, want an error naming pgx's stdlib driver", err)
	}
}

// Listen ends when its context does, and hands no listening connection
// back to the pool.
func TestListenEndsWithItsContext(t *testing.T) {
	db := dbtest.Postgres(t)
	ctx, cancel := context.WithCancel(context.Background())
	woke := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- pgnotify.New(db).Listen(ctx, func() {
			select {
			case woke <- struct{}{}:
			default:
			}
		})
	}()
	<-woke // listening
	cancel()
	if err := <-done; err == nil {
		t.Fatal("Listen returned nil after its context ended")
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_listening_channels()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("a pooled connection still listens on %d channels", n)
	}
}
