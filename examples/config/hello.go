package main

import (
	"context"
	"strings"

	"github.com/ferry-go/ferry/errs"
)

// HelloRequest asks for a greeting.
type HelloRequest struct {
	Name string `json:"name"`
}

// HelloReply is the greeting.
type HelloReply struct {
	Message string `json:"message"`
}

// Hello greets req.Name; an empty name is an InvalidArgument error, the
// same on every transport.
func Hello(_ context.Context, req *HelloRequest) (*HelloReply, error) {
	name := strings.TrimSpace(req.Name)
	if name == "" {
		return nil, errs.New(errs.InvalidArgument, "name is required").
			WithDetails(errs.Detail{Field: "name", Reason: "must not be empty"})
	}
	return &HelloReply{Message: "Hello, " + name + "!"}, nil
}
