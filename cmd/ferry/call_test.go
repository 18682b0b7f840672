package main

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/ferrytest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// TestCallEveryTransport calls a live service over HTTP, gRPC and NATS,
// directly and through the NATS registry, and checks that each route
// prints the same reply: the gRPC one is converted from a dynamic message,
// the others are the server's encoding/json output.
func TestCallEveryTransport(t *testing.T) {
	s := startService(t, true)
	const req = `{"name":"Ada","count":9007199254740993,"ratio":1.5,"tags":["a","b"],"labels":{"y":2,"x":1},` +
		`"at":"2026-01-02T03:04:05.5Z","blob":"AQI=","inner":{"n":7,"note":"hi"},"opt":0,"next":null,` +
		`"flags":{"k":"v"},"ok":true,"unit":18446744073709551615,"UserID":"u1"}`
	routes := []struct {
		name string
		args []string
	}{
		{"nats", []string{"--nats-url", s.natsURL}},
		{"http", []string{"--addr", s.httpURL}},
		{"http without scheme", []string{"--addr", strings.TrimPrefix(s.httpURL, "http://"), "--transport", "http"}},
		{"grpc", []string{"--addr", s.grpcAddr}},
		{"registry", []string{"--registry", "nats", "--nats-url", s.natsURL}},
		{"registry http", []string{"--registry", "nats", "--transport", "http", "--nats-url", s.natsURL}},
		{"registry grpc", []string{"--registry", "nats", "--transport", "grpc", "--nats-url", s.natsURL}},
		{"registry nats", []string{"--registry", "nats", "--transport", "nats", "--nats-url", s.natsURL}},
	}
	var first string
	for _, rt := range routes {
		t.Run(rt.name, func(t *testing.T) {
			r := ferryCmd(t, append([]string{"call", "echo", "Echo", req}, rt.args...)...)
			r.want(t, exitOK)
			var got, want map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("stdout %q is not JSON: %v", r.stdout, err)
			}
			_ = json.Unmarshal([]byte(req), &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("call echo Echo = %s, want the request back: %s", r.stdout, req)
			}
			if !strings.Contains(r.stdout, "\n  \"name\": \"Ada\",\n") {
				t.Errorf("stdout = %q, want indented JSON", r.stdout)
			}
			if first == "" {
				first = r.stdout
			} else if r.stdout != first {
				t.Errorf("reply over %s =\n%s\nwant the same text as over nats:\n%s", rt.name, r.stdout, first)
			}

			// An error reply: code, message and details on stderr, exit 1.
			r = ferryCmd(t, append([]string{"call", "echo", "Hello", `{"name":""}`}, rt.args...)...)
			r.want(t, exitFailure, "ferry call: invalid_argument: name is required", "\n  name: must not be empty\n")
			if r.stdout != "" {
				t.Errorf("stdout = %q on error, want nothing", r.stdout)
			}
		})
	}

	// The request may come from stdin.
	root := newRootCmd(new(strings.Builder), new(strings.Builder))
	var out strings.Builder
	root.SetOut(&out)
	root.SetIn(strings.NewReader(`{"name":"Bo"}`))
	root.SetArgs([]string{"call", "echo", "Hello", "-", "--nats-url", s.natsURL})
	if err := root.Execute(); err != nil || out.String() != "{\n  \"message\": \"Hello, Bo!\"\n}\n" {
		t.Errorf("call echo Hello - (stdin) = %q, %v", out.String(), err)
	}
}

