package requestid_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/middleware/requestid"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type Req struct {
	Hop int `json:"hop"`
}

type Reply struct {
	IDs []string `json:"ids"`
}

// TestPropagation: front (with requestid.New) calls back through a client
// with requestid.Client, over each transport; both see the same ID, the
// caller gets it back in the reply metadata, and an ID the caller sends is
// kept.
func TestPropagation(t *testing.T) {
	back := server.New("back", server.WithMiddleware(requestid.New()))
	server.Handle(back, "Echo", func(ctx context.Context, req *Req) (*Reply, error) {
		return &Reply{IDs: []string{requestid.FromContext(ctx)}}, nil
	})
	bi := ferrytest.Start(t, back)

	gc, err := fgrpc.NewClient(bi.GRPCAddr, fgrpc.WithClientMiddleware(requestid.Client()))
	if err != nil {
		t.Fatal(err)
	}
	hc, err := fhttp.NewClient("http://"+bi.HTTPAddr, fhttp.WithClientMiddleware(requestid.Client()))
	if err != nil {
		t.Fatal(err)
	}
	nc := fnats.NewClient(ferrytest.Connect(t, bi.NATSURL), fnats.WithClientMiddleware(requestid.Client()))
	t.Cleanup(func() { _ = gc.Close(); _ = hc.Close() })
	downstream := []transport.Client{hc, gc, nc}

	front := server.New("front", server.WithMiddleware(requestid.New()))
	server.Handle(front, "Call", func(ctx context.Context, req *Req) (*Reply, error) {
		r, err := transport.Invoke[Req, Reply](ctx, downstream[req.Hop], "back", "Echo", req)
		if err != nil {
			return nil, err
		}
		return &Reply{IDs: append([]string{requestid.FromContext(ctx)}, r.IDs...)}, nil
	})
	fi := ferrytest.Start(t, front)

	for name, c := range map[string]transport.Client{"http": fi.HTTP, "grpc": fi.GRPC, "nats": fi.NATS} {
		for hop := range downstream {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var reply transport.Metadata
			r, err := transport.Invoke[Req, Reply](transport.CaptureReply(ctx, &reply), c, "front", "Call", &Req{Hop: hop})
			if err != nil {
				t.Fatalf("%s/%d: %v", name, hop, err)
			}
			id := reply.Get(requestid.Key)
			if len(r.IDs) != 2 || r.IDs[0] != r.IDs[1] || r.IDs[0] != id || !requestid.Valid(id) {
				t.Errorf("%s/%d: ids %v, reply %q", name, hop, r.IDs, id)
			}
			// The caller's own ID is kept end to end.
			mine := "req-" + name
			r, err = transport.Invoke[Req, Reply](transport.WithMetadata(ctx, transport.Pairs("X-Request-Id", mine)), c, "front", "Call", &Req{Hop: hop})
			cancel()
			if err != nil || r.IDs[0] != mine || r.IDs[1] != mine {
				t.Errorf("%s/%d: %v %v", name, hop, r, err)
			}
		}
	}
}

func TestInvalidIncomingReplaced(t *testing.T) {
	h := requestid.New()(func(ctx context.Context, req any) (any, error) { return requestid.FromContext(ctx), nil })
	for _, in := range []string{"", "has space", "new\nline", strings.Repeat("a", 129), "é"} {
		reply := transport.Metadata{}
		ctx := transport.NewCallContext(context.Background(), &transport.Call{Request: transport.Pairs("x-request-id", in), Reply: reply})
		got, _ := h(ctx, nil)
		if got == in || !requestid.Valid(got.(string)) || reply.Get("x-request-id") != got {
			t.Errorf("%q: got %q, reply %v", in, got, reply)
		}
	}
	// Without a Call (a plain function call) an ID is still made.
	if got, _ := h(context.Background(), nil); got == "" {
		t.Error("no ID without a Call")
	}
}

func TestClientOutsideRequest(t *testing.T) {
	var sent string
	h := requestid.Client()(func(ctx context.Context, req any) (any, error) {
		c, _ := transport.CallFromContext(ctx)
		sent = c.Request.Get("x-request-id")
		return nil, nil
	})
	call := &transport.Call{Client: true, Request: transport.Metadata{}}
	_, _ = h(transport.NewCallContext(context.Background(), call), nil)
	if !requestid.Valid(sent) {
		t.Errorf("sent %q", sent)
	}
	// On a server call Client does nothing.
	srvCall := &transport.Call{Request: transport.Metadata{}}
	_, _ = h(transport.NewCallContext(context.Background(), srvCall), nil)
	if sent != "" {
		t.Errorf("server call got %q", sent)
	}
}
