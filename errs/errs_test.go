package errs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ferry-go/ferry/errs"
)

func TestCodeNamesRoundTrip(t *testing.T) {
	for _, c := range errs.Codes() {
		b, err := c.MarshalText()
		if err != nil {
			t.Fatalf("%d.MarshalText() error %v", c, err)
		}
		var got errs.Code
		if err := got.UnmarshalText(b); err != nil || got != c {
			t.Errorf("UnmarshalText(%q) = %v, %v, want %v", b, got, err, c)
		}
	}
	if n := len(errs.Codes()); n != 16 {
		t.Errorf("len(Codes()) = %d, want 16", n)
	}
	for _, s := range []string{"NOT_FOUND", "cancelled", "Internal"} {
		if _, ok := errs.ParseCode(s); !ok {
			t.Errorf("ParseCode(%q) failed, want ok", s)
		}
	}
	if _, ok := errs.ParseCode("ok"); ok {
		t.Error(`ParseCode("ok") = ok, want no OK code`)
	}
	if got := errs.Code(99).String(); got != "code(99)" {
		t.Errorf("Code(99).String() = %q", got)
	}
}

func TestHTTPStatusRoundTrip(t *testing.T) {
	// Codes that own their status must come back unchanged.
	for _, c := range []errs.Code{errs.Canceled, errs.InvalidArgument, errs.DeadlineExceeded, errs.NotFound,
		errs.PermissionDenied, errs.ResourceExhausted, errs.Unimplemented, errs.Internal, errs.Unavailable,
		errs.Unauthenticated} {
		if got := errs.FromHTTPStatus(errs.HTTPStatus(c)); got != c {
			t.Errorf("FromHTTPStatus(HTTPStatus(%v)) = %v, want %v", c, got, c)
		}
	}
	if got := errs.HTTPStatus(errs.Unknown); got != 500 {
		t.Errorf("HTTPStatus(Unknown) = %d, want 500", got)
	}
}

func TestFromErrorHidesInternals(t *testing.T) {
	e := errs.FromError(fmt.Errorf("db password=hunter2 rejected"))
	if e.Code() != errs.Unknown || e.Message() != "unknown error" {
		t.Errorf("FromError(plain) = %v, want unknown with generic message", e)
	}
	if errors.Unwrap(e) == nil {
		t.Error("FromError(plain) lost the cause for server-side logs")
	}
	if got := errs.FromError(context.DeadlineExceeded).Code(); got != errs.DeadlineExceeded {
		t.Errorf("FromError(DeadlineExceeded) = %v", got)
	}
	if got := errs.CodeOf(fmt.Errorf("wrapped: %w", context.Canceled)); got != errs.Canceled {
		t.Errorf("CodeOf(wrapped canceled) = %v", got)
	}
	nf := errs.New(errs.NotFound, "user 7")
	if got := errs.FromError(fmt.Errorf("ctx: %w", nf)); got != nf {
		t.Errorf("FromError(wrapped *Error) = %v, want the same *Error", got)
	}
	if errs.FromError(nil) != nil || errs.CodeOf(nil) != 0 || errs.Wrap(errs.Internal, nil) != nil {
		t.Error("nil error did not map to nil/0")
	}
}

