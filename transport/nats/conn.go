package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// Conn is a NATS connection with a lifecycle: it connects at Start and
// drains and closes at Stop, so a ferry.Service can own it
// (ferry.WithConnection). The NATS transport (Serve), a NATS registry and
// broker use it once it started:
//
//	nc := fnats.Connect("nats://127.0.0.1:4222", nats.Name("orders"))
//	svc := ferry.New(srv, ferry.WithConnection(nc), ferry.WithTransport(nc.Serve()))
//
// Reconnection is unlimited unless opts say otherwise.
type Conn struct {
	url  func() string
	opts []nats.Option

	mu sync.Mutex
	nc *nats.Conn
}

// Connect returns a Conn to url (a NATS server URL, or a comma-separated
// list) with opts (credentials, TLS, a name), applied after Ferry's own
// (unlimited reconnects).
func Connect(url string, opts ...nats.Option) *Conn {
	return ConnectTo(func() string { return url }, opts...)
}

// ConnectTo is Connect for a URL known only at Start — that of an embedded
// server started before, say:
//
//	emb := natsembed.New(natsembed.Options{})
//	nc := fnats.ConnectTo(emb.ClientURL)
//	svc := ferry.New(srv, ferry.WithConnection(emb), ferry.WithConnection(nc), ...)
func ConnectTo(url func() string, opts ...nats.Option) *Conn {
	return &Conn{url: url, opts: append([]nats.Option{nats.MaxReconnects(-1)}, opts...)}
}

// Start connects.
func (c *Conn) Start(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		return errors.New("nats: connection already started")
	}
	url := c.url()
	if url == "" {
		return errors.New("nats: no server URL to connect to")
	}
	nc, err := nats.Connect(url, c.opts...)
	if err != nil {
		return fmt.Errorf("nats: connect to %s: %w", redact(url), err)
	}
	c.nc = nc
	return nil
}

// Stop closes the connection; what was published is flushed first.
func (c *Conn) Stop(context.Context) error {
	c.mu.Lock()
	nc := c.nc
	c.nc = nil
	c.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
	return nil
}

// Check reports whether the connection is connected (ferry.Checker).
func (c *Conn) Check(context.Context) error {
	nc := c.NATS()
	if nc == nil {
		return errors.New("nats: not connected")
	}
	if st := nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("nats: connection %s", strings.ToLower(st.String()))
	}
	return nil
}

// NATS returns the connection once started, nil before Start or after
// Stop.
func (c *Conn) NATS() *nats.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc
}

// Serve returns the NATS transport on this connection, which must have
// started before the transport starts (ferry.WithConnection sees to it).
func (c *Conn) Serve(opts ...ServerOption) *Server {
	s := NewServer(nil, opts...)
	s.conn = c
	return s
}

// redact hides the password of a URL's user info.
func redact(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
			return scheme + "://" + user + ":xxxxx@" + rest[at+1:]
		}
	}
	return url
}

// connTLS reports whether nc is connected over TLS.
func connTLS(nc *nats.Conn) bool {
	_, err := nc.TLSConnectionState()
	return err == nil
}
