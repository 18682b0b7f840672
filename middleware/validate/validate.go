package validate

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/go-playground/validator/v10"
)

// Option configures New.
type Option func(*config)

type config struct {
	v       *validator.Validate
	message string
}

// WithValidator makes New use v instead of a validator of its own, for
// custom validations registered with v.RegisterValidation. New still
// registers its `json` tag-name function on v, so violations carry JSON
// field names. A nil v is ignored.
func WithValidator(v *validator.Validate) Option {
	return func(c *config) {
		if v != nil {
			c.v = v
		}
	}
}

// WithMessage sets the error message of a rejected request (default
// "invalid request"). An empty message is ignored.
func WithMessage(msg string) Option {
	return func(c *config) {
		if msg != "" {
			c.message = msg
		}
	}
}

// New returns middleware that rejects requests failing their validate
// struct tags with errs.InvalidArgument, one detail per violation, before
// the wrapped handler runs.
func New(opts ...Option) middleware.Middleware {
	cfg := config{message: "invalid request"}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.v == nil {
		cfg.v = validator.New(validator.WithRequiredStructEnabled())
	}
	cfg.v.RegisterTagNameFunc(jsonName)
	v, msg := cfg.v, cfg.message
	checkMsg := func(ctx context.Context, m any) error { return check(ctx, v, m, msg) }
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			if err := check(ctx, v, req, msg); err != nil {
				return nil, err
			}
			// Each message a client or bidirectional stream receives is
			// checked too: Recv returns the InvalidArgument error.
			middleware.OnMessages(ctx, checkMsg, nil)
			return next(ctx, req)
		}
	}
}

// Check validates req as the middleware does and returns the
// InvalidArgument error it would return, or nil. It is for handlers and
// clients that validate a value themselves.
func Check(ctx context.Context, req any) error {
	return check(ctx, defaultValidator, req, "invalid request")
}

var defaultValidator = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(jsonName)
	return v
}()

func check(ctx context.Context, v *validator.Validate, req any, msg string) error {
	if !isStruct(req) {
		return nil
	}
	err := v.StructCtx(ctx, req)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		// InvalidValidationError (nil pointer and the like): nothing to check.
		return nil
	}
	details := make([]errs.Detail, 0, len(verrs))
	for _, fe := range verrs {
		details = append(details, errs.Detail{Field: fieldPath(reflect.TypeOf(req), fe), Reason: reason(fe)})
	}
	return errs.New(errs.InvalidArgument, msg).WithDetails(details...)
}

func isStruct(req any) bool {
	t := reflect.TypeOf(req)
	if t == nil {
		return false
	}
	if t.Kind() == reflect.Pointer {
		if reflect.ValueOf(req).IsNil() {
			return false
		}
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

// jsonName names fields as encoding/json does: the json tag's name, the Go
// name when the tag has none, and "" (skip) for `json:"-"`.
func jsonName(f reflect.StructField) string {
	tag, ok := f.Tag.Lookup("json")
	if !ok {
		return f.Name
	}
	name, _, _ := strings.Cut(tag, ",")
	switch name {
	case "-":
		if tag == "-" {
			return ""
		}
	case "":
		return f.Name
	}
	return name
}

// fieldPath turns the validator's namespace ("PlaceOrder.items[0].sku")
// into the JSON path below the request ("items[0].sku"). A struct embedded
// without a json name is flattened into its parent, as encoding/json does,
// so its segment is left out ("Audit.by" is "by"); root is the request's
// type, walked along the Go names to find such fields.
func fieldPath(root reflect.Type, fe validator.FieldError) string {
	names := strings.Split(fe.Namespace(), ".")
	goNames := strings.Split(fe.StructNamespace(), ".")
	if len(names) != len(goNames) || len(names) < 2 {
		_, rest, ok := strings.Cut(fe.Namespace(), ".")
		if !ok {
			return fe.Namespace()
		}
		return rest
	}
	t := root
	keep := make([]string, 0, len(names)-1)
	for i := 1; i < len(names); i++ {
		for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
			t = t.Elem()
		}
		goName, _, _ := strings.Cut(goNames[i], "[")
		if t != nil && t.Kind() == reflect.Struct {
			if f, ok := t.FieldByName(goName); ok {
				t = f.Type
				if _, tagged := f.Tag.Lookup("json"); f.Anonymous && !tagged && i < len(names)-1 {
					continue // flattened into its parent
				}
			} else {
				t = nil
			}
		}
		keep = append(keep, names[i])
	}
	return strings.Join(keep, ".")
}

// reason turns a violation into a short sentence about the field.
func reason(fe validator.FieldError) string {
	p := fe.Param()
	kind := fe.Kind()
	if kind == reflect.Pointer {
		kind = fe.Type().Elem().Kind()
	}
	sized := kind == reflect.String || kind == reflect.Slice || kind == reflect.Map || kind == reflect.Array
	unit := ""
	if kind == reflect.String {
		unit = " characters"
	} else if sized {
		unit = " items"
	}
	switch fe.Tag() {
	case "required", "required_if", "required_unless", "required_with", "required_with_all",
		"required_without", "required_without_all":
		return "is required"
	case "excluded_if", "excluded_unless", "excluded_with", "excluded_without":
		return "must not be set"
	case "min":
		if sized {
			return fmt.Sprintf("must have at least %s%s", p, unit)
		}
		return "must be at least " + p
	case "max":
		if sized {
			return fmt.Sprintf("must have at most %s%s", p, unit)
		}
		return "must be at most " + p
	case "len":
		if sized {
			return fmt.Sprintf("must have exactly %s%s", p, unit)
		}
		return "must be " + p
	case "eq":
		return "must be " + p
	case "ne":
		return "must not be " + p
	case "gt":
		if sized {
			return fmt.Sprintf("must have more than %s%s", p, unit)
		}
		return "must be greater than " + p
	case "gte":
		if sized {
			return fmt.Sprintf("must have at least %s%s", p, unit)
		}
		return "must be at least " + p
	case "lt":
		if sized {
			return fmt.Sprintf("must have fewer than %s%s", p, unit)
		}
		return "must be less than " + p
	case "lte":
		if sized {
			return fmt.Sprintf("must have at most %s%s", p, unit)
		}
		return "must be at most " + p
	case "oneof":
		return "must be one of: " + strings.Join(strings.Fields(p), ", ")
	case "email":
		return "must be an email address"
	case "url", "http_url":
		return "must be a URL"
	case "uri":
		return "must be a URI"
	case "uuid", "uuid4", "uuid5", "uuid3":
		return "must be a UUID"
	case "alpha":
		return "must contain only letters"
	case "alphanum":
		return "must contain only letters and digits"
	case "numeric", "number":
		return "must be numeric"
	case "ip", "ipv4", "ipv6":
		return "must be an IP address"
	case "hostname", "hostname_rfc1123":
		return "must be a host name"
	case "datetime":
		return "must be a date/time in the format " + p
	case "unique":
		return "must not contain duplicates"
	case "eqfield":
		return "must equal " + p
	case "nefield":
		return "must differ from " + p
	case "contains":
		return fmt.Sprintf("must contain %q", p)
	case "startswith":
		return fmt.Sprintf("must start with %q", p)
	case "endswith":
		return fmt.Sprintf("must end with %q", p)
	}
	if p != "" {
		return fmt.Sprintf("must satisfy %s=%s", fe.Tag(), p)
	}
	return "must satisfy " + fe.Tag()
}
