package config

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync/atomic"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/gateway"
	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/registry/natssrv"
	"github.com/ferry-go/ferry/server"
)

// RoutesReply is the reply of a gateway service's Routes endpoint.
type RoutesReply struct {
	Routes []gateway.Route `json:"routes"`
}

// gatewayPart adds the API gateway when gateway.enabled: a component that
// makes it at start — on the service's registry, calling through its
// client, behind its middleware — and serves it on gateway.addr; and the
// service's Routes endpoint, which lists the gateway's routes. Without a
// registry but with NATS, the gateway and the service's client follow what
// NATS $SRV discovery finds on the service's connection (registry/natssrv),
// as with registry.kind srv, and call over NATS by subject.
func (b *builder) gatewayPart(srv *server.Server) error {
	gc := b.cfg.Gateway
	if !gc.Enabled {
		return nil
	}
	if b.reg == nil {
		if b.conn == nil {
			return b.problemAt("gateway.enabled", "true", "the gateway routes the services of a registry, or those NATS discovery finds: "+
				"set registry.kind (memory, nats, srv, static, dns), or enable NATS (transports.nats.enabled)")
		}
		// NATS discovery for the gateway and the service's client alike (so
		// the client learns idempotent endpoints); nothing registers in it.
		conn, logger := b.conn, b.logger
		b.reg = &sharedRegistry{make: func(context.Context) (registry.Registry, error) {
			return natssrv.New(conn.NATS(), natssrv.WithLogger(logger))
		}}
	}
	var tc *tls.Config
	if gc.TLS.CertFile != "" {
		var err error
		if tc, err = loadTLS(gc.TLS); err != nil {
			return b.problemAt("gateway.tls.cert_file", gc.TLS.CertFile, err.Error())
		}
	}
	if err := gateway.CheckRules(gatewayRules(gc.Routes)); err != nil {
		return &Error{Problems: []Problem{{Key: "gateway.routes", Source: b.cfg.Source("gateway.routes"), Message: err.Error()}}}
	}
	comp := &gatewayComponent{b: b, tls: tc}
	server.Handle(srv, "Routes", func(context.Context, *struct{}) (*RoutesReply, error) {
		g := comp.g.Load()
		if g == nil {
			return &RoutesReply{Routes: []gateway.Route{}}, nil
		}
		return &RoutesReply{Routes: g.Routes()}, nil
	}, server.WithIdempotent())
	b.sopts = append(b.sopts, ferry.WithComponent(&keyedComponent{Component: comp, key: "gateway.addr", cfg: b.cfg}))
	return nil
}

func gatewayRules(routes []GatewayRoute) []gateway.Rule {
	rules := make([]gateway.Rule, len(routes))
	for i, rt := range routes {
		rules[i] = gateway.Rule{Service: rt.Service, Endpoint: rt.Endpoint, Path: rt.Path, Hide: rt.Hide, Pin: rt.Pin}
	}
	return rules
}

// gatewayComponent makes and serves the gateway at start.
type gatewayComponent struct {
	b   *builder
	tls *tls.Config
	g   atomic.Pointer[gateway.Gateway]
	srv *gateway.Server
}

func (c *gatewayComponent) Start(ctx context.Context) error {
	b, gc := c.b, c.b.cfg.Gateway
	r, err := b.reg.get(ctx)
	if err != nil {
		return err
	}
	cat, ok := r.(registry.Catalog)
	if !ok {
		return fmt.Errorf("registry %s cannot list every service (registry.Catalog), which the gateway needs", b.cfg.Registry.Kind)
	}
	g, err := gateway.New(cat, b.lc, gateway.WithMiddleware(b.mws...), gateway.WithRules(gatewayRules(gc.Routes)...),
		gateway.WithMaxBody(gc.MaxBody), gateway.WithTimeouts(gc.Timeout, gc.MaxTimeout),
		gateway.WithoutForwarding(gc.DropHeaders...), gateway.WithLogger(b.logger))
	if err != nil {
		return err
	}
	c.srv = gateway.NewServer(gc.Addr, g, c.tls)
	if err := c.srv.Start(ctx); err != nil {
		return err
	}
	c.g.Store(g)
	return nil
}

func (c *gatewayComponent) Stop(ctx context.Context) error {
	if c.srv == nil {
		return nil
	}
	c.g.Store(nil)
	return c.srv.Stop(ctx)
}

// ListenAddr forwards to the server, for the start log and Service.Addr.
func (c *gatewayComponent) ListenAddr() (string, string, bool) {
	if c.srv == nil {
		return "", "", false
	}
	return c.srv.ListenAddr()
}
