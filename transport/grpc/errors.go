package grpc

import (
	"errors"

	"github.com/ferry-go/ferry/errs"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// grpcStatus is implemented by the errors of package status.
type grpcStatus interface{ GRPCStatus() *status.Status }

// statusError returns the error a handler's err is reported as. An
// *errs.Error keeps its code, message and details; a status error made on
// purpose (by grpc-go or an interceptor) passes unchanged; anything else is
// reduced by errs.FromError so that no internal text leaks.
func statusError(err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return toStatus(e).Err()
	}
	if _, ok := err.(grpcStatus); ok {
		return err
	}
	return toStatus(errs.FromError(err)).Err()
}

// badRequest is the status for a request body that did not decode; the
// codec's details, if any, are kept.
func badRequest(err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return toStatus(errs.New(errs.InvalidArgument, "invalid request body: "+e.Message()).WithDetails(e.Details()...)).Err()
	}
	return status.Error(codes.InvalidArgument, "invalid request body: "+err.Error())
}

// toStatus maps e to a status: the reason, domain and metadata become one
// google.rpc.ErrorInfo, the details one google.rpc.BadRequest — the
// standard messages every gRPC client library reads.
func toStatus(e *errs.Error) *status.Status {
	st := status.New(codes.Code(e.Code()), e.Message())
	ds := e.Details()
	if len(ds) == 0 && e.Reason() == "" && e.Domain() == "" && len(e.Metadata()) == 0 {
		return st
	}
	var msgs []protoadapt.MessageV1
	if e.Reason() != "" || e.Domain() != "" || len(e.Metadata()) > 0 {
		msgs = append(msgs, &errdetails.ErrorInfo{Reason: e.Reason(), Domain: e.Domain(), Metadata: e.Metadata()})
	}
	if len(ds) > 0 {
		br := &errdetails.BadRequest{FieldViolations: make([]*errdetails.BadRequest_FieldViolation, len(ds))}
		for i, d := range ds {
			br.FieldViolations[i] = &errdetails.BadRequest_FieldViolation{Field: d.Field, Description: d.Reason}
		}
		msgs = append(msgs, br)
	}
	if withDetails, err := st.WithDetails(msgs...); err == nil {
		st = withDetails
	}
	return st
}

// fromStatus maps a client call's error to an *errs.Error carrying the
// code, message and BadRequest details the server sent. A non-status error
// (only middleware makes those) keeps its text, as it never crossed the wire.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	se, ok := err.(grpcStatus)
	if !ok {
		return errs.Wrap(errs.CodeOf(err), err)
	}
	st := se.GRPCStatus()
	if st.Code() == codes.OK {
		return nil
	}
	out := errs.New(errs.Code(st.Code()), st.Message())
	var ds []errs.Detail
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, fv := range d.GetFieldViolations() {
				ds = append(ds, errs.Detail{Field: fv.GetField(), Reason: fv.GetDescription()})
			}
		case *errdetails.ErrorInfo:
			if d.GetReason() != "" {
				out = out.WithReason(d.GetReason())
			}
			if d.GetDomain() != "" {
				out = out.WithDomain(d.GetDomain())
			}
			for k, v := range d.GetMetadata() {
				out = out.WithMetadata(k, v)
			}
		}
	}
	if len(ds) > 0 {
		out = out.WithDetails(ds...)
	}
	return out
}
