package ferrytest

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
)

// Transports returns the built-in transports, HTTP, gRPC and NATS, described
// for Conformance.
func Transports() []Transport {
	return []Transport{HTTP(), GRPC(), NATSTransport()}
}

// HTTP describes the HTTP transport. Its client receives server streams as
// NDJSON, the default.
func HTTP() Transport { return httpTransport("http") }

// HTTPSSE is HTTP with a client that receives server streams as
// Server-Sent Events (fhttp.WithStreamFormat(fhttp.SSE)), for
// StreamConformance.
func HTTPSSE() Transport { return httpTransport("http-sse", fhttp.WithStreamFormat(fhttp.SSE)) }

func httpTransport(name string, copts ...fhttp.ClientOption) Transport {
	return Transport{Name: name, UnknownEndpoint: errs.NotFound, Serve: func(t testing.TB, s *server.Server, lim Limits) Conn {
		tr := fhttp.NewServer("127.0.0.1:0", fhttp.WithMaxBodyBytes(int64(lim.MaxRequestBytes)),
			fhttp.WithDefaultTimeout(lim.DefaultTimeout), fhttp.WithMaxTimeout(lim.MaxTimeout))
		serve(t, s, tr)
		base := "http://" + tr.Addr().String()
		c := must(fhttp.NewClient(base, copts...))(t)
		t.Cleanup(func() { _ = c.Close() })
		return Conn{Client: c, SendRaw: func(ctx context.Context, service, endpoint, ct string, body []byte) error {
			rc := must(fhttp.NewClient(base, append(copts[:len(copts):len(copts)], fhttp.WithCodec(rawCodec{ct: ct}))...))(t)
			defer rc.Close()
			var out []byte
			return rc.Invoke(ctx, service, endpoint, body, &out)
		}, ClientWith: func(mws ...middleware.Middleware) transport.Client {
			mc := must(fhttp.NewClient(base, append(copts[:len(copts):len(copts)], fhttp.WithClientMiddleware(mws...))...))(t)
			t.Cleanup(func() { _ = mc.Close() })
			return mc
		}}
	}, New: func(t testing.TB) Lifecycle {
		tr := fhttp.NewServer("127.0.0.1:0")
		t.Cleanup(func() { _ = tr.Stop(context.Background()) })
		return Lifecycle{Transport: tr, Dial: func() transport.Client {
			return must(fhttp.NewClient("http://" + tr.Addr().String()))(t)
		}}
	}}
}

// GRPC describes the gRPC transport. SendRaw ignores the content type:
// gRPC always carries protobuf. An unknown endpoint is Unimplemented, the
// gRPC standard.
func GRPC() Transport {
	return Transport{Name: "grpc", UnknownEndpoint: errs.Unimplemented, Serve: func(t testing.TB, s *server.Server, lim Limits) Conn {
		tr := fgrpc.NewServer("127.0.0.1:0", fgrpc.WithMaxRecvMsgSize(lim.MaxRequestBytes),
			fgrpc.WithDefaultTimeout(lim.DefaultTimeout), fgrpc.WithMaxTimeout(lim.MaxTimeout))
		serve(t, s, tr)
		c := must(fgrpc.NewClient(tr.Addr().String()))(t)
		t.Cleanup(func() { _ = c.Close() })
		raw := must(fgrpc.NewClient(tr.Addr().String(), fgrpc.WithCallOptions(grpc.ForceCodecV2(rawGRPCCodec{}))))(t)
		t.Cleanup(func() { _ = raw.Close() })
		return Conn{Client: c, SendRaw: func(ctx context.Context, service, endpoint, _ string, body []byte) error {
			var out []byte
			return raw.Invoke(ctx, service, endpoint, body, &out)
		}, ClientWith: func(mws ...middleware.Middleware) transport.Client {
			mc := must(fgrpc.NewClient(tr.Addr().String(), fgrpc.WithClientMiddleware(mws...)))(t)
			t.Cleanup(func() { _ = mc.Close() })
			return mc
		}}
	}, New: func(t testing.TB) Lifecycle {
		tr := fgrpc.NewServer("127.0.0.1:0")
		t.Cleanup(func() { _ = tr.Stop(context.Background()) })
		return Lifecycle{Transport: tr, Dial: func() transport.Client {
			return must(fgrpc.NewClient(tr.Addr().String()))(t)
		}}
	}}
}

