package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/telemetry"
	"github.com/ferry-go/ferry/transport"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/propagation"
)

// Execer stores an event: a *sql.Tx — the point of an outbox — or a
// *sql.Conn or *sql.DB, which store it on their own.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// propagator stores the caller's trace context with the event, so that the
// consumer's span joins the trace of the request that committed it.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Publish stores v, encoded as broker.Publish would send it, to be
// published on topic by a Relay once tx commits — or never, if it rolls
// back. The options are broker.Publish's: broker.WithID sets the message
// ID, which the relay gives the broker as its de-duplication ID (default:
// a new unique ID); broker.WithKey an ordering key (the relay publishes
// the events of one key in the order they were stored); broker.WithHeader
// and the metadata of ctx travel as headers, with the trace context of ctx.
//
// A relay in this process learns of the event at once if the transaction
// was run by Transact or followed by Notify; a relay on PostgreSQL with a
// listener (package pgnotify) at commit wherever it runs; any other relay
// at its next poll.
func Publish[T any](ctx context.Context, tx Execer, topic string, v *T, opts ...broker.PublishOption) error {
	if tx == nil {
		return errs.Newf(errs.InvalidArgument, "outbox: publish %q: nil transaction", topic)
	}
	m, err := broker.NewMessage(ctx, topic, v, opts...)
	if err != nil {
		return err
	}
	return Store(ctx, tx, m)
}

// Store stores an encoded message, as Publish does once it has encoded
// one; an empty ID is given a new unique one (and set in m).
func Store(ctx context.Context, tx Execer, m *broker.Message) error {
	if m == nil {
		return errs.New(errs.InvalidArgument, "outbox: store: nil message")
	}
	if err := broker.ValidTopic(m.Topic, false); err != nil {
		return err
	}
	if m.ID == "" {
		m.ID = nuid.Next()
	}
	h := m.Header.Clone()
	if h == nil {
		h = transport.Metadata{}
	}
	propagator.Inject(ctx, telemetry.HeaderCarrier{H: h})
	headers, err := encodeHeaders(h)
	if err != nil {
		return errs.Newf(errs.InvalidArgument, "outbox: message %s on %q: headers: %v", m.ID, m.Topic, err)
	}
	data := m.Data
	if data == nil {
		data = []byte{} // the column is NOT NULL
	}
	if _, err := tx.ExecContext(ctx, insert, m.ID, m.Topic, m.Key, headers, data, time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("outbox: store message %s on %q: %w", m.ID, m.Topic, err)
	}
	return nil
}

func encodeHeaders(h transport.Metadata) (string, error) {
	if len(h) == 0 {
		return "", nil
	}
	b, err := json.Marshal(map[string][]string(h))
	return string(b), err
}

func decodeHeaders(s string) (transport.Metadata, error) {
	if s == "" {
		return nil, nil
	}
	var h map[string][]string
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, err
	}
	return transport.Metadata(h), nil
}

// Transact runs fn in a transaction of db and commits it if fn returns
// nil, or rolls it back; once committed, the relays of this process on db
// are woken, so the events fn stored go out at once. A panic in fn rolls
// back and goes on.
func Transact(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		done = true
		if rb := tx.Rollback(); rb != nil && !errors.Is(rb, sql.ErrTxDone) {
			return errors.Join(err, rb)
		}
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return err
	}
	Notify(db)
	return nil
}

// Notify wakes the relays of this process that publish from db: call it
// after committing a transaction that stored events yourself (Transact
// does).
func Notify(db *sql.DB) {
	local.Lock()
	rs := local.m[db]
	local.Unlock()
	for _, r := range rs {
		r.Wake()
	}
}

// local is the relays of this process, by database.
var local struct {
	sync.Mutex
	m map[*sql.DB][]*Relay
}

func register(r *Relay) {
	local.Lock()
	defer local.Unlock()
	if local.m == nil {
		local.m = map[*sql.DB][]*Relay{}
	}
	local.m[r.db] = append(local.m[r.db], r)
}

func unregister(r *Relay) {
	local.Lock()
	defer local.Unlock()
	rs := local.m[r.db]
	for i, x := range rs {
		if x == r {
			rs = append(rs[:i:i], rs[i+1:]...)
			break
		}
	}
	if len(rs) == 0 {
		delete(local.m, r.db)
	} else {
		local.m[r.db] = rs
	}
}
