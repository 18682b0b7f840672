package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/ferry-go/ferry/cmd/ferry/internal/scaffold"
	"github.com/ferry-go/ferry/errs"
	natsreg "github.com/ferry-go/ferry/registry/nats"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/spf13/cobra"
)

type callOptions struct {
	nats      natsFlags
	transport string
	addr      string
	registry  string
	timeout   time.Duration
	stream    string
}

func newCallCmd() *cobra.Command {
	var o callOptions
	cmd := &cobra.Command{
		Use:   "call <service> <endpoint> [json]",
		Short: "Call an endpoint over HTTP, gRPC or NATS and print the reply as JSON",
		Long: `Call <endpoint> of <service> with the JSON request (default {}; "-" reads it from stdin)
and print the reply as indented JSON on stdout.

Where the call goes:
  --addr http://host:port   directly over HTTP (POST /<service>/<endpoint>)
  --addr host:port          directly over gRPC; the request and reply types are read through
                            the server's reflection, so no .proto file is needed
  --registry nats           look the service up in the NATS registry (bucket ` + natsreg.DefaultBucket + `)
                            and call an instance with Ferry's client: over NATS or HTTP, or
                            over gRPC with --transport grpc
  (neither)                 over NATS, on the subject <service>.<endpoint>

<service> is a Ferry service name, or the fully qualified name of any gRPC service (one with a '.',
such as grpc.health.v1.Health) on a server with reflection, called directly with --addr host:port.

Streaming endpoints print each reply as it arrives, one JSON object per line. A server stream
sends the [json] request; client and bidirectional streams send every JSON object read from
stdin, one per line, and end their side at end of input. Over gRPC (reflection) and through the
registry the endpoint's kind is known; directly over HTTP or NATS say it with --stream. A stream
has no deadline unless --timeout is given (Ctrl-C ends it).

On failure the canonical error code and message (and any details) go to stderr and the exit
status is 1; a service that is not there fails within --timeout saying so (over NATS at once:
no responders). A malformed JSON argument or a wrong flag is a usage error, exit status 2.`,
		Example: `  ferry call greeter Hello '{"name":"Ada"}'
  ferry call greeter Hello '{"name":"Ada"}' --addr http://localhost:8080
  ferry call greeter Hello '{"name":"Ada"}' --addr localhost:9090
  ferry call greeter Hello '{"name":"Ada"}' --registry nats --transport grpc
  ferry call grpc.health.v1.Health Check '{"service":"greeter.Greeter"}' --addr localhost:9090
  echo '{"name":"Ada"}' | ferry call greeter Hello - --nats-url nats://nats:4222
  ferry call orders Watch '{"customer":"c-1"}' --addr localhost:9090
  printf '{"n":1}\n{"n":2}\n' | ferry call calc Sum --stream client --addr http://localhost:8080`,
		Args: args(2, 3, "<service>", "<endpoint>", "[json]"),
		RunE: runE(func(cmd *cobra.Command, argv []string) error { return runCall(cmd, argv, &o) }),
	}
	f := cmd.Flags()
	f.StringVar(&o.transport, "transport", "", "http, grpc or nats (default: from --addr, else nats)")
	f.StringVar(&o.addr, "addr", "", "call directly: an HTTP base URL (http://host:port) or a gRPC address (host:port)")
	f.StringVar(&o.registry, "registry", "", "find the service in a registry: nats")
	f.DurationVar(&o.timeout, "timeout", 5*time.Second, "give up after this long, connecting included (a stream: only opening it, unless given)")
	f.StringVar(&o.stream, "stream", "", "open the endpoint as a stream: server, client or bidi (over gRPC and through the registry the endpoint says)")
	o.nats.register(f, true)
	_ = cmd.RegisterFlagCompletionFunc("transport", cobra.FixedCompletions([]string{"http", "grpc", "nats"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("stream", cobra.FixedCompletions([]string{"server", "client", "bidi"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("registry", cobra.FixedCompletions([]string{"nats"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

var (
	endpointRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	// grpcNameRE is a fully qualified proto name: identifiers joined by '.'.
	grpcNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$`)
)

// validateService accepts a Ferry service name, or a fully qualified gRPC
// service name (one with a '.', such as grpc.health.v1.Health), which
// fgrpc calls as it is.
func validateService(service string) error {
	if !strings.Contains(service, ".") {
		if err := scaffold.ValidateName(service); err != nil {
			return usageError{err}
		}
		return nil
	}
	if !grpcNameRE.MatchString(service) {
		return usagef("invalid gRPC service name %q: want identifiers joined by '.', such as grpc.health.v1.Health", service)
	}
	return nil
}

// route is where a call goes.
type route struct {
	transport string // http, grpc or nats
	addr      string // base URL or host:port; "" over NATS and through the registry
	registry  bool
}

func (o *callOptions) route() (route, error) {
	switch o.transport {
	case "", "http", "grpc", "nats":
	default:
		return route{}, usagef("invalid --transport %q: want http, grpc or nats", o.transport)
	}
	switch o.registry {
	case "", "nats":
	default:
		return route{}, usagef("invalid --registry %q: want nats", o.registry)
	}
	if o.timeout <= 0 {
		return route{}, usagef("invalid --timeout %v: want a positive duration", o.timeout)
	}
	hasScheme := strings.Contains(o.addr, "://")
	switch {
	case o.addr != "" && o.registry != "":
		return route{}, usagef("--addr and --registry exclude each other: call an address, or find the service")
	case o.registry != "":
		return route{transport: o.transport, registry: true}, nil
	case o.addr == "" && (o.transport == "" || o.transport == "nats"):
		return route{transport: "nats"}, nil
	case o.addr == "":
		return route{}, usagef("--transport %s needs --addr, or --registry nats to find the service", o.transport)
	case o.transport == "nats":
		return route{}, usagef("--addr is for HTTP and gRPC; over NATS give the server with --nats-url")
	case o.transport == "http" && !hasScheme:
		return route{transport: "http", addr: "http://" + o.addr}, nil
	case o.transport == "grpc" && hasScheme:
		return route{}, usagef("--addr %q with --transport grpc: want host:port, without a scheme", o.addr)
	case hasScheme:
		return route{transport: "http", addr: o.addr}, nil
	}
	return route{transport: "grpc", addr: o.addr}, nil
}

func runCall(cmd *cobra.Command, argv []string, o *callOptions) error {
	service, endpoint := argv[0], argv[1]
	if err := validateService(service); err != nil {
		return err
	}
	if !endpointRE.MatchString(endpoint) {
		return usagef("invalid endpoint name %q: an endpoint name starts with a letter, followed by letters, digits or '_'", endpoint)
	}
	body := []byte("{}")
	if len(argv) == 3 {
		body = []byte(argv[2])
	}
	if string(body) == "-" {
		var err error
		if body, err = io.ReadAll(cmd.InOrStdin()); err != nil {
			return fmt.Errorf("read the request from stdin: %w", err)
		}
	}
	if err := checkRequest(body); err != nil {
		return err
	}
	r, err := o.route()
	if err != nil {
		return err
	}
	if strings.Contains(service, ".") && (r.registry || r.transport != "grpc") {
		return usagef("%s is a fully qualified gRPC service name: call it over gRPC with --addr host:port (registries, HTTP and NATS know Ferry services, whose names have no '.')", service)
	}

	if _, ok := streamFlag[o.stream]; !ok {
		return usagef("invalid --stream %q: want server, client or bidi", o.stream)
	}

	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	sc, err := openStreamCall(ctx, o, r, service, endpoint)
	if err != nil {
		return err
	}
	var out []byte
	switch {
	case sc != nil && sc.kind == transport.Unary:
		out, err = runUnary(ctx, sc, body)
	case sc != nil:
		if cmd.Flags().Changed("timeout") {
			sctx, scancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer scancel()
			cmd.SetContext(sctx)
		}
		return runStream(cmd, sc, body, len(argv) == 3)
	case r.transport == "http":
		out, err = callHTTP(ctx, r.addr, service, endpoint, body)
	default:
		out, err = callNATS(ctx, o, service, endpoint, body)
	}
	if err != nil {
		// The server may give up first: it got the same deadline and
		// cancels the call a moment before the caller's own timer fires.
		dl, hasDL := ctx.Deadline()
		if errs.CodeOf(err) == errs.DeadlineExceeded && (ctx.Err() != nil || hasDL && time.Until(dl) < 100*time.Millisecond) {
			return annotate(err, fmt.Sprintf("no reply from %s.%s within --timeout %v", service, endpoint, o.timeout))
		}
		return err
	}
	if len(out) == 0 {
		return nil
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out, "", "  "); err != nil {
		return errs.Newf(errs.Internal, "the reply is not JSON: %v", err)
	}
	pretty.WriteByte('\n')
	_, err = cmd.OutOrStdout().Write(pretty.Bytes())
	return err
}

// checkRequest accepts a JSON object, the form of every Ferry request.
func checkRequest(body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return usagef("the request is not valid JSON: %v (at byte %d of %s)", err, se.Offset, clip(body))
		}
		return usagef("the request is not valid JSON: %v", err)
	}
	if _, ok := v.(map[string]any); !ok {
		return usagef(`the request must be a JSON object such as '{"name":"Ada"}', not %s`, clip(body))
	}
	return nil
}

func clip(b []byte) string {
	const n = 60
	if len(b) > n {
		return fmt.Sprintf("%q...", b[:n])
	}
	return fmt.Sprintf("%q", b)
}

func callHTTP(ctx context.Context, base, service, endpoint string, body []byte) ([]byte, error) {
	c, err := fhttp.NewClient(base)
	if err != nil {
		return nil, usageError{err}
	}
	defer c.Close()
	var out json.RawMessage
	if err := c.Invoke(ctx, service, endpoint, json.RawMessage(body), &out); err != nil {
		return nil, annotate(err, "HTTP "+base)
	}
	return out, nil
}

func callNATS(ctx context.Context, o *callOptions, service, endpoint string, body []byte) ([]byte, error) {
	nc, err := o.nats.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	var out json.RawMessage
	if err := fnats.NewClient(nc).Invoke(ctx, service, endpoint, json.RawMessage(body), &out); err != nil {
		return nil, natsError(err, o.nats.resolvedURL(), service, endpoint)
	}
	return out, nil
}

// natsError says plainly that a service with no responders is not there.
func natsError(err error, url, service, endpoint string) error {
	if e := errs.FromError(err); e.Code() == errs.Unavailable && strings.Contains(e.Message(), "no responders") {
		return errs.Newf(errs.Unavailable, "service %q is not there: nothing on %s serves %s.%s (no responders)", service, url, service, endpoint)
	}
	return annotate(err, "NATS "+url)
}

// registryError says plainly that a service the registry does not know is
// not there.
func registryError(err error, o *callOptions, service, endpoint string) error {
	where := fmt.Sprintf("NATS registry %s on %s", o.nats.bucket, o.nats.resolvedURL())
	if e := errs.FromError(err); e.Code() == errs.Unavailable && e.Message() == fmt.Sprintf("no instances of service %q", service) {
		return errs.Newf(errs.NotFound, "service %q is not there: no instance is registered (%s)", service, where)
	}
	return natsError(err, o.nats.resolvedURL(), service, endpoint)
}