func TestErrorIsAndNewf(t *testing.T) {
	base := errors.New("root cause")
	e := errs.Newf(errs.FailedPrecondition, "step %d: %w", 2, base)
	if !errors.Is(e, base) {
		t.Error("Newf with %w: errors.Is(e, base) = false")
	}
	if !errors.Is(e, errs.New(errs.FailedPrecondition, "")) {
		t.Error("errors.Is by code = false")
	}
	if errors.Is(e, errs.New(errs.NotFound, "")) {
		t.Error("errors.Is matched a different code")
	}
	if got, want := e.Error(), "failed_precondition: step 2: root cause"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := errs.New(errs.Code(0), "x").Code(); got != errs.Unknown {
		t.Errorf("New(0).Code() = %v, want unknown", got)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	in := errs.New(errs.InvalidArgument, "bad request").WithDetails(errs.Detail{Field: "name", Reason: "required"})
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"code":"invalid_argument","message":"bad request","details":[{"field":"name","reason":"required"}]}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	var out errs.Error
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Code() != in.Code() || out.Message() != in.Message() || len(out.Details()) != 1 || out.Details()[0] != in.Details()[0] {
		t.Errorf("Unmarshal = %+v, want %+v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"message":"no code"}`), &out); err == nil {
		t.Error("Unmarshal without code succeeded, want error")
	}
}

func ExampleNew() {
	err := errs.New(errs.NotFound, `user "ada" not found`)
	fmt.Println(err)
	fmt.Println(errs.CodeOf(err), errs.HTTPStatus(errs.CodeOf(err)))
	// Output:
	// not_found: user "ada" not found
	// not_found 404
}

func TestClip(t *testing.T) {
	long := strings.Repeat("9", 1<<20)
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"short", "short"},
		{long, strings.Repeat("9", errs.ClipLen) + "…"},
		{strings.Repeat("a", errs.ClipLen-1) + "é" + "tail", strings.Repeat("a", errs.ClipLen-1) + "…"},
		{"bad \xff byte", "bad \uFFFD byte"},
	} {
		if got := errs.Clip(c.in); got != c.want {
			t.Errorf("Clip(%.20q…) = %q, want %q", c.in, got, c.want)
		}
		if !utf8.ValidString(errs.Clip(c.in)) {
			t.Errorf("Clip(%.20q…) is not valid UTF-8", c.in)
		}
	}
}

func TestReasonDomainMetadataCause(t *testing.T) {
	base := errs.New(errs.FailedPrecondition, "only 0 left")
	e := base.WithReason("OUT_OF_STOCK").WithDomain("shop.example.com").WithMetadata("sku", "A-17", "odd")
	if base.Reason() != "" || len(base.Metadata()) != 0 {
		t.Error("With* modified the original")
	}
	if e.Reason() != "OUT_OF_STOCK" || e.Domain() != "shop.example.com" || e.Metadata()["sku"] != "A-17" || e.Metadata()["odd"] != "" {
		t.Errorf("got reason %q domain %q metadata %v", e.Reason(), e.Domain(), e.Metadata())
	}
	// errors.Is: code and reason (and domain when the target has one), never the message.
	for target, want := range map[*errs.Error]bool{
		errs.New(errs.FailedPrecondition, ""):                                 true,
		errs.New(errs.FailedPrecondition, "another message"):                  true,
		errs.New(errs.FailedPrecondition, "").WithReason("OUT_OF_STOCK"):      true,
		errs.New(errs.FailedPrecondition, "").WithReason("PRICE_CHANGED"):     false,
		errs.New(errs.NotFound, "").WithReason("OUT_OF_STOCK"):                false,
		errs.New(errs.FailedPrecondition, "").WithDomain("other.example.com"): false,
		errs.New(errs.FailedPrecondition, "").WithDomain("shop.example.com"):  true,
	} {
		if got := errors.Is(fmt.Errorf("placing: %w", e), target); got != want {
			t.Errorf("errors.Is(e, %v reason %q domain %q) = %v, want %v", target, target.Reason(), target.Domain(), got, want)
		}
	}
	// JSON carries everything but the cause.
	cause := errors.New("secret: 10.0.0.7")
	b, err := json.Marshal(e.WithCause(cause))
	if err != nil || strings.Contains(string(b), "secret") {
		t.Fatalf("Marshal = %s, %v; want no cause", b, err)
	}
	var back errs.Error
	if err := json.Unmarshal(b, &back); err != nil || back.Reason() != "OUT_OF_STOCK" || back.Domain() != "shop.example.com" || back.Metadata()["sku"] != "A-17" {
		t.Errorf("round trip = %s → %+v, %v", b, back, err)
	}
	if !errors.Is(e.WithCause(cause), cause) || errs.ReasonOf(fmt.Errorf("x: %w", e)) != "OUT_OF_STOCK" {
		t.Error("the cause is not reachable, or ReasonOf does not see through wrapping")
	}
}
