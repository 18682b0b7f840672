// Package errs is Ferry's error model: one error type with a closed set of
// canonical codes, the same set gRPC uses.
//
// Every transport maps an *Error to its own wire form and back (HTTP status
// and problem+json body, gRPC status with google.rpc.ErrorInfo and
// BadRequest details, NATS service-error headers and a JSON body), so a
// client gets the same code, message, reason, domain, metadata and details
// whatever carried the call.
//
// Invariants:
//   - There is no OK code: a nil error means success.
//   - Code values equal the gRPC code numbers, so conversion to and from
//     gRPC is a cast.
//   - Errors that are not *Error (a bare fmt.Errorf from a handler, say) are
//     reported to callers as Unknown with a generic message by [FromError],
//     so internals never leak onto the wire. The original error stays
//     reachable through errors.Unwrap on the server side for logging.
//
// The package imports only the standard library.
package errs

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Code is a canonical error code. The zero value is not a valid code.
type Code uint32

// The canonical codes, numbered as in gRPC.
const (
	Canceled           Code = 1
	Unknown            Code = 2
	InvalidArgument    Code = 3
	DeadlineExceeded   Code = 4
	NotFound           Code = 5
	AlreadyExists      Code = 6
	PermissionDenied   Code = 7
	ResourceExhausted  Code = 8
	FailedPrecondition Code = 9
	Aborted            Code = 10
	OutOfRange         Code = 11
	Unimplemented      Code = 12
	Internal           Code = 13
	Unavailable        Code = 14
	DataLoss           Code = 15
	Unauthenticated    Code = 16

	minCode = Canceled
	maxCode = Unauthenticated
)

var codeNames = [...]string{
	Canceled:           "canceled",
	Unknown:            "unknown",
	InvalidArgument:    "invalid_argument",
	DeadlineExceeded:   "deadline_exceeded",
	NotFound:           "not_found",
	AlreadyExists:      "already_exists",
	PermissionDenied:   "permission_denied",
	ResourceExhausted:  "resource_exhausted",
	FailedPrecondition: "failed_precondition",
	Aborted:            "aborted",
	OutOfRange:         "out_of_range",
	Unimplemented:      "unimplemented",
	Internal:           "internal",
	Unavailable:        "unavailable",
	DataLoss:           "data_loss",
	Unauthenticated:    "unauthenticated",
}

// Codes lists every canonical code in numeric order.
func Codes() []Code {
	out := make([]Code, 0, maxCode)
	for c := minCode; c <= maxCode; c++ {
		out = append(out, c)
	}
	return out
}

// Valid reports whether c is one of the canonical codes.
func (c Code) Valid() bool { return c >= minCode && c <= maxCode }

// String returns the code's snake_case name ("not_found"), or "code(N)" for
// a value outside the canonical set.
func (c Code) String() string {
	if c.Valid() {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint32(c))
}

// MarshalText encodes c as its snake_case name.
func (c Code) MarshalText() ([]byte, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("errs: invalid code %d", uint32(c))
	}
	return []byte(codeNames[c]), nil
}

// UnmarshalText accepts a snake_case name ("not_found") or the gRPC
// upper-case spelling ("NOT_FOUND"); "cancelled" is accepted too.
func (c *Code) UnmarshalText(b []byte) error {
	v, ok := ParseCode(string(b))
	if !ok {
		return fmt.Errorf("errs: unknown code %q", b)
	}
	*c = v
	return nil
}

// ParseCode parses a code name as accepted by [Code.UnmarshalText].
func ParseCode(s string) (Code, bool) {
	s = strings.ToLower(s)
	if s == "cancelled" {
		return Canceled, true
	}
	for c := minCode; c <= maxCode; c++ {
		if codeNames[c] == s {
			return c, true
		}
	}
	return 0, false
}