// NATSTransport describes the NATS transport, served through an embedded
// NATS server started for the test.
func NATSTransport() Transport {
	return Transport{Name: "nats", UnknownEndpoint: errs.NotFound, Serve: func(t testing.TB, s *server.Server, lim Limits) Conn {
		url := NATS(t).ClientURL()
		serve(t, s, fnats.NewServer(Connect(t, url), fnats.WithMaxRequestBytes(lim.MaxRequestBytes),
			fnats.WithDefaultTimeout(lim.DefaultTimeout), fnats.WithMaxTimeout(lim.MaxTimeout)))
		nc := Connect(t, url)
		return Conn{Client: fnats.NewClient(nc), SendRaw: func(ctx context.Context, service, endpoint, ct string, body []byte) error {
			var out []byte
			return fnats.NewClient(nc, fnats.WithCodec(rawCodec{ct: ct})).Invoke(ctx, service, endpoint, body, &out)
		}, ClientWith: func(mws ...middleware.Middleware) transport.Client {
			return fnats.NewClient(nc, fnats.WithClientMiddleware(mws...))
		}}
	}, New: func(t testing.TB) Lifecycle {
		url := NATS(t).ClientURL()
		tr := fnats.NewServer(Connect(t, url))
		t.Cleanup(func() { _ = tr.Stop(context.Background()) })
		nc := Connect(t, url)
		return Lifecycle{Transport: tr, Dial: func() transport.Client { return fnats.NewClient(nc) }}
	}}
}

func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatalf("ferrytest: %v", err)
		}
		return v
	}
}

// serve starts tr for s until the end of the test.
func serve(t testing.TB, s *server.Server, tr server.Transport) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Start(ctx, s); err != nil {
		t.Fatalf("ferrytest: start %T: %v", tr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tr.Stop(ctx); err != nil {
			t.Errorf("ferrytest: stop %T: %v", tr, err)
		}
	})
}

// rawCodec passes bytes through unchanged, labelled with any content type;
// it lets SendRaw put arbitrary payloads on the wire through the real clients.
type rawCodec struct{ ct string }

func (rawCodec) Name() string          { return "proto" }
func (c rawCodec) ContentType() string { return c.ct }

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("ferrytest: raw codec marshals []byte, not %T", v)
	}
	return b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("ferrytest: raw codec unmarshals into *[]byte, not %T", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}

// rawGRPCCodec is rawCodec in grpc-go's CodecV2 form.
type rawGRPCCodec struct{}

func (rawGRPCCodec) Name() string { return "proto" }

func (rawGRPCCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, err := rawCodec{}.Marshal(v)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawGRPCCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return rawCodec{}.Unmarshal(data.Materialize(), v)
}

// Instance is a service running at once on HTTP, gRPC and NATS on loopback,
// with a client for each transport.
type Instance struct {
	Service *ferry.Service
	// HTTPAddr and GRPCAddr are host:port; NATSURL is the embedded server's URL.
	HTTPAddr, GRPCAddr, NATSURL string
	HTTP, GRPC, NATS            transport.Client
}

// Start runs srv on all three transports until the end of the test.
func Start(t testing.TB, srv *server.Server) *Instance {
	t.Helper()
	url := NATS(t).ClientURL()
	h := fhttp.NewServer("127.0.0.1:0")
	g := fgrpc.NewServer("127.0.0.1:0")
	nc := fnats.Connect(url, nats.Name(srv.Name()))
	svc := ferry.New(srv, ferry.WithConnection(nc), ferry.WithTransport(h), ferry.WithTransport(g), ferry.WithTransport(nc.Serve()), ferry.WithSignals())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("ferrytest: start %s: %v", srv.Name(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("ferrytest: stop %s: %v", srv.Name(), err)
		}
	})
	inst := &Instance{Service: svc, HTTPAddr: h.Addr().String(), GRPCAddr: g.Addr().String(), NATSURL: url}
	inst.HTTP = must(fhttp.NewClient("http://" + inst.HTTPAddr))(t)
	gc := must(fgrpc.NewClient(inst.GRPCAddr))(t)
	inst.GRPC = gc
	inst.NATS = fnats.NewClient(Connect(t, url))
	t.Cleanup(func() { _ = inst.HTTP.Close(); _ = gc.Close() })
	return inst
}

// ServeGRPC serves gs — a plain grpc-go server, no Ferry in it — on a
// free loopback port until the test ends, then stops it and waits for
// Serve to return. It returns the address.
func ServeGRPC(t testing.TB, gs *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-served
	})
	return lis.Addr().String()
}