// TestCallServiceNotThere checks that a call to a service that is not
// there fails within its timeout, saying so.
func TestCallServiceNotThere(t *testing.T) {
	url := ferrytest.NATS(t).ClientURL()
	down := closedAddr(t)
	empty := ferrytest.NATS(t).ClientURL()
	tests := []struct {
		name   string
		args   []string
		within time.Duration
		msgs   []string
	}{
		{"nats: no responders at once", []string{"call", "nope", "Hello", "--nats-url", url, "--timeout", "10s"}, 2 * time.Second,
			[]string{`unavailable: service "nope" is not there`, "no responders"}},
		{"http", []string{"call", "nope", "Hello", "--addr", "http://" + down, "--timeout", "2s"}, 4 * time.Second,
			[]string{"unavailable:", "connection refused", "HTTP http://" + down}},
		{"grpc", []string{"call", "nope", "Hello", "--addr", down, "--timeout", "2s"}, 4 * time.Second,
			[]string{"unavailable:", "gRPC " + down}},
		{"registry without a bucket", []string{"call", "nope", "Hello", "--registry", "nats", "--nats-url", empty, "--timeout", "2s"}, 4 * time.Second,
			[]string{`not_found: service "nope" is not there`, `no registry bucket "ferry_registry"`}},
		{"no NATS server", []string{"call", "nope", "Hello", "--nats-url", "nats://" + down, "--timeout", "2s"}, 4 * time.Second,
			[]string{"unavailable: cannot connect to NATS at nats://" + down}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ferryCmd(t, tt.args...)
			r.want(t, exitFailure, tt.msgs...)
			if r.took > tt.within {
				t.Errorf("%v took %v, want at most %v", tt.args, r.took, tt.within)
			}
		})
	}

	// Registered services exist, but not this one.
	s := startService(t, true)
	for _, tr := range []string{"http", "grpc", "nats"} {
		r := ferryCmd(t, "call", "nope", "Hello", "--registry", "nats", "--transport", tr, "--nats-url", s.natsURL, "--timeout", "2s")
		if tr == "nats" { // NATS needs no registry entry: it asks the subject
			r.want(t, exitFailure, `unavailable: service "nope" is not there`)
			continue
		}
		r.want(t, exitFailure, `not_found: service "nope" is not there: no instance is registered`)
	}
	// The service is there but does not answer in time.
	for name, args := range map[string][]string{"nats": {"--nats-url", s.natsURL}, "http": {"--addr", s.httpURL}, "grpc": {"--addr", s.grpcAddr}} {
		r := ferryCmd(t, append([]string{"call", "echo", "Slow", "--timeout", "300ms"}, args...)...)
		r.want(t, exitFailure, "deadline_exceeded:", "(no reply from echo.Slow within --timeout 300ms)")
		if r.took > 3*time.Second {
			t.Errorf("%s: call echo Slow --timeout 300ms took %v", name, r.took)
		}
	}
	// The service is there, the endpoint is not.
	ferryCmd(t, "call", "echo", "Nope", "--nats-url", s.natsURL).want(t, exitFailure, "not_found:")
	ferryCmd(t, "call", "echo", "Nope", "--addr", s.grpcAddr).want(t, exitFailure, `not_found: gRPC service echo.Echo has no method "Nope" (it has [Chat Echo Greetings Hello Slow])`)
	ferryCmd(t, "call", "echo", "Hello", `{"nmae":"x"}`, "--addr", s.grpcAddr).want(t, exitFailure, `invalid_argument: request does not fit echo.HelloRequest`, `unknown field "nmae"`)
}

