package grpc_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// plainHealth serves grpc-go's standard health service, and nothing of
// Ferry, on a loopback port until the test ends; "payments" is SERVING.
func plainHealth(t *testing.T) string {
	t.Helper()
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("payments", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	return ferrytest.ServeGRPC(t, gs)
}

// The Client calls a gRPC service that is not Ferry's by its fully
// qualified name, through middleware that sees that name, and reads its
// errors as *errs.Error values.
func TestCallByFullName(t *testing.T) {
	addr := plainHealth(t)
	var seen []transport.Call
	mw := func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			c, _ := transport.CallFromContext(ctx)
			seen = append(seen, *c)
			return next(ctx, req)
		}
	}
	for _, tc := range []struct {
		name string
		opts []fgrpc.ClientOption
	}{{"bare", nil}, {"with middleware", []fgrpc.ClientOption{fgrpc.WithClientMiddleware(mw)}}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := fgrpc.NewClient(addr, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for range 2 { // the second from the method cache
				resp := new(healthpb.HealthCheckResponse)
				err := c.Invoke(testContext(t), "grpc.health.v1.Health", "Check", &healthpb.HealthCheckRequest{Service: "payments"}, resp)
				if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					t.Fatalf("Invoke(grpc.health.v1.Health, Check, payments) = %v, %v; want SERVING", resp.GetStatus(), err)
				}
			}
			// The health service's own NotFound for a service it does not know.
			err = c.Invoke(testContext(t), "grpc.health.v1.Health", "Check", &healthpb.HealthCheckRequest{Service: "nope"}, new(healthpb.HealthCheckResponse))
			if errs.CodeOf(err) != errs.NotFound {
				t.Errorf("Check(nope) = %v, want not_found", err)
			}
			// grpc-go's own answer to an unknown method.
			err = c.Invoke(testContext(t), "grpc.health.v1.Health", "Nope", &healthpb.HealthCheckRequest{}, new(healthpb.HealthCheckResponse))
			var e *errs.Error
			if !errors.As(err, &e) || e.Code() != errs.Unimplemented || errs.ReceivedFrom(err) != "grpc.health.v1.Health/Nope" {
				t.Errorf("Invoke(grpc.health.v1.Health, Nope) = %v (received from %q), want an unimplemented *errs.Error from grpc.health.v1.Health/Nope", err, errs.ReceivedFrom(err))
			}
		})
	}
	if len(seen) != 4 {
		t.Fatalf("middleware saw %d calls, want 4", len(seen))
	}
	if c := seen[0]; c.Service != "grpc.health.v1.Health" || c.Endpoint != "Check" || c.Method != "/grpc.health.v1.Health/Check" || c.Kind != transport.GRPC {
		t.Errorf("middleware saw service %q, endpoint %q, method %q, kind %s; want grpc.health.v1.Health, Check, /grpc.health.v1.Health/Check, grpc",
			c.Service, c.Endpoint, c.Method, c.Kind)
	}
	if c := seen[3]; c.Method != "/grpc.health.v1.Health/Nope" {
		t.Errorf("middleware saw method %q, want /grpc.health.v1.Health/Nope", c.Method)
	}
}

// A Ferry server's health service is called the same way.
func TestCallFerryHealthByFullName(t *testing.T) {
	tr := start(t, newGreeter(t, nil))
	resp := new(healthpb.HealthCheckResponse)
	err := dial(t, tr).Invoke(testContext(t), "grpc.health.v1.Health", "Check", &healthpb.HealthCheckRequest{Service: fgrpc.ServiceName("greeter")}, resp)
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Check(greeter.Greeter) on a Ferry server = %v, %v; want SERVING", resp.GetStatus(), err)
	}
	// A Ferry endpoint by its full name is the same call as by the Ferry name.
	out := new(wrapperspb.StringValue)
	if err := dial(t, tr).Invoke(testContext(t), "greeter.Greeter", "Echo", wrapperspb.String("Ada"), out); err != nil || out.GetValue() != "Hello, Ada!" {
		t.Errorf("Invoke(greeter.Greeter, Echo) = %q, %v; want Hello, Ada!", out.GetValue(), err)
	}
}
