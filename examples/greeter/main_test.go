package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHelloOnEveryTransport(t *testing.T) {
	inst := ferrytest.Start(t, newServer())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, c := range map[string]transport.Client{"http": inst.HTTP, "grpc": inst.GRPC, "nats": inst.NATS} {
		got, err := Hello.Call(ctx, c, &HelloRequest{Name: "Ada"})
		if err != nil || got.Message != "Hello, Ada!" {
			t.Errorf("%s: Hello(Ada) = %v, %v, want Hello, Ada!", name, got, err)
		}
		_, err = Hello.Call(ctx, c, &HelloRequest{})
		if e := errs.FromError(err); e.Code() != errs.InvalidArgument || len(e.Details()) != 1 || e.Details()[0].Field != "name" {
			t.Errorf("%s: Hello() = %v, want invalid_argument on field name", name, err)
		}
	}

	// What the README promises for curl: a form-encoded body (curl -d) and the REST route.
	resp, err := http.Post("http://"+inst.HTTPAddr+"/greeter/Hello", "application/x-www-form-urlencoded", strings.NewReader(`{"name":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != `{"message":"Hello, Ada!"}` {
		t.Errorf("curl -d body = %s", body)
	}
	resp, err = http.Get("http://" + inst.HTTPAddr + "/v1/hello/Ada")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != `{"message":"Hello, Ada!"}` {
		t.Errorf("GET /v1/hello/Ada = %s", body)
	}
}

func TestParseFlags(t *testing.T) {
	env := map[string]string{"GREETER_HTTP_ADDR": ":18080", "NATS_URL": "nats://example:4222"}
	c, err := parseFlags([]string{"-grpc", ":19090", "-nats-port", "14222"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := config{httpAddr: ":18080", grpcAddr: ":19090", natsURL: "nats://example:4222", natsPort: 14222}
	if c != want {
		t.Errorf("parseFlags = %+v, want %+v", c, want)
	}
	if _, err := parseFlags(nil, func(k string) string {
		if k == "GREETER_NATS_PORT" {
			return "abc"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "GREETER_NATS_PORT") {
		t.Errorf("parseFlags(bad port env) = %v, want an error naming GREETER_NATS_PORT", err)
	}
}
