package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/errs"
	"github.com/spf13/cobra"
)

type schemaOptions struct {
	addr    string
	lock    string
	timeout time.Duration
}

func (o *schemaOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "", "the gRPC server at host:port to read the schema from, through its reflection (required)")
	f.StringVar(&o.lock, "lock", "", "the lock file (default <service>.lock.json)")
	f.DurationVar(&o.timeout, "timeout", 5*time.Second, "give up after this long, connecting included")
}

func (o *schemaOptions) lockPath(service string) string {
	if o.lock != "" {
		return o.lock
	}
	return service + ".lock.json"
}

func newSchemaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Guard a service's wire schema against incompatible changes",
		Long: `Lock a service's protobuf schema (the one it derives from its Go types and serves through gRPC
reflection) in a file, and check later versions against it, so a change that breaks clients
built against the old schema fails a build instead of a client.

The lock file is a google.protobuf.FileDescriptorSet in protojson, indented (the service's file
first, then every file it imports): commit it, and review its diff like code. ferry schema lock
writes it; ferry schema check compares the running service with it. In Go tests, without a
running server, ferrytest.SchemaLock does both.`,
		Example: `  ferry schema lock greeter --addr localhost:9090
  ferry schema check greeter --addr localhost:9090`,
		Args: args(0, 0),
		RunE: runE(func(cmd *cobra.Command, _ []string) error { return usagef("missing subcommand (lock or check)") }),
	}
	cmd.AddCommand(newSchemaLockCmd(), newSchemaCheckCmd())
	return cmd
}

func newSchemaLockCmd() *cobra.Command {
	var o schemaOptions
	cmd := &cobra.Command{
		Use:   "lock <service> --addr host:port",
		Short: "Write the lock file of a running service's schema",
		Long: `Read the schema of <service> from the gRPC server at --addr (its reflection) and write it to
the lock file (--lock, default <service>.lock.json), replacing what was there. Run it when a
change is meant to be, after ferry schema check has shown it.`,
		Example: `  ferry schema lock greeter --addr localhost:9090 --lock api/greeter.lock.json`,
		Args:    args(1, 1, "<service>"),
		RunE: runE(func(cmd *cobra.Command, argv []string) error {
			fd, err := reflectFile(cmd.Context(), o.addr, argv[0], o.timeout)
			if err != nil {
				return err
			}
			b, err := protostruct.MarshalLock(fd)
			if err != nil {
				return err
			}
			path := o.lockPath(argv[0])
			if dir := filepath.Dir(path); dir != "." {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s and %d imported files)\n", path, fd.Path(), len(withImports(fd))-1)
			return nil
		}),
	}
	o.register(cmd)
	return cmd
}

func newSchemaCheckCmd() *cobra.Command {
	var o schemaOptions
	cmd := &cobra.Command{
		Use:   "check <service> --addr host:port",
		Short: "Check a running service's schema against its lock file",
		Long: `Compare the schema of <service>, read from the gRPC server at --addr (its reflection), with the
lock file (--lock, default <service>.lock.json) and fail on every change that breaks a client
built against the locked schema:

  - a field renumbered (the same name under another number: what reordering struct fields
    without pb tags does), or a number reused by a field of another name
  - a field's type changed (int32 → int64 and uint32 → uint64 excepted), or its cardinality
    (repeated, map), or its JSON name
  - a field removed whose number is not reserved (keep it with a blank field
    _ struct{} ` + "`pb:\"N,reserved\"`" + `)
  - a method removed, or its streaming changed; a service removed
  - an enum value removed or renumbered

Additions (fields, methods, services, enum values) are compatible, and so is a method's input or
output now being a message of another name: the messages are compared field by field, which is
what the wire sees. Compatible changes are printed to stdout, one a line; breaking ones make the
command fail (exit 1, failed_precondition), listed one a line with the message and field.`,
		Example: `  ferry schema check greeter --addr localhost:9090
  ferry schema check greeter --addr localhost:9090 --lock api/greeter.lock.json`,
		Args: args(1, 1, "<service>"),
		RunE: runE(func(cmd *cobra.Command, argv []string) error {
			path := o.lockPath(argv[0])
			b, err := os.ReadFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				return errs.Newf(errs.NotFound, "no lock file %s: write it with ferry schema lock %s --addr %s --lock %s", path, argv[0], o.addr, path)
			}
			if err != nil {
				return err
			}
			locked, err := protostruct.UnmarshalLock(b)
			if err != nil {
				return annotate(err, path)
			}
			fd, err := reflectFile(cmd.Context(), o.addr, argv[0], o.timeout)
			if err != nil {
				return err
			}
			return reportChanges(cmd, protostruct.Compare(locked, fd), path)
		}),
	}
	o.register(cmd)
	return cmd
}

// reportChanges prints the compatible changes and returns the breaking ones
// as a failed_precondition error with one detail each.
func reportChanges(cmd *cobra.Command, changes []protostruct.Change, lock string) error {
	out := cmd.OutOrStdout()
	var details []errs.Detail
	for _, c := range changes {
		if !c.Breaking {
			fmt.Fprintln(out, c)
			continue
		}
		field := c.Element
		if c.Field != "" {
			field += "." + c.Field
		}
		details = append(details, errs.Detail{Field: field, Reason: c.Message})
	}
	if len(details) == 0 {
		fmt.Fprintf(out, "compatible with %s (%d changes)\n", lock, len(changes))
		return nil
	}
	what := "changes"
	if len(details) == 1 {
		what = "change"
	}
	return errs.Newf(errs.FailedPrecondition, "%d wire-incompatible %s from the lock %s", len(details), what, lock).WithDetails(details...)
}
