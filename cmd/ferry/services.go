package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/internal/microdisc"
	"github.com/ferry-go/ferry/registry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/spf13/cobra"
)

// Sources of a row of ferry services.
const (
	sourceRegistry  = "registry"
	sourceDiscovery = "$SRV"
)

type servicesOptions struct {
	nats    natsFlags
	timeout time.Duration
	json    bool
}

func newServicesCmd() *cobra.Command {
	var o servicesOptions
	cmd := &cobra.Command{
		Use:     "services",
		Aliases: []string{"ls"},
		Short:   "List running services and their instances",
		Long: `List services and their instances from two sources, one row per instance, with the source in
the SOURCE column:

  registry   an entry of the NATS registry (JetStream key-value bucket ` + "ferry_registry" + `, keys
             <service>.<id>): instances started with a NATS registry, with the address of
             every transport they serve
  $SRV       an answer to NATS service discovery ($SRV.PING): instances serving over NATS,
             as 'nats micro ls' shows them

The same instance appears once per source (the registry and NATS discovery give it different
IDs). Discovery waits until answers stop coming, at most --timeout.`,
		Example: `  ferry services
  ferry services --nats-url nats://nats:4222 --json`,
		Args: args(0, 0),
		RunE: runE(func(cmd *cobra.Command, _ []string) error { return runServices(cmd, &o) }),
	}
	f := cmd.Flags()
	o.nats.register(f, true)
	f.DurationVar(&o.timeout, "timeout", 2*time.Second, "give up after this long, connecting included")
	f.BoolVar(&o.json, "json", false, "print a JSON array instead of a table")
	return cmd
}

// serviceRow is one instance from one source.
type serviceRow struct {
	Service   string              `json:"service"`
	Version   string              `json:"version,omitempty"`
	ID        string              `json:"id"`
	Source    string              `json:"source"`
	Endpoints []registry.Endpoint `json:"endpoints,omitempty"`
}

func runServices(cmd *cobra.Command, o *servicesOptions) error {
	if o.timeout <= 0 {
		return usagef("invalid --timeout %v: want a positive duration", o.timeout)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	nc, err := o.nats.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()

	rows, regErr := registryRows(ctx, &o.nats, nc)
	if regErr != nil && !errors.Is(regErr, errNoRegistry) {
		return regErr
	}
	found, err := discoveryRows(ctx, nc)
	if err != nil {
		return err
	}
	rows = append(rows, found...)
	slices.SortFunc(rows, func(a, b serviceRow) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Source, b.Source), cmp.Compare(a.ID, b.ID))
	})

	out := cmd.OutOrStdout()
	if o.json {
		if rows == nil {
			rows = []serviceRow{}
		}
		b, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	if errors.Is(regErr, errNoRegistry) {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %v: no instance has registered\n", regErr)
	}
	if len(rows) == 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "no services found on %s\n", o.nats.resolvedURL())
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tVERSION\tINSTANCE\tSOURCE\tENDPOINTS")
	for _, r := range rows {
		eps := "nats"
		if r.Source == sourceRegistry {
			parts := make([]string, 0, len(r.Endpoints))
			for _, e := range r.Endpoints {
				parts = append(parts, e.Transport+"="+e.Address)
			}
			eps = strings.Join(parts, " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Service, cmp.Or(r.Version, "-"), r.ID, r.Source, eps)
	}
	return tw.Flush()
}

// registryRows reads every instance in the registry bucket.
func registryRows(ctx context.Context, n *natsFlags, nc *nats.Conn) ([]serviceRow, error) {
	_, kv, err := n.openRegistry(ctx, nc)
	if err != nil {
		return nil, err
	}
	// A watch delivers every current value, then a nil entry.
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, errs.Newf(errs.Unavailable, "read the registry: %v", err)
	}
	defer func() { _ = w.Stop() }()
	var rows []serviceRow
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			return nil, errs.Newf(errs.DeadlineExceeded, "read the registry: %v", ctx.Err())
		}
		if e == nil {
			break
		}
		var in registry.Instance
		if err := json.Unmarshal(e.Value(), &in); err != nil || in.Service == "" {
			continue // not an instance: someone else's key
		}
		rows = append(rows, serviceRow{Service: in.Service, Version: in.Version, ID: in.ID, Source: sourceRegistry, Endpoints: in.Endpoints})
	}
	return rows, nil
}

// discoveryRows asks $SRV.PING.
func discoveryRows(ctx context.Context, nc *nats.Conn) ([]serviceRow, error) {
	subject, err := micro.ControlSubject(micro.PingVerb, "", "")
	if err != nil {
		return nil, err
	}
	replies, err := microdisc.Gather(ctx, nc, subject, discoveryQuiet, 0)
	if err != nil {
		return nil, err
	}
	var rows []serviceRow
	for _, b := range replies {
		var p micro.Ping
		if err := json.Unmarshal(b, &p); err != nil || p.Name == "" {
			continue
		}
		rows = append(rows, serviceRow{Service: p.Name, Version: p.Version, ID: p.ID, Source: sourceDiscovery})
	}
	return rows, nil
}
