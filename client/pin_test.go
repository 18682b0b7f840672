package client_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
)

type kindReply struct {
	Kind string `json:"kind"`
}

// startKinds serves svc's Kind endpoint, which answers the transport that
// carried the call, on each of kinds, registered in reg.
func startKinds(t *testing.T, reg registry.Registrar, natsURL, svc string, kinds ...string) {
	t.Helper()
	srv := server.New(svc)
	server.Handle(srv, "Kind", func(ctx context.Context, _ *EchoRequest) (*kindReply, error) {
		c, _ := transport.CallFromContext(ctx)
		return &kindReply{Kind: c.Kind.String()}, nil
	})
	opts := []ferry.Option{ferry.WithRegistry(reg), ferry.WithLogger(slog.New(slog.DiscardHandler))}
	for _, k := range kinds {
		switch k {
		case "http":
			opts = append(opts, ferry.WithTransport(fhttp.NewServer("127.0.0.1:0")))
		case "grpc":
			opts = append(opts, ferry.WithTransport(fgrpc.NewServer("127.0.0.1:0")))
		case "nats":
			nc := fnats.ConnectTo(func() string { return natsURL })
			opts = append(opts, ferry.WithConnection(nc), ferry.WithTransport(nc.Serve()))
		}
	}
	s := ferry.New(srv, opts...)
	if err := s.Start(ferrytest.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
}

// WithCallTransport pins one call to a transport, whatever the client
// prefers; a transport the service does not offer, or the client does not
// use, is Unavailable naming it.
func TestCallTransport(t *testing.T) {
	ns := ferrytest.NATS(t)
	reg := newMemory()
	startKinds(t, reg, ns.ClientURL(), "all", "http", "grpc", "nats")
	startKinds(t, reg, ns.ClientURL(), "web", "http")
	c := newClient(t, reg, client.WithNATS(ferrytest.Connect(t, ns.ClientURL())))
	ctx := ferrytest.Context(t)
	kind := func(ctx context.Context, c *client.Client, svc string) (string, error) {
		r, err := transport.Endpoint[EchoRequest, kindReply]{Service: svc, Name: "Kind"}.Call(ctx, c, &EchoRequest{})
		if err != nil {
			return "", err
		}
		return r.Kind, nil
	}
	if got, err := kind(ctx, c, "all"); err != nil || got != "nats" {
		t.Errorf("unpinned call = %q, %v, want nats (the preference)", got, err)
	}
	for _, k := range []transport.Kind{transport.HTTP, transport.GRPC, transport.NATS} {
		pctx := client.WithCallTransport(ctx, k)
		if got, ok := client.CallTransport(pctx); !ok || got != k {
			t.Errorf("CallTransport(WithCallTransport(%s)) = %q, %v", k, got, ok)
		}
		if got, err := kind(pctx, c, "all"); err != nil || got != k.String() {
			t.Errorf("call pinned to %s = %q, %v, want it carried by %s", k, got, err, k)
		}
	}
	if got, err := kind(client.WithCallTransport(ctx, transport.HTTP), c, "web"); err != nil || got != "http" {
		t.Errorf("call pinned to http of an HTTP-only service = %q, %v", got, err)
	}
	for _, k := range []transport.Kind{transport.GRPC, transport.NATS} {
		_, err := kind(client.WithCallTransport(ctx, k), c, "web")
		if errs.CodeOf(err) != errs.Unavailable || !strings.Contains(err.Error(), `"web"`) || !strings.Contains(err.Error(), string(k)) {
			t.Errorf("call pinned to %s of an HTTP-only service = %v, want Unavailable naming web and %s", k, err, k)
		}
	}
	httpOnly := newClient(t, reg, client.WithTransports("http"))
	_, err := kind(client.WithCallTransport(ctx, transport.GRPC), httpOnly, "all")
	if errs.CodeOf(err) != errs.Unavailable || !strings.Contains(err.Error(), `"grpc"`) {
		t.Errorf("call pinned to grpc by an HTTP-only client = %v, want Unavailable naming grpc", err)
	}
	if _, ok := client.CallTransport(client.WithCallTransport(ctx, "")); ok {
		t.Error(`CallTransport(WithCallTransport("")) reports a pin`)
	}
}
