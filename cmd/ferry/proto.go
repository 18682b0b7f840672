package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferry-go/ferry/cmd/ferry/internal/grpcreflect"
	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/errs"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func newProtoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "proto",
		Short: "Export a running service's schema as .proto files",
		Long: `Work with the protobuf schema a Ferry service derives from its Go types and serves through
gRPC server reflection.`,
		Example: `  ferry proto export greeter --addr localhost:9090`,
		Args:    args(0, 0),
		RunE:    runE(func(cmd *cobra.Command, _ []string) error { return usagef("missing subcommand (export)") }),
	}
	cmd.AddCommand(newProtoExportCmd())
	return cmd
}

type protoExportOptions struct {
	addr    string
	all     bool
	out     string
	timeout time.Duration
}

func newProtoExportCmd() *cobra.Command {
	var o protoExportOptions
	cmd := &cobra.Command{
		Use:   "export <service> --addr host:port",
		Short: "Print the .proto file of a running service, read through gRPC reflection",
		Long: `Print the .proto source of the file that the gRPC server at --addr serves for <service> through
server reflection (ferry/<service>.proto for a Ferry service): a file that protoc compiles back
to the very descriptor reflection serves, so clients in any language can be generated from it.

With --all, the files it imports follow it (google/protobuf/timestamp.proto, the files of
generated messages), each after a line "// ==> <path> <==". With --out DIR, the file and every
file it imports are written under DIR at their paths instead (DIR/ferry/greeter.proto,
DIR/google/protobuf/timestamp.proto, ...), ready for protoc -I DIR, and the paths written are
printed.

The file has no go_package option, as the served descriptor has none: give protoc-gen-go the
import path with its M option. <service> may also be the fully qualified name of any gRPC
service (one with a '.').

The same text comes without a running server from Go: transport/grpc's ProtoFile.`,
		Example: `  ferry proto export greeter --addr localhost:9090 > greeter.proto
  ferry proto export greeter --addr localhost:9090 --out proto
  protoc -I proto --go_out=. --go-grpc_out=. \
    --go_opt=Mferry/greeter.proto=example.com/greeterpb \
    --go-grpc_opt=Mferry/greeter.proto=example.com/greeterpb ferry/greeter.proto`,
		Args: args(1, 1, "<service>"),
		RunE: runE(func(cmd *cobra.Command, argv []string) error { return runProtoExport(cmd, argv[0], &o) }),
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "", "the gRPC server at host:port (required)")
	f.BoolVar(&o.all, "all", false, "print the files it imports too")
	f.StringVar(&o.out, "out", "", "write the file and every file it imports under this directory")
	f.DurationVar(&o.timeout, "timeout", 5*time.Second, "give up after this long, connecting included")
	cmd.MarkFlagsMutuallyExclusive("all", "out")
	return cmd
}

func runProtoExport(cmd *cobra.Command, service string, o *protoExportOptions) error {
	fd, err := reflectFile(cmd.Context(), o.addr, service, o.timeout)
	if err != nil {
		return err
	}
	files := []protoreflect.FileDescriptor{fd}
	if o.all || o.out != "" {
		files = withImports(fd)
	}
	out := cmd.OutOrStdout()
	for i, f := range files {
		src, err := protostruct.Print(f)
		if err != nil {
			return err
		}
		switch {
		case o.out != "":
			if !filepath.IsLocal(f.Path()) {
				return errs.Newf(errs.InvalidArgument, "the server names a file %q outside the output directory", f.Path())
			}
			path := filepath.Join(o.out, filepath.FromSlash(f.Path()))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(path, src, 0o644); err != nil {
				return err
			}
			fmt.Fprintln(out, path)
		case o.all:
			if i > 0 {
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "// ==> %s <==\n", f.Path())
			if _, err := out.Write(src); err != nil {
				return err
			}
		default:
			if _, err := out.Write(src); err != nil {
				return err
			}
		}
	}
	return nil
}

// reflectFile returns the file that defines service on the gRPC server at
// addr, read through its reflection, with every file it imports.
func reflectFile(ctx context.Context, addr, service string, timeout time.Duration) (protoreflect.FileDescriptor, error) {
	if err := validateService(service); err != nil {
		return nil, err
	}
	switch {
	case addr == "":
		return nil, usagef("missing --addr host:port: the gRPC server to read the schema from")
	case strings.Contains(addr, "://"):
		return nil, usagef("--addr %q: want host:port, without a scheme", addr)
	case timeout <= 0:
		return nil, usagef("invalid --timeout %v: want a positive duration", timeout)
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, usagef("invalid gRPC address %q: %v", addr, err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sd, err := grpcreflect.Resolve(ctx, cc, fgrpc.ServiceName(service))
	if err != nil {
		return nil, annotate(err, "gRPC "+addr)
	}
	return sd.ParentFile(), nil
}

// withImports returns fd and every file it imports, directly or not, each
// once, fd first.
func withImports(fd protoreflect.FileDescriptor) []protoreflect.FileDescriptor {
	var files []protoreflect.FileDescriptor
	seen := map[string]bool{}
	var add func(f protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		files = append(files, f)
		for i := range f.Imports().Len() {
			add(f.Imports().Get(i).FileDescriptor)
		}
	}
	add(fd)
	return files
}