// Detail is one structured fact about an error, most often a field of the
// request that was wrong. Field uses the wire (JSON) name; it is empty for
// details that are not about one field.
type Detail struct {
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// Error is an error with a canonical code, a message meant for the caller,
// and optional structured facts: a machine-readable reason within a domain
// with string metadata (as google.rpc.ErrorInfo), and field details. All of
// them cross the wire on every transport; the cause never does. The zero
// value is not useful; use [New] or [Newf].
//
// Callers branch on the code and the reason, never on the message:
//
//	var ErrOutOfStock = errs.New(errs.FailedPrecondition, "out of stock").WithReason("OUT_OF_STOCK")
//	...
//	if errors.Is(err, ErrOutOfStock) { ... } // same code and reason, whatever the message
type Error struct {
	code     Code
	message  string
	reason   string
	domain   string
	metadata map[string]string
	details  []Detail
	cause    error
	call     string // "service/Endpoint" of the call it was received from
}

// New returns an error with code c and message msg. An invalid code becomes
// Unknown.
func New(c Code, msg string) *Error {
	if !c.Valid() {
		c = Unknown
	}
	return &Error{code: c, message: msg}
}

// Newf is New with a formatted message. A %w verb in format keeps the wrapped
// error reachable with errors.Is/As — and puts its text in the message,
// which goes to the caller; use WithCause to keep a cause private.
func Newf(c Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	e := New(c, err.Error())
	e.cause = errors.Unwrap(err)
	return e
}

// Wrap returns an error with code c whose message is err's message and whose
// cause is err. Wrap(c, nil) returns nil. The message goes to the caller:
// for an internal error whose text must stay private, use
// New(c, "a message for the caller").WithCause(err).
func Wrap(c Code, err error) *Error {
	if err == nil {
		return nil
	}
	e := New(c, err.Error())
	e.cause = err
	return e
}

// Code returns the error's code.
func (e *Error) Code() Code { return e.code }

// Message returns the message sent to callers.
func (e *Error) Message() string { return e.message }

// Reason returns the machine-readable reason ("OUT_OF_STOCK"), "" if none.
func (e *Error) Reason() string { return e.reason }

// Domain returns the reason's domain ("orders.example.com"), "" if none.
func (e *Error) Domain() string { return e.domain }

// Metadata returns the reason's metadata; callers must not modify the map.
func (e *Error) Metadata() map[string]string { return e.metadata }

// Details returns the error's details; callers must not modify the slice.
func (e *Error) Details() []Detail { return e.details }

// WithDetails returns a copy of e with details appended.
func (e *Error) WithDetails(d ...Detail) *Error {
	cp := *e
	cp.details = append(append([]Detail(nil), e.details...), d...)
	return &cp
}

// WithReason returns a copy of e with a machine-readable reason, by
// convention UPPER_SNAKE_CASE and unique within its domain. errors.Is
// compares it.
func (e *Error) WithReason(reason string) *Error {
	cp := *e
	cp.reason = reason
	return &cp
}

// WithDomain returns a copy of e whose reason belongs to domain, by
// convention the service's DNS-like name ("orders.example.com").
func (e *Error) WithDomain(domain string) *Error {
	cp := *e
	cp.domain = domain
	return &cp
}

// WithMetadata returns a copy of e with the key/value pairs kv added to its
// metadata ("sku", "A-17", "available", "0"); an odd last key gets "".
func (e *Error) WithMetadata(kv ...string) *Error {
	cp := *e
	cp.metadata = make(map[string]string, len(e.metadata)+len(kv)/2)
	for k, v := range e.metadata {
		cp.metadata[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		v := ""
		if i+1 < len(kv) {
			v = kv[i+1]
		}
		cp.metadata[kv[i]] = v
	}
	return &cp
}

// WithCause returns a copy of e whose cause is err: reachable with
// errors.Is/As and logged by the server, never sent to the caller.
func (e *Error) WithCause(err error) *Error {
	cp := *e
	cp.cause = err
	return &cp
}

// Error implements error as "code: message".
func (e *Error) Error() string {
	if e.message == "" {
		return e.code.String()
	}
	return e.code.String() + ": " + e.message
}

// Unwrap returns the cause, if any. The cause never crosses the wire.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error with the same code and, when the
// target has one, the same reason and domain — so errors.Is(err,
// errs.New(errs.NotFound, "")) matches any NotFound error and a sentinel
// with a reason matches that reason. Messages are never compared: they are
// for people.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.code == e.code && (t.reason == "" || t.reason == e.reason) && (t.domain == "" || t.domain == e.domain)
}

// Received returns a copy of e marked as received from a call to endpoint
// ("payments/Charge") — what a client returns. A server does not send such
// an error on to its own caller as it is (server.WithErrorPassThrough):
// its message may name internal addresses, and its code speaks of the
// dependency, not of the call the caller made. The mark never crosses the
// wire.
func (e *Error) Received(endpoint string) *Error {
	cp := *e
	cp.call = endpoint
	return &cp
}

// ReceivedFrom returns the endpoint the first *Error in err's chain was
// received from (Received), "" for an error made here.
func ReceivedFrom(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.call
	}
	return ""
}

// ReasonOf returns the reason of the first *Error in err's chain, "" if
// none.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.reason
	}
	return ""
}

// DetailsOf returns the details of the first *Error in err's chain — what
// a client reads from an error a server sent.
func DetailsOf(err error) []Detail {
	var e *Error
	if errors.As(err, &e) {
		return e.details
	}
	return nil
}

// CodeOf returns err's code: the code of the first *Error in its chain,
// DeadlineExceeded or Canceled for the context errors, Unknown otherwise.
// CodeOf(nil) is 0.
func CodeOf(err error) Code {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.code
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	return Unknown
}

// FromError converts err to an *Error fit to send to a caller. An *Error in
// err's chain is returned as is; context errors become DeadlineExceeded or
// Canceled; anything else becomes Unknown with a generic message (its text
// is kept only as the cause, for server-side logs). FromError(nil) is nil.
func FromError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{code: DeadlineExceeded, message: "deadline exceeded", cause: err}
	case errors.Is(err, context.Canceled):
		return &Error{code: Canceled, message: "canceled", cause: err}
	}
	return &Error{code: Unknown, message: "unknown error", cause: err}
}
