package main

import (
	"context"
	"testing"

	"github.com/ferry-go/ferry/config"
	"github.com/ferry-go/ferry/errs"
)

// TestFerryYAML: the example's file is valid and gives the example the
// ports the README's table lists, so it runs beside the other examples.
func TestFerryYAML(t *testing.T) {
	cfg, err := config.Load(config.Sources{File: "ferry.yaml", Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cfg.Service.Name, cfg.Transports.HTTP.Addr, cfg.Transports.GRPC.Addr, cfg.Admin.Addr, cfg.Registry.Kind}
	want := []string{"hello", ":8083", ":9093", ":9466", "nats"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ferry.yaml: %v, want %v", got, want)
			break
		}
	}
	if cfg.NATS.URL != "" || cfg.NATS.Embedded.Port != 4224 {
		t.Errorf("ferry.yaml: nats %+v, want an embedded server on 4224", cfg.NATS)
	}
}

func TestHello(t *testing.T) {
	r, err := Hello(context.Background(), &HelloRequest{Name: " Ada "})
	if err != nil || r.Message != "Hello, Ada!" {
		t.Errorf("Hello(Ada) = %v, %v", r, err)
	}
	if _, err := Hello(context.Background(), &HelloRequest{}); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Hello() = %v, want invalid_argument", err)
	}
}
