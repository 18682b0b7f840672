package config

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/registry"
	regmemory "github.com/ferry-go/ferry/registry/memory"
	"github.com/ferry-go/ferry/transport"
)

// clients holds the outgoing client of each service NewService built.
var clients sync.Map // *ferry.Service → *lazyClient

// Client returns the client a service built by NewService calls other
// services with — the same configuration, swapped by it like the service
// itself:
//
//   - it finds services in the service's registry (registry.kind), or over
//     its NATS connection (queue groups need no registry), preferring the
//     transports of client.transports;
//   - instances registered with TLS are dialled with TLS;
//   - with telemetry.enabled every call is a client span and is measured,
//     and the trace goes on in the called service.
//
// Take it in register and call through it from handlers:
//
//	func register(svc *ferry.Service, srv *server.Server) {
//		payments := config.Client(svc)
//		server.Register(srv, PlaceOrder, func(ctx context.Context, r *Order) (*Placed, error) {
//			charged, err := Charge.Call(ctx, payments, &ChargeRequest{...})
//			...
//		})
//	}
//
// It calls once the service has started (before that a call is
// Unavailable) and is closed when the service stops. For a Service not
// built by NewService it returns a client whose calls all fail.
func Client(svc *ferry.Service) transport.Client {
	if lc, ok := clients.Load(svc); ok {
		return lc.(*lazyClient)
	}
	return &lazyClient{}
}

// lazyClient is the service's client before and after it is made.
type lazyClient struct {
	c atomic.Pointer[client.Client]
}

func (l *lazyClient) Invoke(ctx context.Context, service, endpoint string, req, resp any) error {
	c := l.c.Load()
	if c == nil {
		return errs.Newf(errs.Unavailable, "config: the service's client is not running (the service has not started, has stopped, or was not built by config.NewService)")
	}
	return c.Invoke(ctx, service, endpoint, req, resp)
}

// Close does nothing: the client belongs to the service, which closes it
// when it stops.
func (l *lazyClient) Close() error { return nil }

// sharedRegistry makes the configured registry once, for the
// registration and the client alike.
type sharedRegistry struct {
	make func(ctx context.Context) (registry.Registry, error)
	mu   sync.Mutex
	r    registry.Registry
}

func (s *sharedRegistry) get(ctx context.Context) (registry.Registry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r != nil {
		return s.r, nil
	}
	r, err := s.make(ctx)
	if err != nil {
		return nil, err
	}
	s.r = r
	return r, nil
}

// clientComponent makes the service's client at start, once the
// connections are up and before the transports serve, and closes it at
// stop, after they drained.
type clientComponent struct {
	b  *builder
	lc *lazyClient
}

func (cc *clientComponent) Start(ctx context.Context) error {
	b := cc.b
	var d registry.Discovery = regmemory.New() // no registry: NATS routes by subject
	if b.reg != nil {
		r, err := b.reg.get(ctx)
		if err != nil {
			return err
		}
		d = r
	}
	opts := []client.Option{client.WithTransports(b.cfg.Client.Transports...), client.WithDefaultTimeout(b.cfg.Client.Timeout)}
	if b.conn != nil {
		opts = append(opts, client.WithNATS(b.conn.NATS()))
	}
	if b.tel != nil && b.cfg.Telemetry.Enabled {
		opts = append(opts, client.WithMiddleware([]middleware.Middleware{b.tel.Tracing(), b.tel.Metrics()}...))
	}
	c, err := client.New(d, opts...)
	if err != nil {
		return err
	}
	cc.lc.c.Store(c)
	return nil
}

func (cc *clientComponent) Stop(context.Context) error {
	if c := cc.lc.c.Swap(nil); c != nil {
		return c.Close()
	}
	return nil
}