// TestCallUsage checks the command-line errors: exit status 2 with a
// message saying what is wrong, before any connection.
func TestCallUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"malformed JSON", []string{"call", "s", "E", `{"name":`}, "the request is not valid JSON: unexpected end of JSON input"},
		{"JSON syntax error", []string{"call", "s", "E", `{name: "x"}`}, "the request is not valid JSON: invalid character 'n' looking for beginning of object key string (at byte 2"},
		{"not an object", []string{"call", "s", "E", `[1,2]`}, "the request must be a JSON object"},
		{"null", []string{"call", "s", "E", `null`}, "the request must be a JSON object"},
		{"missing endpoint", []string{"call", "s"}, "missing <endpoint>"},
		{"missing both", []string{"call"}, "missing <service> and <endpoint>"},
		{"too many", []string{"call", "s", "E", "{}", "x"}, "too many arguments"},
		{"bad service", []string{"call", "9s", "E"}, `invalid service name "9s"`},
		{"bad endpoint", []string{"call", "s", "a.b"}, `invalid endpoint name "a.b"`},
		{"bad gRPC name", []string{"call", "grpc..v1", "E", "--addr", "x:1"}, `invalid gRPC service name "grpc..v1"`},
		{"gRPC name over NATS", []string{"call", "grpc.health.v1.Health", "Check"}, "grpc.health.v1.Health is a fully qualified gRPC service name: call it over gRPC with --addr host:port"},
		{"gRPC name over HTTP", []string{"call", "grpc.health.v1.Health", "Check", "--addr", "http://x:1"}, "is a fully qualified gRPC service name"},
		{"gRPC name through the registry", []string{"call", "grpc.health.v1.Health", "Check", "--registry", "nats", "--transport", "grpc"}, "is a fully qualified gRPC service name"},
		{"gRPC name described over NATS", []string{"describe", "grpc.health.v1.Health"}, "describe it with --grpc host:port"},
		{"bad transport", []string{"call", "s", "E", "--transport", "smoke"}, `invalid --transport "smoke"`},
		{"bad registry", []string{"call", "s", "E", "--registry", "consul"}, `invalid --registry "consul"`},
		{"grpc without addr", []string{"call", "s", "E", "--transport", "grpc"}, "--transport grpc needs --addr"},
		{"nats with addr", []string{"call", "s", "E", "--transport", "nats", "--addr", "x:1"}, "--addr is for HTTP and gRPC"},
		{"addr and registry", []string{"call", "s", "E", "--addr", "x:1", "--registry", "nats"}, "--addr and --registry exclude each other"},
		{"grpc with scheme", []string{"call", "s", "E", "--transport", "grpc", "--addr", "http://x:1"}, "want host:port, without a scheme"},
		{"bad timeout", []string{"call", "s", "E", "--timeout", "0s"}, "invalid --timeout 0s"},
		{"malformed timeout", []string{"call", "s", "E", "--timeout", "soon"}, `invalid argument "soon" for "--timeout"`},
		{"unknown flag", []string{"call", "s", "E", "--bogus"}, "unknown flag: --bogus"},
		{"unknown command", []string{"cal"}, `unknown command "cal" for "ferry"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ferryCmd(t, tt.args...).want(t, exitUsage, tt.msg, "--help' for usage.")
		})
	}
}

// TestCallFullGRPCName calls a gRPC server that is not Ferry's — grpc-go's
// health service with reflection — by the service's fully qualified name,
// and describes it.
func TestCallFullGRPCName(t *testing.T) {
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("payments", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	addr := ferrytest.ServeGRPC(t, gs)

	r := ferryCmd(t, "call", "grpc.health.v1.Health", "Check", `{"service":"payments"}`, "--addr", addr)
	r.want(t, exitOK)
	if want := "{\n  \"status\": \"SERVING\"\n}\n"; r.stdout != want {
		t.Errorf("call grpc.health.v1.Health Check = %q, want %q", r.stdout, want)
	}
	ferryCmd(t, "call", "grpc.health.v1.Health", "Check", `{"service":"nope"}`, "--addr", addr, "--transport", "grpc").
		want(t, exitFailure, "not_found:", "gRPC "+addr)
	ferryCmd(t, "call", "grpc.health.v1.Health", "Nope", "--addr", addr).
		want(t, exitFailure, `not_found: gRPC service grpc.health.v1.Health has no method "Nope"`)
	r = ferryCmd(t, "describe", "grpc.health.v1.Health", "--grpc", addr)
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "rpc Check(grpc.health.v1.HealthCheckRequest) returns (grpc.health.v1.HealthCheckResponse);") {
		t.Errorf("describe grpc.health.v1.Health = %s, want its Check method", r.stdout)
	}
}

// ferryCmdIn is ferryCmd with stdin.
func ferryCmdIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := runIn(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code, took: time.Since(start)}
}

// TestCallStreams opens server and bidirectional streams: the replies are
// printed one JSON object per line as they come, a failed end is the
// usual error and exit status, and client-sending streams read stdin.
func TestCallStreams(t *testing.T) {
	s := startService(t, true)
	routes := []struct {
		name string
		args []string
		kind bool // the kind must be given with --stream
	}{
		{"grpc", []string{"--addr", s.grpcAddr}, false},
		{"registry grpc", []string{"--registry", "nats", "--transport", "grpc", "--nats-url", s.natsURL}, false},
		{"http", []string{"--addr", s.httpURL}, true},
		{"registry http", []string{"--registry", "nats", "--transport", "http", "--nats-url", s.natsURL}, false},
		{"nats", []string{"--nats-url", s.natsURL}, true},
		{"registry", []string{"--registry", "nats", "--nats-url", s.natsURL}, false},
		{"registry nats", []string{"--registry", "nats", "--transport", "nats", "--nats-url", s.natsURL}, false},
	}
	for _, rt := range routes {
		t.Run(rt.name, func(t *testing.T) {
			server, bidi := rt.args, rt.args
			if rt.kind {
				server = append(slices.Clip(rt.args), "--stream", "server")
				bidi = append(slices.Clip(rt.args), "--stream", "bidi")
			}
			r := ferryCmd(t, append([]string{"call", "echo", "Greetings", `{"name":"Ada"}`}, server...)...)
			r.want(t, exitOK)
			if want := "{\"message\":\"Hello, A!\"}\n{\"message\":\"Hello, d!\"}\n{\"message\":\"Hello, a!\"}\n"; r.stdout != want {
				t.Errorf("Greetings stdout = %q, want %q", r.stdout, want)
			}
			r = ferryCmd(t, append([]string{"call", "echo", "Greetings", `{"name":"fail"}`}, server...)...)
			r.want(t, exitFailure, "failed_precondition", "failed as asked")
			if strings.Count(r.stdout, "\n") != 4 {
				t.Errorf("the replies before the failure were not all printed: %q", r.stdout)
			}
			r = ferryCmdIn(t, "{\"name\":\"Ada\"}\n\n{\"name\":\"Bob\"}\n", append([]string{"call", "echo", "Chat"}, bidi...)...)
			r.want(t, exitOK)
			if want := "{\"message\":\"Hello, Ada!\"}\n{\"message\":\"Hello, Bob!\"}\n"; r.stdout != want {
				t.Errorf("Chat stdout = %q, want %q", r.stdout, want)
			}
			r = ferryCmdIn(t, "{\"name\":\"Ada\"}\nnot json\n", append([]string{"call", "echo", "Chat"}, bidi...)...)
			r.want(t, exitUsage, "stdin line 2", "not valid JSON")
			r = ferryCmd(t, append([]string{"call", "echo", "Chat", `{"name":"x"}`}, bidi...)...)
			r.want(t, exitUsage, "read their messages from stdin")
		})
	}
}
