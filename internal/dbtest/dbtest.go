// Package dbtest gives tests real databases: a SQLite file of the test
// (modernc.org/sqlite, pure Go, always there) and a schema of its own on a
// PostgreSQL server (the pgx stdlib driver), which scripts/install-postgres
// installs and starts; a PostgreSQL test skips, naming that script, where
// no server answers.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// DefaultPostgresURL is the server scripts/install-postgres starts, used
// when FERRY_POSTGRES_URL is not set.
const DefaultPostgresURL = "postgres://ferry:ferry@127.0.0.1:5432/ferry?sslmode=disable"

// SkipMessage is what a PostgreSQL test says when no server answers.
const SkipMessage = "no PostgreSQL server at $FERRY_POSTGRES_URL (default " + DefaultPostgresURL + "): run scripts/install-postgres (Debian: apt-get install postgresql) to run the PostgreSQL tests"

// SQLiteURL returns the data source name of a new SQLite database file in
// the test's temporary directory: write-ahead logging, so readers do not
// wait for the writer, and a busy timeout of a minute, so concurrent
// writers queue instead of failing with SQLITE_BUSY — SQLite's busy wait is
// not fair, and with the race detector on a loaded 2-core machine a writer
// can lose the lock for longer than the usual few seconds.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return SQLiteFile(filepath.Join(t.TempDir(), "test.db"))
}

// SQLiteFile is the data source name of the SQLite database at path, with
// the settings of SQLiteURL.
func SQLiteFile(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(60000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// SQLite opens a new SQLite database for the test, closed at its end.
func SQLite(t testing.TB) *sql.DB {
	t.Helper()
	return Open(t, "sqlite", SQLiteURL(t))
}

// PostgresURL returns the URL of a new, empty schema on the PostgreSQL
// server, first on the search path of every connection made with it, and
// dropped at the test's end; or skips the test with SkipMessage.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("FERRY_POSTGRES_URL")
	if base == "" {
		base = DefaultPostgresURL
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		t.Skipf("%s (%v)", SkipMessage, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("dbtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("dbtest: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("dbtest: FERRY_POSTGRES_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Postgres opens a new schema on the PostgreSQL server for the test (see
// PostgresURL), closed and dropped at its end.
func Postgres(t testing.TB) *sql.DB {
	t.Helper()
	return Open(t, "pgx", PostgresURL(t))
}

// Open opens driver's database at dsn, checks that it answers, and closes
// it at the test's end.
func Open(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", driver, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		t.Fatalf("dbtest: %s: %v", driver, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Driver names the database/sql driver of a data source name made here:
// "pgx" for a postgres:// URL, "sqlite" otherwise.
func Driver(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return "pgx"
	}
	return "sqlite"
}

// Each runs f as a subtest on each dialect: "sqlite" and "postgres".
func Each(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, SQLiteURL(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, PostgresURL(t)) })
}
