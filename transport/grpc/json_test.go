package grpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// testJSONCodec is what any grpc-go client would write for grpc+json: JSON
// through encoding/json, content-subtype "json".
type testJSONCodec struct{}

func (testJSONCodec) Name() string                       { return "json" }
func (testJSONCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (testJSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// rawJSONCodec sends bytes as they are under content-subtype "json".
type rawJSONCodec struct{}

func (rawJSONCodec) Name() string                  { return "json" }
func (rawJSONCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawJSONCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}

// A plain grpc-go client with a JSON codec of its own calls a Ferry server
// as application/grpc+json and is answered in JSON: plain structs and
// generated messages (protojson) alike.
func TestJSONFromPlainClient(t *testing.T) {
	s := server.New("greeter", server.WithLogger(quietLogger()))
	server.Handle(s, "Hello", func(ctx context.Context, req *HelloRequest) (*HelloReply, error) {
		return &HelloReply{Message: "Hello, " + req.Name + "!"}, nil
	})
	server.Handle(s, "Echo", func(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return wrapperspb.String("Hello, " + req.GetValue() + "!"), nil
	})
	tr := start(t, s)
	cc := rawConn(t, tr)

	var reply HelloReply
	err := cc.Invoke(testContext(t), "/greeter.Greeter/Hello", &HelloRequest{Name: "Ada <&>"}, &reply, grpc.ForceCodec(testJSONCodec{}))
	if err != nil || reply.Message != "Hello, Ada <&>!" {
		t.Errorf("Invoke(Hello) as grpc+json = %+v, %v; want Hello, Ada <&>!", reply, err)
	}

	// The reply bytes are the HTTP transport's JSON: no HTML escaping.
	in, out := []byte(`{"name":"<b>"}`), []byte(nil)
	if err := cc.Invoke(testContext(t), "/greeter.Greeter/Hello", &in, &out, grpc.ForceCodec(rawJSONCodec{})); err != nil {
		t.Fatalf("Invoke(Hello) raw = %v", err)
	}
	if got, want := string(out), `{"message":"Hello, <b>!"}`; got != want {
		t.Errorf("Invoke(Hello) raw reply = %s, want %s", got, want)
	}

	// A generated message travels as protojson: a StringValue is a string.
	in = []byte(`"Bo"`)
	if err := cc.Invoke(testContext(t), "/greeter.Greeter/Echo", &in, &out, grpc.ForceCodec(rawJSONCodec{})); err != nil {
		t.Fatalf("Invoke(Echo) raw = %v", err)
	}
	if got, want := string(out), `"Hello, Bo!"`; got != want {
		t.Errorf("Invoke(Echo) raw reply = %s, want %s", got, want)
	}

	// An empty message is the zero request, as an empty body over HTTP.
	in = nil
	if err := cc.Invoke(testContext(t), "/greeter.Greeter/Hello", &in, &out, grpc.ForceCodec(rawJSONCodec{})); err != nil {
		t.Fatalf("Invoke(Hello, empty) raw = %v", err)
	}
	if got, want := string(out), `{"message":"Hello, !"}`; got != want {
		t.Errorf("Invoke(Hello, empty) raw reply = %s, want %s", got, want)
	}

	// The protobuf path is unchanged beside it.
	var pb wrapperspb.StringValue
	if err := cc.Invoke(testContext(t), "/greeter.Greeter/Echo", wrapperspb.String("Cy"), &pb); err != nil || pb.GetValue() != "Hello, Cy!" {
		t.Errorf("Invoke(Echo) as protobuf = %v, %v", pb.GetValue(), err)
	}
}

// Bad JSON is InvalidArgument naming the problem, never a panic, and the
// server keeps serving.
func TestJSONBadRequests(t *testing.T) {
	s := server.New("order-service", server.WithLogger(quietLogger()))
	server.Handle(s, "Echo", func(ctx context.Context, req *Order) (*Order, error) { return req, nil })
	tr := start(t, s)
	cc := rawConn(t, tr)
	for _, c := range []struct{ name, body, want string }{
		{"syntax", `{"id":`, "unexpected end of JSON input"},
		{"wrong kind", `{"id":"forty-two"}`, "id"},
		{"not an object", `[1,2]`, "array"},
		{"invalid UTF-8", "{\"tags\":{\"a\":\"\xff\"}}", "UTF-8"},
		{"trailing data", `{"id":1} {}`, "invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in, out := []byte(c.body), []byte(nil)
			err := cc.Invoke(testContext(t), "/order_service.OrderService/Echo", &in, &out, grpc.ForceCodec(rawJSONCodec{}))
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "invalid request body: ") || !strings.Contains(st.Message(), c.want) {
				t.Errorf("Invoke(%s) = %v, want InvalidArgument \"invalid request body: ...\" naming %q", c.body, err, c.want)
			}
		})
	}
	in, out := []byte(`{"id":7}`), []byte(nil)
	if err := cc.Invoke(testContext(t), "/order_service.OrderService/Echo", &in, &out, grpc.ForceCodec(rawJSONCodec{})); err != nil || !strings.Contains(string(out), `"id":7`) {
		t.Errorf("Invoke after bad requests = %s, %v", out, err)
	}
}

