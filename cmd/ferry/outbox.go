package main

import (
	"fmt"

	"github.com/ferry-go/ferry/inbox"
	"github.com/ferry-go/ferry/outbox"
	"github.com/spf13/cobra"
)

func newOutboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "Work with the transactional outbox and inbox tables",
		Long: `The outbox (package outbox) stores events in the service's own database transaction for a relay
to publish; the inbox (package inbox) records the messages a consumer has processed. Both keep
their tables in the service's database, PostgreSQL or SQLite.`,
		Example: `  ferry outbox schema postgres > migrations/0007_ferry_outbox.sql`,
		Args:    args(0, 0),
		RunE:    runE(func(cmd *cobra.Command, _ []string) error { return usagef("missing subcommand (schema)") }),
	}
	cmd.AddCommand(newOutboxSchemaCmd())
	return cmd
}

func newOutboxSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema postgres|sqlite",
		Short: "Print the SQL that creates the outbox and inbox tables",
		Long: `Print the migration that creates the outbox's tables (ferry_outbox, and ferry_outbox_lease on
SQLite; on PostgreSQL also the trigger that NOTIFYs the relay at commit) and the inbox's
(ferry_inbox), for a migration tool of your own. Every statement is idempotent. It is what the
relay and the inbox run at start unless told not to (outbox.WithoutMigrate,
inbox.WithoutMigrate), and what outbox.Migrate and inbox.Migrate run.`,
		Example: `  ferry outbox schema postgres
  ferry outbox schema sqlite | sqlite3 app.db`,
		Args: args(1, 1, "dialect"),
		RunE: runE(func(cmd *cobra.Command, a []string) error {
			var d outbox.Dialect
			switch a[0] {
			case "postgres", "postgresql":
				d = outbox.Postgres
			case "sqlite", "sqlite3":
				d = outbox.SQLite
			default:
				return usagef("unknown dialect %q: want postgres or sqlite", a[0])
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "-- Ferry outbox (package outbox), %s\n%s\n-- Ferry inbox (package inbox), %s\n%s",
				d.Name(), d.Schema(), d.Name(), inbox.Schema(d))
			return err
		}),
	}
}
