package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/ferrytest"
)

// TestGatewayCommand: `ferry gateway --nats-url …` routes a service
// registered in the NATS registry, with the JSON reply of the service, and
// stops cleanly when its context ends.
func TestGatewayCommand(t *testing.T) {
	s := startService(t, true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"gateway", "--nats-url", s.natsURL, "--set", "gateway.addr=" + addr,
			"--set", "admin.enabled=false", "--log-level", "error"}, &stdout, &stderr)
	}()
	var body string
	ferrytest.Eventually(t, "echo.Hello through ferry gateway", func() bool {
		select {
		case code := <-done:
			t.Fatalf("ferry gateway exited with %d: %s", code, stderr.String())
		default:
		}
		resp, err := http.Post("http://"+addr+"/echo/Hello", "application/json", strings.NewReader(`{"name":"gw"}`))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	if !strings.Contains(body, "gw") {
		t.Errorf("echo.Hello through the gateway = %s", body)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("ferry gateway exited with %d after its context ended, want 0: %s", code, stderr.String())
	}
}

func TestGatewayHelp(t *testing.T) {
	r := ferryCmd(t, "gateway", "--help")
	r.want(t, exitOK)
	for _, want := range []string{"Run the API gateway", "--nats-url", "--set", "gateway.addr"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ferry gateway --help =\n%s\nwant %q in it", r.stdout, want)
		}
	}
}
