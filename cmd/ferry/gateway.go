package main

import (
	"fmt"
	"slices"

	"github.com/ferry-go/ferry/config"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// gatewayDefaults are `ferry gateway`'s own defaults; every configuration
// source overrides them.
func gatewayDefaults(c *config.Config) {
	c.Service.Name = "gateway"
	c.Gateway.Enabled = true
	c.Registry.Kind = "nats"
	c.Transports.HTTP.Enabled = false // the gateway's port is the HTTP entry point
	c.Transports.GRPC.Enabled = false
	c.Admin.Addr = ":9465" // beside a service's default :9464
}

func newGatewayCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "gateway [flags]",
		Short: "Run the API gateway: every service of the registry over HTTP",
		Long: `Run the API gateway: one HTTP entry point (gateway.addr, default :8000) for every service
the registry lists — POST /<service>/<Endpoint> with a JSON body is forwarded to a live
instance over the transports client.transports prefers, and the reply or error answered as the
service itself would. Routes follow the registry as services start and stop.

It is a Ferry service configured like any other (ferry.yaml, FERRY_* variables, --set KEY=VALUE;
docs/CONFIG.md): its defaults differ only in service.name (gateway), gateway.enabled (true),
registry.kind (nats), the HTTP and gRPC transports (off) and admin.addr (:9465). The middleware
list is the edge's: auth, ratelimit… run before any service is called. gateway.routes renames,
hides or pins routes. Its Routes endpoint (over NATS: ferry call gateway Routes) lists them.
--registry srv routes the services NATS $SRV discovery finds instead, for services that
register nowhere (the examples).`,
		Example: `  ferry gateway --nats-url nats://127.0.0.1:4222
  ferry gateway --nats-url nats://127.0.0.1:4222 --registry srv
  ferry gateway --config gateway.yaml --set gateway.addr=:8080`,
		DisableFlagParsing: true, // config.Run parses Ferry's flags
		RunE: func(cmd *cobra.Command, args []string) error {
			if slices.Contains(args, "-h") || slices.Contains(args, "--help") {
				fs := pflag.NewFlagSet("gateway", pflag.ContinueOnError)
				config.RegisterFlags(fs)
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n\nUsage:\n  %s\n\nExamples:\n%s\n\nFlags:\n%s", cmd.Long, cmd.UseLine(), cmd.Example, fs.FlagUsages())
				return nil
			}
			return config.Run(cmd.Context(), nil, args, config.WithDefaults(gatewayDefaults))
		},
	}
}
