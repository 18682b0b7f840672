package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ferry-go/ferry/client"
	"github.com/ferry-go/ferry/cmd/ferry/internal/grpcreflect"
	"github.com/ferry-go/ferry/errs"
	natsreg "github.com/ferry-go/ferry/registry/nats"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/dynamicpb"
)

// streamFlag maps --stream's values to stream kinds.
var streamFlag = map[string]transport.StreamKind{
	"":       transport.Unary,
	"server": transport.ServerStreaming,
	"client": transport.ClientStreaming,
	"bidi":   transport.BidiStreaming,
}

// streamCall is a stream opened by `ferry call`, with the conversions
// between JSON text and the transport's messages.
type streamCall struct {
	kind     transport.StreamKind
	open     func(ctx context.Context) (transport.ClientStream, error)
	request  func(json []byte) (any, error) // a JSON object to a message to send
	newReply func() any
	reply    func(m any) ([]byte, error) // a received message to JSON
	close    func()
	// invoke makes the call when it is unary (kind Unary): the same
	// connection, look-up and types as a stream would use.
	invoke func(ctx context.Context, req, resp any) error
}

// runUnary makes sc's unary call with the JSON request body and returns
// the reply as JSON.
func runUnary(ctx context.Context, sc *streamCall, body []byte) ([]byte, error) {
	defer sc.close()
	req, err := sc.request(body)
	if err != nil {
		return nil, err
	}
	resp := sc.newReply()
	if err := sc.invoke(ctx, req, resp); err != nil {
		return nil, err
	}
	return sc.reply(resp)
}

// jsonStream is a streamCall whose messages are JSON as they are (HTTP,
// NATS, and client.Client over either).
func jsonStream(kind transport.StreamKind, sc transport.Streamer, service, endpoint string, closeFn func()) *streamCall {
	var invoke func(ctx context.Context, req, resp any) error
	if c, ok := sc.(transport.Client); ok {
		invoke = func(ctx context.Context, req, resp any) error { return c.Invoke(ctx, service, endpoint, req, resp) }
	}
	return &streamCall{
		invoke: invoke,
		kind:   kind,
		open: func(ctx context.Context) (transport.ClientStream, error) {
			return sc.NewStream(ctx, service, endpoint, kind)
		},
		request:  func(b []byte) (any, error) { return json.RawMessage(b), nil },
		newReply: func() any { return new(json.RawMessage) },
		reply:    func(m any) ([]byte, error) { return *m.(*json.RawMessage), nil },
		close:    closeFn,
	}
}

// grpcStream is a streamCall over gRPC with the method's types read
// through reflection; the kind is the method's own.
func grpcStream(ctx context.Context, cc *grpc.ClientConn, c interface {
	transport.Client
	transport.Streamer
}, service, endpoint string, closeFn func()) (*streamCall, error) {
	sd, err := grpcreflect.Resolve(ctx, cc, fgrpc.ServiceName(service))
	if err != nil {
		return nil, err
	}
	md, err := grpcreflect.Method(sd, endpoint)
	if err != nil {
		return nil, err
	}
	return &streamCall{
		kind: fgrpc.StreamKindOf(md),
		open: func(ctx context.Context) (transport.ClientStream, error) {
			return c.NewStream(ctx, service, endpoint, fgrpc.StreamKindOf(md))
		},
		request:  func(b []byte) (any, error) { return grpcreflect.ParseJSON(md.Input(), b) },
		newReply: func() any { return dynamicpb.NewMessage(md.Output()) },
		reply:    func(m any) ([]byte, error) { return grpcreflect.MarshalJSON(m.(*dynamicpb.Message)) },
		close:    closeFn,
		invoke:   func(ctx context.Context, req, resp any) error { return c.Invoke(ctx, service, endpoint, req, resp) },
	}, nil
}

