package main

import (
	"context"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/internal/dbtest"
)

// The printed schema is a migration a user can run: applied to an empty
// database, every table is there, and applied again it changes nothing.
func TestOutboxSchema(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		r := ferryCmd(t, "outbox", "schema", map[string]string{"pgx": "postgres", "sqlite": "sqlite"}[dbtest.Driver(dsn)])
		r.want(t, 0)
		db := dbtest.Open(t, dbtest.Driver(dsn), dsn)
		ctx := context.Background()
		for range 2 {
			for _, stmt := range splitSQL(r.stdout) {
				if _, err := db.ExecContext(ctx, stmt); err != nil {
					t.Fatalf("%v\n%s", err, stmt)
				}
			}
		}
		for _, table := range []string{"ferry_outbox", "ferry_inbox"} {
			var n int
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				t.Errorf("table %s: %v", table, err)
			}
		}
	})
	ferryCmd(t, "outbox", "schema", "oracle").want(t, 2, `unknown dialect "oracle"`)
}

// splitSQL splits a migration into statements: at a semicolon that ends a
// line outside a $$ … $$ body.
func splitSQL(s string) []string {
	var out []string
	var cur strings.Builder
	inBody := false
	for _, line := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		if strings.Count(line, "$$")%2 == 1 {
			inBody = !inBody
		}
		cur.WriteString(line)
		if !inBody && strings.HasSuffix(strings.TrimSpace(line), ";") {
			if st := strings.TrimSpace(cur.String()); st != ";" {
				out = append(out, st)
			}
			cur.Reset()
		}
	}
	return out
}
