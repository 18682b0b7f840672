package main

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
)

// HelloRequest asks for a greeting.
type HelloRequest struct {
	Name string `json:"name"`
}

// HelloReply is the greeting.
type HelloReply struct {
	Message string `json:"message"`
}

// Hello is the greeter's endpoint, declared once with its types: the
// service registers it (server.Register) and callers call it
// (Hello.Call), both checked by the compiler.
var Hello = transport.Endpoint[HelloRequest, HelloReply]{Service: "greeter", Name: "Hello"}

// Greeter is the service's handler set. It knows nothing of the wire: the
// same method answers HTTP, gRPC and NATS.
type Greeter struct{}

// Hello greets req.Name.
func (Greeter) Hello(_ context.Context, req *HelloRequest) (*HelloReply, error) {
	name := strings.TrimSpace(req.Name)
	switch {
	case name == "":
		return nil, errs.New(errs.InvalidArgument, "name is required").
			WithDetails(errs.Detail{Field: "name", Reason: "must not be empty"})
	case utf8.RuneCountInString(name) > 100:
		return nil, errs.New(errs.InvalidArgument, "name is too long").
			WithDetails(errs.Detail{Field: "name", Reason: "must be at most 100 characters"})
	}
	return &HelloReply{Message: "Hello, " + name + "!"}, nil
}