// openStreamCall prepares the call to r over gRPC directly and through the
// registry, where the endpoint's kind is learnt (reflection, the registry
// entry) with what the call needs anyway — a unary call is then made with
// the same session (streamCall.invoke) — and over HTTP and NATS when
// --stream names a stream. It returns nil for a unary call over HTTP or
// NATS, which needs nothing prepared.
func openStreamCall(ctx context.Context, o *callOptions, r route, service, endpoint string) (*streamCall, error) {
	kind := streamFlag[o.stream]
	switch {
	case r.registry:
		return registryStream(ctx, o, r.transport, service, endpoint, kind)
	case r.transport == "grpc":
		cc, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, usagef("invalid gRPC address %q: %v", r.addr, err)
		}
		sc, err := grpcStream(ctx, cc, fgrpc.NewClientConn(cc), service, endpoint, func() { _ = cc.Close() })
		if err != nil {
			_ = cc.Close()
			return nil, annotate(err, "gRPC "+r.addr)
		}
		annotated := sc.invoke
		sc.invoke = func(ctx context.Context, req, resp any) error {
			if err := annotated(ctx, req, resp); err != nil {
				return annotate(err, "gRPC "+r.addr)
			}
			return nil
		}
		return sc, nil
	case kind == transport.Unary:
		return nil, nil
	case r.transport == "http":
		c, err := fhttp.NewClient(r.addr)
		if err != nil {
			return nil, usageError{err}
		}
		return streamer(kind, c, service, endpoint, func() { _ = c.Close() })
	default:
		nc, err := o.nats.connect(ctx)
		if err != nil {
			return nil, err
		}
		return streamer(kind, fnats.NewClient(nc), service, endpoint, nc.Close)
	}
}

func streamer(kind transport.StreamKind, c transport.Client, service, endpoint string, closeFn func()) (*streamCall, error) {
	sc, ok := c.(transport.Streamer)
	if !ok {
		closeFn()
		return nil, errs.Newf(errs.Unimplemented, "the %T client does not open streams", c)
	}
	return jsonStream(kind, sc, service, endpoint, closeFn), nil
}

// registryStream finds the service in the NATS registry and calls it
// through client.Client: over NATS or HTTP by default (a JSON body passes
// through both unchanged), over gRPC only when asked, with the types read
// through the reflection of one of its instances. The endpoint's kind
// comes from its registration unless --stream says.
func registryStream(ctx context.Context, o *callOptions, tr, service, endpoint string, kind transport.StreamKind) (*streamCall, error) {
	nc, err := o.nats.connect(ctx)
	if err != nil {
		return nil, err
	}
	js, _, err := o.nats.openRegistry(ctx, nc)
	if err != nil {
		nc.Close()
		if errors.Is(err, errNoRegistry) {
			return nil, errs.Newf(errs.NotFound, "service %q is not there: %v (no service has registered)", service, err)
		}
		return nil, err
	}
	reg, err := natsreg.New(ctx, js, natsreg.WithBucket(o.nats.bucket))
	if err != nil {
		nc.Close()
		return nil, annotate(err, "open the NATS registry")
	}
	ins, err := reg.Lookup(ctx, service)
	if err != nil {
		_ = reg.Close()
		nc.Close()
		return nil, annotate(err, "look up "+service)
	}
	if kind == transport.Unary {
		for _, in := range ins {
			if k, ok := in.StreamKinds()[endpoint]; ok {
				kind = k
				break
			}
		}
	}
	opts := []client.Option{client.WithTransports("nats", "http"), client.WithNATS(nc)}
	switch tr {
	case "http", "grpc":
		opts = []client.Option{client.WithTransports(tr)}
	case "nats":
		opts = []client.Option{client.WithTransports("nats"), client.WithNATS(nc)}
	}
	c, err := client.New(reg, opts...)
	if err != nil {
		_ = reg.Close()
		nc.Close()
		return nil, err
	}
	closeAll := func() { _ = c.Close(); _ = reg.Close(); nc.Close() }
	var sc *streamCall
	if tr != "grpc" {
		sc = jsonStream(kind, c, service, endpoint, closeAll)
	} else {
		var addr string
		for _, in := range ins {
			if ep, ok := in.Endpoint("grpc"); ok {
				addr = ep.Address
				break
			}
		}
		switch {
		case len(ins) == 0:
			closeAll()
			return nil, errs.Newf(errs.NotFound, "service %q is not there: no instance is registered (NATS registry %s on %s)", service, o.nats.bucket, o.nats.resolvedURL())
		case addr == "":
			closeAll()
			return nil, errs.Newf(errs.NotFound, "none of the %d registered instances of service %q serves gRPC", len(ins), service)
		}
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			closeAll()
			return nil, errs.Newf(errs.Unavailable, "registered gRPC address %q: %v", addr, err)
		}
		if sc, err = grpcStream(ctx, cc, c, service, endpoint, func() { _ = cc.Close(); closeAll() }); err != nil {
			_ = cc.Close()
			closeAll()
			return nil, annotate(err, "gRPC "+addr)
		}
		if kind != transport.Unary {
			sc.kind = kind // --stream, when given, as over JSON
		}
	}
	invoke := sc.invoke
	sc.invoke = func(ctx context.Context, req, resp any) error {
		if err := invoke(ctx, req, resp); err != nil {
			return registryError(err, o, service, endpoint)
		}
		return nil
	}
	return sc, nil
}

