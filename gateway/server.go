package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server serves a Gateway over HTTP, as a ferry.Service component
// (ferry.WithComponent): Start follows the catalogue and listens; Stop
// stops accepting, drains the requests in flight and ends the watch. It is
// not advertised in the registry: the gateway is the entry point, not a
// service to call through it.
type Server struct {
	addr string
	g    *Gateway
	tls  *tls.Config

	mu sync.Mutex
	hs *http.Server
	ln net.Listener
}

// NewServer returns a server of g on addr (host:port), with TLS when
// tlsCfg is not nil.
func NewServer(addr string, g *Gateway, tlsCfg *tls.Config) *Server {
	return &Server{addr: addr, g: g, tls: tlsCfg}
}

// Start starts the gateway and listens.
func (s *Server) Start(ctx context.Context) error {
	if err := s.g.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		_ = s.g.Stop(ctx)
		return fmt.Errorf("gateway: listen on %s: %w", s.addr, err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	hs := &http.Server{Handler: s.g, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: nil}
	s.mu.Lock()
	s.hs, s.ln = hs, ln
	s.mu.Unlock()
	go func() { _ = hs.Serve(ln) }()
	return nil
}

// Stop drains the requests in flight (until ctx ends, then closes them)
// and stops the gateway.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	hs := s.hs
	s.hs, s.ln = nil, nil
	s.mu.Unlock()
	if hs == nil {
		return nil
	}
	err := hs.Shutdown(ctx)
	if err != nil {
		_ = hs.Close()
	}
	return errors.Join(err, s.g.Stop(ctx))
}

// ListenAddr tells where the gateway listens ("gateway", "http://host:port"),
// for the service's start log and Service.Addr("gateway").
func (s *Server) ListenAddr() (name, addr string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return "", "", false
	}
	scheme := "http://"
	if s.tls != nil {
		scheme = "https://"
	}
	return "gateway", scheme + s.ln.Addr().String(), true
}
