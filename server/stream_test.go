package server_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
)

type num struct {
	N int `json:"n"`
}

// memStream is a transport.Stream over slices, for the typed wrappers.
type memStream struct {
	in   []int
	sent []int
}

func (m *memStream) Recv(v any) error {
	if len(m.in) == 0 {
		return io.EOF
	}
	v.(*num).N, m.in = m.in[0], m.in[1:]
	return nil
}

func (m *memStream) Send(v any) error { m.sent = append(m.sent, v.(*num).N); return nil }

func callWith(st transport.Stream, kind transport.StreamKind) context.Context {
	return transport.NewCallContext(context.Background(), &transport.Call{Service: "s", Endpoint: "E", StreamKind: kind, Stream: st})
}

func TestStreamEndpoints(t *testing.T) {
	s := server.New("s")
	server.HandleServerStream(s, "Count", func(_ context.Context, r *num, out server.Sender[num]) error {
		for i := range r.N {
			if err := out.Send(&num{N: i}); err != nil {
				return err
			}
		}
		return nil
	})
	server.HandleClientStream(s, "Sum", func(_ context.Context, in server.Receiver[num]) (*num, error) {
		var sum num
		for m, err := range in.All() {
			if err != nil {
				return nil, err
			}
			sum.N += m.N
		}
		return &sum, nil
	})
	server.HandleBidiStream(s, "Double", func(_ context.Context, st server.Stream[num, num]) error {
		for m, err := range st.All() {
			if err != nil {
				return err
			}
			if err := st.Send(&num{N: 2 * m.N}); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]transport.StreamKind{}
	for _, e := range s.Endpoints() {
		kinds[e.Name] = e.Kind
	}
	if kinds["Count"] != transport.ServerStreaming || kinds["Sum"] != transport.ClientStreaming || kinds["Double"] != transport.BidiStreaming {
		t.Errorf("endpoint kinds = %v", kinds)
	}

	ep, _ := s.Endpoint("Count")
	ms := &memStream{}
	if _, err := ep.Handler(callWith(ms, transport.ServerStreaming), &num{N: 3}); err != nil || len(ms.sent) != 3 || ms.sent[2] != 2 {
		t.Errorf("Count(3) sent %v, %v", ms.sent, err)
	}
	ep, _ = s.Endpoint("Sum")
	resp, err := ep.Handler(callWith(&memStream{in: []int{1, 2, 3}}, transport.ClientStreaming), nil)
	if err != nil || resp.(*num).N != 6 {
		t.Errorf("Sum(1,2,3) = %v, %v", resp, err)
	}
	ep, _ = s.Endpoint("Double")
	ms = &memStream{in: []int{1, 5}}
	if _, err := ep.Handler(callWith(ms, transport.BidiStreaming), nil); err != nil || len(ms.sent) != 2 || ms.sent[1] != 10 {
		t.Errorf("Double(1,5) sent %v, %v", ms.sent, err)
	}
	// A transport that does not know streams calls it as a unary endpoint:
	// it is told so, the handler does not run on a nil stream.
	_, err = ep.Handler(transport.NewCallContext(context.Background(), &transport.Call{}), nil)
	if errs.CodeOf(err) != errs.Unimplemented || !strings.Contains(err.Error(), "does not serve streams") {
		t.Errorf("stream endpoint without a stream = %v, want unimplemented", err)
	}
}

func TestStreamEndpointRegistrationErrors(t *testing.T) {
	s := server.New("s")
	h := func(context.Context, *num, server.Sender[num]) error { return nil }
	server.HandleServerStream(s, "Routed", h, server.WithRoute("GET /x"))
	server.HandleServerStream(s, "Idem", h, server.WithIdempotent())
	server.HandleServerStream(s, "NotStruct", func(context.Context, *int, server.Sender[num]) error { return nil })
	err := s.Err()
	for _, want := range []string{`"Routed": a server_streaming endpoint has no REST routes`, `"Idem": a server_streaming endpoint cannot be idempotent`, `"NotStruct": request type int is not a struct`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Err() = %v, want it to say %s", err, want)
		}
	}
}

func TestOnMessages(t *testing.T) {
	var recvd, sent []int
	hooks := func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			middleware.OnMessages(ctx,
				func(_ context.Context, m any) error {
					recvd = append(recvd, m.(*num).N)
					if m.(*num).N < 0 {
						return errs.New(errs.InvalidArgument, "negative")
					}
					return nil
				},
				func(_ context.Context, m any) error { sent = append(sent, m.(*num).N); return nil })
			return next(ctx, req)
		}
	}
	s := server.New("s", server.WithMiddleware(hooks))
	server.HandleBidiStream(s, "Double", func(_ context.Context, st server.Stream[num, num]) error {
		for m, err := range st.All() {
			if err != nil {
				return err
			}
			if err := st.Send(&num{N: 2 * m.N}); err != nil {
				return err
			}
		}
		return nil
	})
	ep, _ := s.Endpoint("Double")
	ms := &memStream{in: []int{1, 2, -1, 4}}
	_, err := ep.Handler(callWith(ms, transport.BidiStreaming), nil)
	if errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("stream with a refused message ended with %v, want invalid_argument from the hook", err)
	}
	if len(recvd) != 3 || len(sent) != 2 || sent[1] != 4 || len(ms.sent) != 2 {
		t.Errorf("hooks saw received %v, sent %v; the wire got %v", recvd, sent, ms.sent)
	}
	// Unary calls are left alone.
	var called bool
	middleware.OnMessages(context.Background(), func(context.Context, any) error { called = true; return nil }, nil)
	if called || errors.Is(err, io.EOF) {
		t.Error("OnMessages did something without a stream")
	}
}
