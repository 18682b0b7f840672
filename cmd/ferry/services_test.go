package main

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/registry"
)

// TestServicesAndDescribe lists and describes a service registered in the
// NATS registry and answering NATS discovery.
func TestServicesAndDescribe(t *testing.T) {
	s := startService(t, true)

	r := ferryCmd(t, "services", "--nats-url", s.natsURL)
	r.want(t, exitOK)
	for _, re := range []string{
		`(?m)^SERVICE\s+VERSION\s+INSTANCE\s+SOURCE\s+ENDPOINTS$`,
		`(?m)^echo\s+1\.2\.3\s+\w+\s+\$SRV\s+nats$`,
		`(?m)^echo\s+1\.2\.3\s+\w+\s+registry\s+http=` + regexp.QuoteMeta(s.httpURL) + ` grpc=` + regexp.QuoteMeta(s.grpcAddr) + ` nats=` + regexp.QuoteMeta(s.natsURL) + `$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("services =\n%s\nwant a line matching %s", r.stdout, re)
		}
	}

	r = ferryCmd(t, "services", "--nats-url", s.natsURL, "--json")
	r.want(t, exitOK)
	var rows []serviceRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("services --json = %q: %v", r.stdout, err)
	}
	var sources []string
	for _, row := range rows {
		sources = append(sources, row.Source)
		if row.Service != "echo" || row.Version != "1.2.3" || row.ID == "" {
			t.Errorf("services --json row = %+v, want service echo 1.2.3 with an ID", row)
		}
		if row.Source == sourceRegistry && !slices.Contains(row.Endpoints, registry.Endpoint{Transport: "grpc", Address: s.grpcAddr}) {
			t.Errorf("registry row endpoints = %v, want grpc %s among them", row.Endpoints, s.grpcAddr)
		}
	}
	if want := []string{sourceDiscovery, sourceRegistry}; !slices.Equal(sources, want) {
		t.Errorf("services --json sources = %v, want %v", sources, want)
	}

	r = ferryCmd(t, "describe", "echo", "--nats-url", s.natsURL)
	r.want(t, exitOK)
	for _, re := range []string{
		`(?m)^Service:\s+echo$`,
		`(?m)^Description:\s+Echoes its request$`,
		`(?m)^Instances:\s+1, from \$SRV\.INFO\.echo on .*\(1\.2\.3\)$`,
		`(?m)^Echo\s+echo\.Echo\s+echo\s+main\.EchoRequest\s+main\.EchoRequest$`,
		`(?m)^Hello\s+echo\.Hello\s+echo\s+main\.HelloRequest\s+main\.HelloReply$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("describe (NATS) =\n%s\nwant a line matching %s", r.stdout, re)
		}
	}

	r = ferryCmd(t, "describe", "echo", "--grpc", s.grpcAddr)
	r.want(t, exitOK)
	for _, want := range []string{
		"service echo.Echo {\n  rpc Echo(echo.EchoRequest) returns (echo.EchoRequest);\n  rpc Hello(echo.HelloRequest) returns (echo.HelloReply);\n  rpc Slow(echo.HelloRequest) returns (echo.HelloReply);\n" +
			"  rpc Greetings(echo.HelloRequest) returns (stream echo.HelloReply);\n  rpc Chat(stream echo.HelloRequest) returns (stream echo.HelloReply);\n}\n",
		"  int64 count = 2;\n",
		"  repeated string tags = 4;\n",
		"  map<string, int32> labels = 5;\n",
		"  google.protobuf.Timestamp at = 6;\n",
		"  echo.Inner inner = 8;\n",
		"  optional int32 opt = 9;\n",
		"  bool ok = 12;\n",
		"  string user_id = 14 [json_name = \"UserID\"];\n",
		"message echo.Inner {\n  int32 n = 1;\n  string note = 2;\n}\n",
		"message echo.HelloReply {\n  string message = 1;\n}\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("describe --grpc =\n%s\nwant it to contain\n%s", r.stdout, want)
		}
	}
	if n := strings.Count(r.stdout, "message echo.Inner {"); n != 1 {
		t.Errorf("describe --grpc spells echo.Inner out %d times, want once", n)
	}
}

// TestDescribeNotThere checks that describing a missing service fails
// within the timeout, saying so, and that listing an empty NATS says so
// without failing.
func TestDescribeNotThere(t *testing.T) {
	url := ferrytest.NATS(t).ClientURL()
	r := ferryCmd(t, "describe", "nope", "--nats-url", url, "--timeout", "1s")
	r.want(t, exitFailure, `not_found: service "nope" is not there: no instance answered $SRV.INFO.nope`)
	if r.took > 3*time.Second {
		t.Errorf("describe nope took %v, want about 1s at most", r.took)
	}
	down := closedAddr(t)
	ferryCmd(t, "describe", "nope", "--grpc", down, "--timeout", "2s").want(t, exitFailure, "unavailable:", "gRPC "+down)
	ferryCmd(t, "describe", "nope", "--grpc", "x:1", "--nats-url", url).want(t, exitUsage, "if any flags in the group [grpc nats-url] are set none of the others can be")

	r = ferryCmd(t, "services", "--nats-url", url)
	r.want(t, exitOK, `no registry bucket "ferry_registry"`, "no services found on "+url)
	r = ferryCmd(t, "services", "--nats-url", url, "--json")
	if r.code != exitOK || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("services --json on an empty NATS = %q (exit %d), want []", r.stdout, r.code)
	}

	// A NATS server without JetStream has no registry.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	plain, err := natsembed.Start(ctx, natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Shutdown)
	ferryCmd(t, "services", "--nats-url", plain.ClientURL()).want(t, exitOK, `no registry bucket "ferry_registry"`, "JetStream is not enabled there")
	ferryCmd(t, "call", "echo", "Hello", "--registry", "nats", "--nats-url", plain.ClientURL()).want(t, exitFailure, "JetStream is not enabled there")
}