// runStream runs a streaming call: a server stream sends body and prints
// each reply as it arrives, one JSON object per line; client and
// bidirectional streams send every JSON object read from stdin (one per
// line, blank lines skipped) and print the replies as they come.
func runStream(cmd *cobra.Command, sc *streamCall, body []byte, bodyGiven bool) error {
	defer sc.close()
	if sc.kind.ClientSends() && bodyGiven {
		return usagef("%s endpoints read their messages from stdin, one JSON object per line: give no [json] argument", sc.kind)
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	st, err := sc.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	sendErr := make(chan error, 1)
	var wg sync.WaitGroup
	if sc.kind == transport.ServerStreaming {
		m, err := sc.request(body)
		if err != nil {
			return usageError{err}
		}
		if err := st.Send(m); err != nil {
			return err
		}
		if err := st.CloseSend(); err != nil {
			return err
		}
		sendErr <- nil
	} else {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sendErr <- sendLines(cmd.InOrStdin(), sc, st)
		}()
	}
	out := cmd.OutOrStdout()
	var recvErr error
	for {
		m := sc.newReply()
		if err := st.Recv(m); err != nil {
			if err != io.EOF {
				recvErr = err
			}
			break
		}
		b, err := sc.reply(m)
		if err != nil {
			recvErr = errs.Newf(errs.Internal, "the reply is not JSON: %v", err)
			break
		}
		var line bytes.Buffer
		if err := json.Compact(&line, b); err != nil {
			line.Reset()
			line.Write(b)
		}
		line.WriteByte('\n')
		if _, err := out.Write(line.Bytes()); err != nil {
			recvErr = err
			break
		}
	}
	_ = st.Close() // a sender blocked on the server stops
	wg.Wait()
	if err := <-sendErr; err != nil {
		var ue usageError
		if errors.As(err, &ue) || recvErr == nil {
			return err // a bad stdin line is what the user must see
		}
	}
	return recvErr
}

// sendLines sends each JSON object line of r, then closes the sending side.
func sendLines(r io.Reader, sc *streamCall, st transport.ClientStream) error {
	sc2 := bufio.NewScanner(r)
	sc2.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc2.Scan() {
		line := bytes.TrimSpace(sc2.Bytes())
		if len(line) == 0 {
			continue
		}
		n++
		if err := checkRequest(line); err != nil {
			_ = st.Close()
			return usagef("stdin line %d: %v", n, err)
		}
		m, err := sc.request(bytes.Clone(line))
		if err != nil {
			_ = st.Close()
			return usagef("stdin line %d: %v", n, err)
		}
		if err := st.Send(m); err != nil {
			return err // the stream broke: Recv says why
		}
	}
	if err := sc2.Err(); err != nil {
		_ = st.Close()
		return fmt.Errorf("read stdin: %w", err)
	}
	return st.CloseSend()
}
