package telemetry_test

import "github.com/ferry-go/ferry/errs"

var (
	errsInvalid  = errs.New(errs.InvalidArgument, "bad input")
	errsInternal = errs.New(errs.Internal, "broken")
)
