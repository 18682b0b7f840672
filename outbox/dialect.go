package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/ferry-go/ferry/internal/sqlmigrate"
)

// Dialect is the SQL a database speaks. Ferry has two: Postgres
// (PostgreSQL 13 or newer, through any database/sql driver — pgx's stdlib
// among them) and SQLite (modernc.org/sqlite, or any SQLite 3.35 or newer).
type Dialect struct {
	name string

	schema []string // the migration, statement by statement

	// Relay queries.
	claim       string // the next batch of unsent rows
	markSent    string // $1 sent time, $2 the ids (dialect's list form)
	markFail    string // $1 id, $2 error, $3 dead
	cleanup     string // $1 sent before, $2 limit
	backlog     string // count and oldest created_us of unsent rows
	older       string // Postgres: per key, the oldest unsent row outside the batch older than the batch's last
	hidden      string // Postgres: whether unsent rows are left that nobody claimed (run after the claim, in its transaction)
	markClaimed string // Postgres: $1 relay, $2 TTL (µs), $3 ids
	release     string // Postgres: $1 ids claimed and not tried
}

// pgNow is PostgreSQL's clock in microseconds since the epoch: claims are
// stamped and compared on the database's clock, never a replica's.
const pgNow = `(extract(epoch FROM clock_timestamp()) * 1000000)::bigint`

// Name is "postgres" or "sqlite".
func (d Dialect) Name() string { return d.name }

// String implements fmt.Stringer.
func (d Dialect) String() string { return d.name }

// Schema returns the migration that creates the outbox tables, for a user
// who runs migrations with a tool of their own: the statements Migrate
// runs, each ending with a semicolon. Every statement is idempotent.
func (d Dialect) Schema() string {
	return strings.Join(d.schema, ";\n\n") + ";\n"
}

// The dialects.
var (
	// Postgres: rows are ordered by the transaction that stored them
	// (xid8, pg_current_xact_id) and its insertion order, and a row is
	// published only once every transaction that could still store an
	// earlier one has ended. A replica claims a batch in a short
	// transaction (FOR UPDATE SKIP LOCKED, then a claim stamped with the
	// database's clock for the lease TTL), keeping only the keys with no
	// older unsent row claimed elsewhere, and publishes outside any
	// transaction, so it never holds back other transactions' visibility
	// while a broker is slow. A statement trigger NOTIFYs channel
	// "ferry_outbox" at every commit that stored events.
	Postgres = Dialect{
		name: "postgres",
		schema: []string{
			`CREATE TABLE IF NOT EXISTS ferry_outbox (
	id         BIGSERIAL PRIMARY KEY,
	txid       XID8 NOT NULL DEFAULT pg_current_xact_id(),
	message_id TEXT NOT NULL,
	topic      TEXT NOT NULL,
	key        TEXT NOT NULL DEFAULT '',
	headers    TEXT NOT NULL DEFAULT '',
	payload    BYTEA NOT NULL,
	created_us BIGINT NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	sent_us    BIGINT,
	dead       BOOLEAN NOT NULL DEFAULT FALSE,
	claimed_by    TEXT NOT NULL DEFAULT '',
	claimed_until BIGINT NOT NULL DEFAULT 0
)`,
			`CREATE INDEX IF NOT EXISTS ferry_outbox_unsent ON ferry_outbox (txid, id) WHERE sent_us IS NULL AND NOT dead`,
			`CREATE INDEX IF NOT EXISTS ferry_outbox_key ON ferry_outbox (key, txid, id) WHERE sent_us IS NULL AND NOT dead AND key <> ''`,
			`CREATE INDEX IF NOT EXISTS ferry_outbox_sent ON ferry_outbox (sent_us) WHERE sent_us IS NOT NULL`,
			`CREATE OR REPLACE FUNCTION ferry_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('` + NotifyChannel + `', '');
	RETURN NULL;
END
$$`,
			`DROP TRIGGER IF EXISTS ferry_outbox_notify ON ferry_outbox`,
			`CREATE TRIGGER ferry_outbox_notify AFTER INSERT ON ferry_outbox FOR EACH STATEMENT EXECUTE FUNCTION ferry_outbox_notify()`,
		},
		claim: `SELECT id, txid::text, message_id, topic, key, headers, payload, created_us, attempts
FROM ferry_outbox
WHERE sent_us IS NULL AND NOT dead AND claimed_until < ` + pgNow + `
	AND txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY txid, id
LIMIT $1
FOR UPDATE SKIP LOCKED`,
		hidden:      `SELECT EXISTS (SELECT 1 FROM ferry_outbox WHERE sent_us IS NULL AND NOT dead AND claimed_until < ` + pgNow + `)`,
		markClaimed: `UPDATE ferry_outbox SET claimed_by = $1, claimed_until = ` + pgNow + ` + $2 WHERE id = ANY($3::bigint[])`,
		release:     `UPDATE ferry_outbox SET claimed_until = 0 WHERE id = ANY($1::bigint[])`,
		markSent:    `UPDATE ferry_outbox SET sent_us = $1, attempts = attempts + 1, last_error = '' WHERE id = ANY($2::bigint[])`,
		markFail:    `UPDATE ferry_outbox SET attempts = attempts + 1, last_error = $2, dead = $3, claimed_until = 0 WHERE id = $1`,
		cleanup:     `DELETE FROM ferry_outbox WHERE id IN (SELECT id FROM ferry_outbox WHERE sent_us IS NOT NULL AND sent_us < $1 LIMIT $2)`,
		backlog:     `SELECT count(*), COALESCE(min(created_us), 0) FROM ferry_outbox WHERE sent_us IS NULL AND NOT dead`,
		older: `SELECT DISTINCT ON (o.key) o.key, o.txid::text, o.id
FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(k, tx, id)
JOIN ferry_outbox o ON o.key = u.k
WHERE o.sent_us IS NULL AND NOT o.dead AND (o.txid, o.id) < (u.tx::xid8, u.id) AND NOT (o.id = ANY($4::bigint[]))
ORDER BY o.key, o.txid, o.id`,
	}

	// SQLite: one writer at a time, so row ids are in commit order; one
	// relay replica at a time holds a lease (table ferry_outbox_lease) and
	// publishes, the others wait to take over.
	SQLite = Dialect{
		name: "sqlite",
		schema: []string{
			`CREATE TABLE IF NOT EXISTS ferry_outbox (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	message_id TEXT NOT NULL,
	topic      TEXT NOT NULL,
	key        TEXT NOT NULL DEFAULT '',
	headers    TEXT NOT NULL DEFAULT '',
	payload    BLOB NOT NULL,
	created_us INTEGER NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	sent_us    INTEGER,
	dead       INTEGER NOT NULL DEFAULT 0
)`,
			`CREATE INDEX IF NOT EXISTS ferry_outbox_unsent ON ferry_outbox (id) WHERE sent_us IS NULL AND dead = 0`,
			`CREATE INDEX IF NOT EXISTS ferry_outbox_sent ON ferry_outbox (sent_us) WHERE sent_us IS NOT NULL`,
			`CREATE TABLE IF NOT EXISTS ferry_outbox_lease (
	name       TEXT PRIMARY KEY,
	owner      TEXT NOT NULL DEFAULT '',
	expires_us INTEGER NOT NULL DEFAULT 0
)`,
			`INSERT INTO ferry_outbox_lease (name) VALUES ('relay') ON CONFLICT DO NOTHING`,
		},
		claim: `SELECT id, '', message_id, topic, key, headers, payload, created_us, attempts
FROM ferry_outbox
WHERE sent_us IS NULL AND dead = 0
ORDER BY id
LIMIT $1`,
		markSent: `UPDATE ferry_outbox SET sent_us = $1, attempts = attempts + 1, last_error = '' WHERE id IN (SELECT value FROM json_each($2))`,
		markFail: `UPDATE ferry_outbox SET attempts = attempts + 1, last_error = $2, dead = $3 WHERE id = $1`,
		cleanup:  `DELETE FROM ferry_outbox WHERE id IN (SELECT id FROM ferry_outbox WHERE sent_us IS NOT NULL AND sent_us < $1 LIMIT $2)`,
		backlog:  `SELECT count(*), COALESCE(min(created_us), 0) FROM ferry_outbox WHERE sent_us IS NULL AND dead = 0`,
	}
)