// server.WithJSON's codec decodes grpc+json requests too.
func TestJSONStrictCodec(t *testing.T) {
	s := server.New("greeter", server.WithLogger(quietLogger()),
		server.WithJSON(codec.NewJSON(codec.JSONOptions{DisallowUnknownFields: true})))
	server.Handle(s, "Hello", func(ctx context.Context, req *HelloRequest) (*HelloReply, error) {
		return &HelloReply{Message: "Hello, " + req.Name + "!"}, nil
	})
	tr := start(t, s)
	c := dial(t, tr)
	var out json.RawMessage
	err := c.Invoke(testContext(t), "greeter", "Hello", json.RawMessage(`{"name":"Ada","nmae":"x"}`), &out)
	if errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), "nmae") {
		t.Errorf("Invoke(unknown field) = %v, want invalid_argument naming nmae", err)
	}
	if err := c.Invoke(testContext(t), "greeter", "Hello", json.RawMessage(`{"name":"Ada"}`), &out); err != nil || string(out) != `{"message":"Hello, Ada!"}` {
		t.Errorf("Invoke(Hello) = %s, %v", out, err)
	}
}

// The Ferry client sends a json.RawMessage as grpc+json, unchanged, and
// receives the JSON reply; errors carry code, message, reason and details
// as on the protobuf path, and metadata and the deadline travel both ways.
func TestJSONFromFerryClient(t *testing.T) {
	tr := start(t, newGreeter(t, nil))
	c := dial(t, tr)

	var out json.RawMessage
	if err := c.Invoke(testContext(t), "greeter", "Echo", json.RawMessage(` "Ada" `), &out); err != nil || string(out) != `"Hello, Ada!"` {
		t.Errorf("Invoke(Echo, raw JSON) = %s, %v; want \"Hello, Ada!\"", out, err)
	}
	var typed wrapperspb.StringValue // a typed reply of a raw request is decoded from JSON
	if err := c.Invoke(testContext(t), "greeter", "Echo", json.RawMessage(`"Bo"`), &typed); err != nil || typed.GetValue() != "Hello, Bo!" {
		t.Errorf("Invoke(Echo, raw JSON) into a message = %q, %v", typed.GetValue(), err)
	}

	wantDetails := []errs.Detail{{Field: "name", Reason: "is required"}, {Reason: "try again"}}
	for _, code := range errs.Codes() {
		raw := json.RawMessage(`"` + code.String() + `"`)
		jerr := c.Invoke(testContext(t), "greeter", "Fail", raw, &out)
		perr := c.Invoke(testContext(t), "greeter", "Fail", wrapperspb.String(code.String()), new(wrapperspb.StringValue))
		var je, pe *errs.Error
		if !errors.As(jerr, &je) || !errors.As(perr, &pe) {
			t.Errorf("Invoke(Fail, %v) = %v / %v, want *errs.Error both ways", code, jerr, perr)
			continue
		}
		if je.Code() != code || je.Message() != pe.Message() || !reflect.DeepEqual(je.Details(), wantDetails) {
			t.Errorf("Invoke(Fail, %v) as JSON = %v %q %v; as protobuf %v %q", code, je.Code(), je.Message(), je.Details(), pe.Code(), pe.Message())
		}
	}

	s := server.New("meta", server.WithLogger(quietLogger()))
	server.Handle(s, "Echo", func(ctx context.Context, req *HelloRequest) (*HelloReply, error) {
		call, _ := transport.CallFromContext(ctx)
		call.Reply.Set("x-seen", call.Request.Get("x-tenant"))
		if _, ok := ctx.Deadline(); !ok {
			return nil, errs.New(errs.Internal, "no deadline")
		}
		return nil, errs.New(errs.FailedPrecondition, "tenant "+call.Request.Get("x-tenant")).WithReason("NOPE").WithDomain("test").
			WithMetadata("k", "v")
	})
	mc := dial(t, start(t, s))
	var reply transport.Metadata
	ctx := transport.CaptureReply(transport.WithMetadata(testContext(t), transport.Metadata{"x-tenant": {"acme"}}), &reply)
	err := mc.Invoke(ctx, "meta", "Echo", json.RawMessage(`{}`), &out)
	if errs.CodeOf(err) != errs.FailedPrecondition || errs.ReasonOf(err) != "NOPE" || !strings.Contains(err.Error(), "tenant acme") {
		t.Errorf("Invoke(meta Echo) = %v, want failed_precondition NOPE naming the tenant", err)
	}
	if reply.Get("x-seen") != "acme" {
		t.Errorf("reply metadata x-seen = %q, want acme", reply.Get("x-seen"))
	}
}

// An interceptor sees the typed request and reply of a grpc+json call,
// as of any other.
func TestJSONInterceptor(t *testing.T) {
	var sawReq, sawResp any
	icpt := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		sawReq, sawResp = req, resp
		return resp, err
	}
	tr := start(t, newGreeter(t, nil), fgrpc.WithServerOptions(grpc.UnaryInterceptor(icpt)))
	cc := rawConn(t, tr)
	in, out := []byte(`"Ada"`), []byte(nil)
	ctx := metadata.AppendToOutgoingContext(testContext(t), "x-any", "1")
	if err := cc.Invoke(ctx, "/greeter.Greeter/Echo", &in, &out, grpc.ForceCodec(rawJSONCodec{})); err != nil || string(out) != `"Hello, Ada!"` {
		t.Fatalf("Invoke(Echo) = %s, %v", out, err)
	}
	if r, ok := sawReq.(*wrapperspb.StringValue); !ok || r.GetValue() != "Ada" {
		t.Errorf("interceptor req = %#v, want the decoded request", sawReq)
	}
	if r, ok := sawResp.(*wrapperspb.StringValue); !ok || r.GetValue() != "Hello, Ada!" {
		t.Errorf("interceptor resp = %#v, want the typed reply", sawResp)
	}
}
