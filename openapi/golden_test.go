package openapi_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-go/ferry/openapi"
	"github.com/ferry-go/ferry/server"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

type HelloRequest struct {
	Name     string `json:"name" validate:"required,min=1,max=40"`
	Language string `json:"language,omitempty" validate:"omitempty,oneof=en fr de"`
}

type HelloReply struct {
	Message string `json:"message"`
}

type CountdownRequest struct {
	From int `json:"from" validate:"min=1,max=10"`
}

type Count struct {
	N int `json:"n"`
}

// greeter is a small service: one unary endpoint with a route, and a
// server stream.
func greeter() *server.Server {
	s := server.New("greeter", server.WithVersion("1.0.0"), server.WithDescription("Says hello."))
	server.Handle(s, "Hello", func(_ context.Context, req *HelloRequest) (*HelloReply, error) {
		return &HelloReply{Message: "Hello, " + req.Name}, nil
	}, server.WithIdempotent(), server.WithRoute("GET /v1/hello/{name}"))
	server.HandleServerStream(s, "Countdown", func(_ context.Context, req *CountdownRequest, out server.Sender[Count]) error {
		for n := req.From; n > 0; n-- {
			if err := out.Send(&Count{N: n}); err != nil {
				return err
			}
		}
		return nil
	})
	return s
}

// TestGolden pins the document of a small service (go test -update
// rewrites testdata/greeter.json).
func TestGolden(t *testing.T) {
	got, _ := document(t, greeter(), openapi.WithServer("http://localhost:8080", "local"))
	path := filepath.Join("testdata", "greeter.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("document differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}