// NotifyChannel is the PostgreSQL channel the outbox trigger notifies at
// every commit that stored events (package pgnotify listens on it).
const NotifyChannel = "ferry_outbox"

// insert stores one event; the same statement on both dialects.
const insert = `INSERT INTO ferry_outbox (message_id, topic, key, headers, payload, created_us) VALUES ($1, $2, $3, $4, $5, $6)`

// DialectOf names the dialect of db from its driver's package: PostgreSQL
// for pgx and lib/pq, SQLite for modernc.org/sqlite and mattn/go-sqlite3.
// Another driver needs WithDialect.
func DialectOf(db *sql.DB) (Dialect, error) {
	t := reflect.TypeOf(db.Driver())
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pkg := t.PkgPath()
	switch {
	case strings.Contains(pkg, "jackc/pgx"), strings.Contains(pkg, "lib/pq"):
		return Postgres, nil
	case strings.Contains(pkg, "sqlite"):
		return SQLite, nil
	}
	return Dialect{}, fmt.Errorf("outbox: cannot tell the SQL dialect of driver %s.%s: pass outbox.WithDialect(outbox.Postgres) or outbox.WithDialect(outbox.SQLite)", pkg, t.Name())
}

// Migrate creates the outbox tables (and, on PostgreSQL, its notify
// trigger) in db if they are not there: the statements of Dialect.Schema,
// in one transaction. It is idempotent, and on PostgreSQL safe to run from
// several processes at once (an advisory lock serialises them). A Relay
// runs it at start unless told not to (WithoutMigrate).
func Migrate(ctx context.Context, db *sql.DB, d Dialect) error {
	if d.name == "" {
		return errors.New("outbox: migrate: no dialect")
	}
	return sqlmigrate.Run(ctx, db, d.name == Postgres.name, d.schema, "outbox")
}
