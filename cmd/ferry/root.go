package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ferry-go/ferry/errs"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line is wrong
)

// newRootCmd returns the ferry command tree writing to stdout and stderr.
// Errors are returned, not printed: run prints them and picks the exit code.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Create, call and inspect Ferry services",
		Long: `ferry is the command-line tool of Ferry, the Go microservice framework that serves one typed
handler over HTTP, gRPC and NATS at once.

It scaffolds a new service module (ferry new), calls an endpoint over any transport and prints
the reply as JSON (ferry call), lists the running services from the NATS registry and from NATS
service discovery (ferry services), shows a service's endpoints with their request and
response types (ferry describe), exports its schema as .proto files (ferry proto export),
guards that schema against wire-incompatible changes (ferry schema lock/check), and runs the
API gateway in front of them (ferry gateway).

Exit status: 0 on success; 1 when the command ran and failed (the canonical error code and
message are printed to stderr); 2 when the command line is wrong.`,
		Example: `  ferry new demo && cd demo && make test
  ferry call demo Hello '{"name":"Ada"}'
  ferry services
  ferry describe demo --grpc localhost:9090
  ferry proto export demo --addr localhost:9090
  ferry schema check demo --addr localhost:9090`,
		Version:       ferryVersion(),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetVersionTemplate(versionText())
	root.AddCommand(newNewCmd(), newCallCmd(), newServicesCmd(), newDescribeCmd(), newProtoCmd(), newSchemaCmd(), newOutboxCmd(), newGatewayCmd(), newDevCmd(), newVersionCmd())
	return root
}

// run executes the command line args and returns the exit code, printing
// any error to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runIn(ctx, args, nil, stdout, stderr)
}

// runIn is run reading stdin from in (os.Stdin when nil).
func runIn(ctx context.Context, args []string, in io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	if in != nil {
		root.SetIn(in)
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if cmd == nil {
		cmd = root
	}
	code := exitCode(err)
	printError(stderr, cmd.CommandPath(), err)
	if code == exitUsage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// usageError marks an error in the command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// failure marks an error of a command that ran: exit status 1.
type failure struct{ err error }

func (e failure) Error() string { return e.err.Error() }
func (e failure) Unwrap() error { return e.err }

// runE adapts a command body: its errors are failures unless they are
// usage errors already. Errors that reach run unmarked come from cobra
// itself (unknown command, wrong number of arguments) and are usage errors.
func runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		if err == nil || errors.As(err, new(usageError)) {
			return err
		}
		return failure{err}
	}
}

func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, new(failure)):
		return exitFailure
	}
	return exitUsage
}

// printError writes err to w: "ferry call: code: message", then one line
// per detail of an *errs.Error.
func printError(w io.Writer, cmdPath string, err error) {
	fmt.Fprintf(w, "%s: %v\n", cmdPath, err)
	var e *errs.Error
	if errors.As(err, &e) {
		for _, d := range e.Details() {
			if d.Field != "" {
				fmt.Fprintf(w, "  %s: %s\n", d.Field, d.Reason)
			} else {
				fmt.Fprintf(w, "  %s\n", d.Reason)
			}
		}
	}
}

// args checks the number of positional arguments, naming them in the
// error: a usage error.
func args(min, max int, names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) >= min && len(args) <= max {
			return nil
		}
		if len(args) < min {
			return usagef("missing %s", strings.Join(names[len(args):min], " and "))
		}
		if max == 0 {
			return usagef("takes no arguments, got %q", args)
		}
		return usagef("too many arguments: want at most %d (%s), got %d", max, strings.Join(names, ", "), len(args))
	}
}

// annotate adds where a failure happened to err's message, in
// parentheses, keeping its code and details.
func annotate(err error, where string) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return errs.New(e.Code(), e.Message()+" ("+where+")").WithDetails(e.Details()...)
	}
	return errs.Newf(errs.CodeOf(err), "%v (%s)", err, where)
}
