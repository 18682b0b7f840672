package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferry-go/ferry/cmd/ferry/internal/grpcreflect"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/internal/microdisc"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	"github.com/nats-io/nats.go/micro"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type describeOptions struct {
	nats    natsFlags
	grpc    string
	timeout time.Duration
}

func newDescribeCmd() *cobra.Command {
	var o describeOptions
	cmd := &cobra.Command{
		Use:   "describe <service>",
		Short: "Show a service's endpoints with their request and response types",
		Long: `Show the endpoints of <service> with their request and response schemas.

With --grpc host:port, the schema comes from the gRPC server's reflection: every method and
every message it uses, field by field, in proto syntax (the field's JSON name, which ferry call
and HTTP use, is shown where it differs). <service> may then also be the fully qualified name of
any gRPC service (one with a '.', such as grpc.health.v1.Health).

Otherwise it comes from NATS service discovery ($SRV.INFO.<service>): every running instance's
endpoints, their NATS subjects and queue groups, and the Go request and response types the
endpoint metadata names.`,
		Example: `  ferry describe greeter
  ferry describe greeter --grpc localhost:9090`,
		Args: args(1, 1, "<service>"),
		RunE: runE(func(cmd *cobra.Command, argv []string) error { return runDescribe(cmd, argv[0], &o) }),
	}
	f := cmd.Flags()
	o.nats.register(f, false)
	f.StringVar(&o.grpc, "grpc", "", "read the schema from the gRPC server at host:port (its reflection)")
	f.DurationVar(&o.timeout, "timeout", 2*time.Second, "give up after this long, connecting included")
	cmd.MarkFlagsMutuallyExclusive("grpc", "nats-url")
	return cmd
}

func runDescribe(cmd *cobra.Command, service string, o *describeOptions) error {
	if err := validateService(service); err != nil {
		return err
	}
	if strings.Contains(service, ".") && o.grpc == "" {
		return usagef("%s is a fully qualified gRPC service name: describe it with --grpc host:port (NATS discovery knows Ferry services, whose names have no '.')", service)
	}
	if o.timeout <= 0 {
		return usagef("invalid --timeout %v: want a positive duration", o.timeout)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	if o.grpc != "" {
		return describeGRPC(ctx, cmd, o.grpc, service)
	}
	return describeNATS(ctx, cmd, o, service)
}

func describeGRPC(ctx context.Context, cmd *cobra.Command, addr, service string) error {
	if strings.Contains(addr, "://") {
		return usagef("--grpc %q: want host:port, without a scheme", addr)
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return usagef("invalid gRPC address %q: %v", addr, err)
	}
	defer cc.Close()
	sd, err := grpcreflect.Resolve(ctx, cc, fgrpc.ServiceName(service))
	if err != nil {
		return annotate(err, "gRPC "+addr)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "// %s, from the reflection of the gRPC server at %s\n", service, addr)
	return grpcreflect.Describe(out, sd)
}

func describeNATS(ctx context.Context, cmd *cobra.Command, o *describeOptions, service string) error {
	nc, err := o.nats.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	subject, err := micro.ControlSubject(micro.InfoVerb, service, "")
	if err != nil {
		return err
	}
	replies, err := microdisc.Gather(ctx, nc, subject, discoveryQuiet, 0)
	if err != nil {
		return err
	}
	var infos []micro.Info
	for _, b := range replies {
		var in micro.Info
		if json.Unmarshal(b, &in) == nil && in.Name == service {
			infos = append(infos, in)
		}
	}
	if len(infos) == 0 {
		return errs.Newf(errs.NotFound, "service %q is not there: no instance answered %s on %s within %v",
			service, subject, o.nats.resolvedURL(), o.timeout)
	}
	slices.SortFunc(infos, func(a, b micro.Info) int { return cmp.Compare(a.ID, b.ID) })

	out := cmd.OutOrStdout()
	first := infos[0]
	fmt.Fprintf(out, "Service:      %s\n", first.Name)
	if first.Description != "" {
		fmt.Fprintf(out, "Description:  %s\n", first.Description)
	}
	ids := make([]string, 0, len(infos))
	for _, in := range infos {
		ids = append(ids, in.ID+" ("+cmp.Or(in.Version, "no version")+")")
	}
	fmt.Fprintf(out, "Instances:    %d, from %s on %s: %s\n\n", len(infos), subject, o.nats.resolvedURL(), strings.Join(ids, ", "))

	// The union of the instances' endpoints, first answer first: instances
	// of different versions may differ.
	type row struct{ name, subject, queue, req, resp string }
	var rows []row
	seen := map[string]bool{}
	for _, in := range infos {
		for _, ep := range in.Endpoints {
			if seen[ep.Name] {
				continue
			}
			seen[ep.Name] = true
			rows = append(rows, row{ep.Name, ep.Subject, ep.QueueGroup, cmp.Or(ep.Metadata["request"], "?"), cmp.Or(ep.Metadata["response"], "?")})
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tSUBJECT\tQUEUE GROUP\tREQUEST\tRESPONSE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.name, r.subject, r.queue, r.req, r.resp)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nFields: ferry describe %s --grpc HOST:PORT (the gRPC server's reflection)\n", service)
	return nil
}
