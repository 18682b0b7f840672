package grpc_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// wire records what grpc-go saw of calls on one side of the wire: the
// compressor named by the headers received and sent, and the sizes of the
// messages received. It is a stats.Handler.
type wire struct {
	mu       sync.Mutex
	in, out  []string // grpc-encoding of each header received, sent ("" for none)
	payloads []stats.InPayload
}

func (w *wire) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (w *wire) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (w *wire) HandleConn(context.Context, stats.ConnStats)                       {}

func (w *wire) HandleRPC(_ context.Context, s stats.RPCStats) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch s := s.(type) {
	case *stats.InHeader:
		w.in = append(w.in, s.Compression)
	case *stats.OutHeader:
		w.out = append(w.out, s.Compression)
	case *stats.InPayload:
		w.payloads = append(w.payloads, stats.InPayload{Length: s.Length, CompressedLength: s.CompressedLength})
	}
}

// check fails t unless exactly one call went by whose headers received and
// sent named compressor in and out, and whose message received was
// compressed on the wire (smaller there than decoded) exactly when in
// names a compressor.
func (w *wire) check(t *testing.T, side, in, out string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.in) != 1 || w.in[0] != in || len(w.out) != 1 || w.out[0] != out {
		t.Errorf("%s: grpc-encoding received %q, sent %q; want [%q] and [%q]", side, w.in, w.out, in, out)
	}
	if len(w.payloads) != 1 {
		t.Fatalf("%s: %d messages received, want 1", side, len(w.payloads))
	}
	p := w.payloads[0]
	if compressed := p.CompressedLength < p.Length; compressed != (in != "") {
		t.Errorf("%s: message received of %d bytes, %d on the wire; want it compressed: %v", side, p.Length, p.CompressedLength, in != "")
	}
}

// gzipName is grpc-go's gzip.Name. These tests do not import
// encoding/gzip, whose import registers the compressor: the package under
// test must.
const gzipName = "gzip"

// big is a request that compresses well.
var big = strings.Repeat("ferry carries it ", 1000)

// A grpc-go client sending gzip is understood, and answered in gzip.
func TestGzipFromGRPCClient(t *testing.T) {
	srv := new(wire)
	tr := start(t, newGreeter(t, nil), fgrpc.WithServerOptions(grpc.StatsHandler(srv)))
	cli := new(wire)
	cc, err := grpc.NewClient(tr.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStatsHandler(cli))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	out := new(wrapperspb.StringValue)
	if err := cc.Invoke(testContext(t), "/greeter.Greeter/Echo", wrapperspb.String(big), out, grpc.UseCompressor(gzipName)); err != nil {
		t.Fatalf("Invoke(Echo) with gzip = %v, want nil", err)
	}
	if out.GetValue() != "Hello, "+big+"!" {
		t.Errorf("Invoke(Echo) with gzip = %.40q…, want the greeting", out.GetValue())
	}
	srv.check(t, "server", gzipName, gzipName)
	cli.check(t, "client", gzipName, gzipName)
}

// The Client compresses with WithCompression, and only then; a Ferry
// server answers in kind.
func TestClientCompressionToFerryServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []fgrpc.ClientOption
		want string
	}{
		{"gzip", []fgrpc.ClientOption{fgrpc.WithCompression(gzipName)}, gzipName},
		{"default", nil, ""},
		{"identity", []fgrpc.ClientOption{fgrpc.WithCompression("identity")}, ""},
		{"gzip then none", []fgrpc.ClientOption{fgrpc.WithCompression(gzipName), fgrpc.WithCompression("")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := new(wire), new(wire)
			tr := start(t, newGreeter(t, nil), fgrpc.WithServerOptions(grpc.StatsHandler(srv)))
			c := dial(t, tr, append(tc.opts, fgrpc.WithDialOptions(grpc.WithStatsHandler(cli)))...)
			out := new(wrapperspb.StringValue)
			if err := c.Invoke(testContext(t), "greeter", "Echo", wrapperspb.String(big), out); err != nil {
				t.Fatalf("Invoke(Echo) = %v, want nil", err)
			}
			if out.GetValue() != "Hello, "+big+"!" {
				t.Errorf("Invoke(Echo) = %.40q…, want the greeting", out.GetValue())
			}
			srv.check(t, "server", tc.want, tc.want)
			cli.check(t, "client", tc.want, tc.want)
		})
	}
	t.Run("plain structs", func(t *testing.T) {
		s := server.New("greeter", server.WithLogger(quietLogger()))
		server.Handle(s, "Hello", func(_ context.Context, req *HelloRequest) (*HelloReply, error) {
			return &HelloReply{Message: "Hello, " + req.Name + "!"}, nil
		})
		srv := new(wire)
		tr := start(t, s, fgrpc.WithServerOptions(grpc.StatsHandler(srv)))
		c := dial(t, tr, fgrpc.WithCompression(gzipName))
		var out HelloReply
		if err := c.Invoke(testContext(t), "greeter", "Hello", &HelloRequest{Name: big}, &out); err != nil || out.Message != "Hello, "+big+"!" {
			t.Fatalf("Invoke(Hello) = %.40q…, %v; want the greeting", out.Message, err)
		}
		srv.check(t, "server", gzipName, gzipName)
	})
}

// The Client's compression is grpc-go's: a plain grpc-go server reads it.
func TestClientCompressionToGRPCServer(t *testing.T) {
	srv := new(wire)
	gs := grpc.NewServer(grpc.StatsHandler(srv))
	gs.RegisterService(&grpc.ServiceDesc{
		ServiceName: "echo.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Echo", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return in, nil
		}}},
	}, nil)
	addr := ferrytest.ServeGRPC(t, gs)
	c, err := fgrpc.NewClient(addr, fgrpc.WithCompression(gzipName))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := new(wrapperspb.StringValue)
	if err := c.Invoke(testContext(t), "echo", "Echo", wrapperspb.String(big), out); err != nil || out.GetValue() != big {
		t.Fatalf("Invoke(echo.Echo/Echo) = %.40q…, %v; want the request back", out.GetValue(), err)
	}
	srv.check(t, "grpc-go server", gzipName, gzipName)
}

// The size limit applies to the decompressed message: a request small on
// the wire but too large once inflated is ResourceExhausted.
func TestGzipSizeLimitAfterDecompression(t *testing.T) {
	tr := start(t, newGreeter(t, nil), fgrpc.WithMaxRecvMsgSize(1024))
	in := wrapperspb.String(strings.Repeat("a", 64<<10)) // some hundred bytes in gzip
	err := rawConn(t, tr).Invoke(testContext(t), "/greeter.Greeter/Echo", in, new(wrapperspb.StringValue), grpc.UseCompressor(gzipName))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("grpc-go Invoke(64 KiB in gzip) = %v, want ResourceExhausted", err)
	}
	err = dial(t, tr, fgrpc.WithCompression(gzipName)).Invoke(testContext(t), "greeter", "Echo", in, new(wrapperspb.StringValue))
	if errs.CodeOf(err) != errs.ResourceExhausted {
		t.Errorf("Client.Invoke(64 KiB in gzip) = %v, want resource_exhausted", err)
	}
}

func TestWithCompressionUnknown(t *testing.T) {
	_, err := fgrpc.NewClient("127.0.0.1:1", fgrpc.WithCompression("zstd-nobody-registered"))
	if err == nil || !strings.Contains(err.Error(), `"zstd-nobody-registered"`) {
		t.Errorf("NewClient(WithCompression(unknown)) = %v, want an error naming it", err)
	}
}
