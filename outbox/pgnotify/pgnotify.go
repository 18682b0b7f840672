// Package pgnotify wakes an outbox relay at every PostgreSQL commit that
// stored events, wherever it was made: the outbox's trigger NOTIFYs
// channel outbox.NotifyChannel at commit (never for a rolled-back
// transaction), and a Listener LISTENs on it over one connection of the
// relay's database, which must use pgx's stdlib driver
// (github.com/jackc/pgx/v5/stdlib):
//
//	relay := outbox.NewRelay(db, outbox.WithNotifier(pgnotify.New(db)))
//
// Without it, a relay learns of events committed in other processes at its
// next poll (outbox.WithPollInterval).
package pgnotify

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"

	"github.com/ferry-go/ferry/outbox"
	"github.com/jackc/pgx/v5/stdlib"
)

// Listener is an outbox.Notifier on PostgreSQL's LISTEN/NOTIFY.
type Listener struct {
	db      *sql.DB
	channel string
}

var _ outbox.Notifier = (*Listener)(nil)

// New returns a listener on db's outbox channel; it holds one connection
// of db while it listens.
func New(db *sql.DB) *Listener { return &Listener{db: db, channel: outbox.NotifyChannel} }

// Listen LISTENs, calls wake once listening (for what was committed
// before) and at every notification, until ctx ends or the connection
// fails. The connection is closed afterwards, never handed back to the
// pool still listening.
func (l *Listener) Listen(ctx context.Context, wake func()) error {
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("pgnotify: connect: %w", err)
	}
	defer conn.Close()
	var lerr error
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			lerr = fmt.Errorf("pgnotify: the database's driver connection is %T: want pgx's stdlib driver (github.com/jackc/pgx/v5/stdlib)", dc)
			return lerr
		}
		pc := c.Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+l.channel); err != nil {
			lerr = fmt.Errorf("pgnotify: listen: %w", err)
			return driver.ErrBadConn
		}
		wake()
		for {
			if _, err := pc.WaitForNotification(ctx); err != nil {
				if ctx.Err() != nil {
					lerr = ctx.Err()
				} else {
					lerr = fmt.Errorf("pgnotify: wait: %w", err)
				}
				return driver.ErrBadConn // drop the connection: it still listens
			}
			wake()
		}
	})
	if lerr != nil {
		return lerr
	}
	return err
}
