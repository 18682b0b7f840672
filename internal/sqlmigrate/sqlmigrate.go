// Package sqlmigrate runs the idempotent migrations of the outbox and the
// inbox: one transaction, and on PostgreSQL an advisory lock, since CREATE
// … IF NOT EXISTS races with itself across sessions.
package sqlmigrate

import (
	"context"
	"database/sql"
	"fmt"
)

// lockKey is the advisory lock the migrations of Ferry's tables take.
const lockKey = 7306081297166120817

// Run runs stmts in one transaction; postgres takes the advisory lock
// first. what names the table set in errors ("outbox").
func Run(ctx context.Context, db *sql.DB, postgres bool, stmts []string, what string) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: migrate: %w", what, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockKey)); err != nil {
			return fmt.Errorf("%s: migrate: %w", what, err)
		}
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: migrate: %w (in %.60q…)", what, err, s)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: migrate: %w", what, err)
	}
	return nil
}
