package registry_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
)

type greetReq struct {
	Name  string `json:"name" validate:"required,max=40"`
	Limit int    `json:"limit"`
}

type greetReply struct{}

func greet(context.Context, *greetReq) (*greetReply, error) { return &greetReply{}, nil }

// Describe writes what the readers of the metadata read back: every
// endpoint, the idempotent ones, and the routes with their parameter kinds.
func TestDescribe(t *testing.T) {
	srv := server.New("greeter")
	server.Handle(srv, "Hello", greet)
	server.Handle(srv, "Get", greet, server.WithIdempotent())
	server.Handle(srv, "Find", greet, server.WithRoute("GET /v1/find/{name}"))
	server.HandleServerStream(srv, "Watch", func(context.Context, *greetReq, server.Sender[greetReq]) error { return nil })
	server.HandleBidiStream(srv, "Chat", func(context.Context, server.Stream[greetReq, greetReq]) error { return nil })
	md, err := registry.Describe(srv)
	if err != nil {
		t.Fatalf("Describe = %v, want nil error", err)
	}
	in := registry.Instance{Service: "greeter", ID: "x", Metadata: md}
	if names, ok := in.EndpointNames(); !ok || !slices.Equal(names, []string{"Chat", "Find", "Get", "Hello", "Watch"}) {
		t.Errorf("EndpointNames = %v, %v, want [Chat Find Get Hello Watch], true", names, ok)
	}
	if got := md[registry.MetadataStreams]; got != "Chat=bidi_streaming,Watch=server_streaming" {
		t.Errorf("%s = %q", registry.MetadataStreams, got)
	}
	if k := in.StreamKinds(); len(k) != 2 || k["Watch"] != transport.ServerStreaming || k["Chat"] != transport.BidiStreaming {
		t.Errorf("StreamKinds = %v", k)
	}
	if got := md[registry.MetadataIdempotent]; got != "Get" {
		t.Errorf("%s = %q, want Get", registry.MetadataIdempotent, got)
	}
	infos, err := in.RouteInfos()
	if err != nil {
		t.Fatalf("RouteInfos = %v", err)
	}
	want := map[string]string{"name": "string", "limit": "integer"}
	if got := infos["Find"]; !slices.Equal(got.Routes, []string{"GET /v1/find/{name}"}) || !maps.Equal(got.Params, want) {
		t.Errorf("RouteInfos[Find] = %+v, want the route with params %v", got, want)
	}
	if _, ok := infos["Get"]; !ok {
		t.Errorf("RouteInfos lacks the idempotent Get: %v", infos)
	}
	if _, ok := infos["Hello"]; ok {
		t.Errorf("RouteInfos has Hello, which has no routes and is not idempotent: %v", infos)
	}

	// The schemas of every endpoint, with the validator rules.
	var schemas map[string]struct {
		Request, Response map[string]any
	}
	if err := json.Unmarshal([]byte(md[registry.MetadataSchemas]), &schemas); err != nil {
		t.Fatalf("%s = %q: %v", registry.MetadataSchemas, md[registry.MetadataSchemas], err)
	}
	if len(schemas) != 5 || schemas["Hello"].Request == nil || schemas["Hello"].Response == nil || schemas["Watch"].Response == nil {
		t.Errorf("%s has %d endpoints, want all five (a stream's are its messages') with both schemas: %v", registry.MetadataSchemas, len(schemas), schemas)
	}
	if raw := md[registry.MetadataSchemas]; !strings.Contains(raw, `"x-validate":"required,max=40"`) || !strings.Contains(raw, `"maxLength":40`) {
		t.Errorf("%s lacks the name's rules: %s", registry.MetadataSchemas, raw)
	}

	// A server without endpoints lists none, which is not "any name".
	md, err = registry.Describe(server.New("empty"))
	if err != nil {
		t.Fatal(err)
	}
	if names, ok := (registry.Instance{Metadata: md}).EndpointNames(); !ok || len(names) != 0 {
		t.Errorf("EndpointNames of a server without endpoints = %v, %v, want [], true", names, ok)
	}
	if names, ok := (registry.Instance{}).EndpointNames(); ok || names != nil {
		t.Errorf("EndpointNames without the key = %v, %v, want nil, false", names, ok)
	}
}
