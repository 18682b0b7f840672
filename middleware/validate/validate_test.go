package validate_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/middleware/validate"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	"github.com/go-playground/validator/v10"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type Item struct {
	SKU string `json:"sku" validate:"required"`
	Qty int    `json:"qty" validate:"gte=1"`
}

type PlaceOrder struct {
	Customer string  `json:"customer" validate:"required"`
	Email    string  `json:"email,omitempty" validate:"omitempty,email"`
	Items    []*Item `json:"items" validate:"required,min=1,dive"`
	Note     string  `json:"note" validate:"max=5"`
}

type Placed struct {
	ID string `json:"id"`
}

func startShop(t *testing.T, calls *atomic.Int64) *ferrytest.Instance {
	t.Helper()
	srv := server.New("shop", server.WithMiddleware(validate.New()))
	server.Handle(srv, "Place", func(ctx context.Context, req *PlaceOrder) (*Placed, error) {
		calls.Add(1)
		return &Placed{ID: "o-1"}, nil
	})
	return ferrytest.Start(t, srv)
}

func clients(inst *ferrytest.Instance) []struct {
	name string
	c    transport.Client
} {
	return []struct {
		name string
		c    transport.Client
	}{{"http", inst.HTTP}, {"grpc", inst.GRPC}, {"nats", inst.NATS}}
}

// TestPerTransport is the per-transport test: the same invalid
// request is InvalidArgument with every violation, named by JSON paths, on
// HTTP, gRPC and NATS, and the handler never runs.
func TestPerTransport(t *testing.T) {
	var calls atomic.Int64
	inst := startShop(t, &calls)
	bad := &PlaceOrder{Email: "not-an-email", Items: []*Item{{SKU: "a", Qty: 1}, {Qty: 0}}, Note: "too long"}
	want := []errs.Detail{
		{Field: "customer", Reason: "is required"},
		{Field: "email", Reason: "must be an email address"},
		{Field: "items[1].sku", Reason: "is required"},
		{Field: "items[1].qty", Reason: "must be at least 1"},
		{Field: "note", Reason: "must have at most 5 characters"},
	}
	for _, tc := range clients(inst) {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := transport.Invoke[PlaceOrder, Placed](ctx, tc.c, "shop", "Place", bad)
			var e *errs.Error
			if !errors.As(err, &e) || e.Code() != errs.InvalidArgument {
				t.Fatalf("err = %v, want invalid_argument", err)
			}
			if e.Message() != "invalid request" {
				t.Errorf("message = %q", e.Message())
			}
			if got := e.Details(); !slices.Equal(got, want) {
				t.Errorf("details =\n%v\nwant\n%v", got, want)
			}

			// The happy path reaches the handler.
			before := calls.Load()
			good := &PlaceOrder{Customer: "ada", Items: []*Item{{SKU: "a", Qty: 2}}}
			r, err := transport.Invoke[PlaceOrder, Placed](ctx, tc.c, "shop", "Place", good)
			if err != nil || r.ID != "o-1" {
				t.Fatalf("valid request: %v, %v", r, err)
			}
			if calls.Load() != before+1 {
				t.Errorf("handler calls = %d, want %d", calls.Load(), before+1)
			}
		})
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("handler ran %d times, want 3 (only the valid requests)", n)
	}
}

func run(t *testing.T, mw func(context.Context, any) (any, error), req any) error {
	t.Helper()
	_, err := mw(context.Background(), req)
	return err
}

func TestPassThrough(t *testing.T) {
	var calls int
	h := validate.New()(func(ctx context.Context, req any) (any, error) { calls++; return req, nil })
	type untagged struct{ A string }
	var nilOrder *PlaceOrder
	for _, req := range []any{nil, "text", 42, []int{1}, &untagged{}, untagged{}, nilOrder} {
		if err := run(t, h, req); err != nil {
			t.Errorf("%T: %v", req, err)
		}
	}
	if calls != 7 {
		t.Errorf("calls = %d, want 7", calls)
	}
	// A struct value (not a pointer) is validated too.
	if err := run(t, h, PlaceOrder{}); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("struct value: %v", err)
	}
}

func TestJSONNames(t *testing.T) {
	type Inner struct {
		V int `validate:"gt=0"`
	}
	type Req struct {
		Renamed string         `json:"renamed_field,omitempty" validate:"required"`
		Plain   string         `validate:"required"`
		In      Inner          `json:"inner"`
		Tags    []string       `json:"tags" validate:"dive,oneof=a b"`
		M       map[string]int `json:"m" validate:"dive,keys,min=2,endkeys,lt=3"`
	}
	err := validate.Check(context.Background(), &Req{In: Inner{}, Tags: []string{"a", "z"}, M: map[string]int{"k": 5}})
	var e *errs.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	var fields []string
	for _, d := range e.Details() {
		fields = append(fields, d.Field+": "+d.Reason)
	}
	want := []string{
		"renamed_field: is required",
		"Plain: is required",
		"inner.V: must be greater than 0",
		"tags[1]: must be one of: a, b",
		"m[k]: must have at least 2 characters",
		"m[k]: must be less than 3",
	}
	if !slices.Equal(fields, want) {
		t.Errorf("details =\n%q\nwant\n%q", fields, want)
	}
}

func TestOptions(t *testing.T) {
	v := validator.New()
	if err := v.RegisterValidation("even", func(fl validator.FieldLevel) bool { return fl.Field().Int()%2 == 0 }); err != nil {
		t.Fatal(err)
	}
	type Req struct {
		N int `json:"n" validate:"even"`
	}
	h := validate.New(validate.WithValidator(v), validate.WithMessage("bad input"), nil)(
		func(ctx context.Context, req any) (any, error) { return nil, nil })
	_, err := h(context.Background(), &Req{N: 3})
	var e *errs.Error
	if !errors.As(err, &e) || e.Message() != "bad input" || len(e.Details()) != 1 ||
		e.Details()[0] != (errs.Detail{Field: "n", Reason: "must satisfy even"}) {
		t.Fatalf("err = %v %v", err, e.Details())
	}
}

type audit struct {
	By string `json:"by" validate:"required"`
}

type embedding struct {
	audit
	Items []struct {
		Audit audit `json:"audit"`
	} `json:"items" validate:"dive"`
}

// A field of an embedded struct is named by its JSON path: flattened, as
// encoding/json writes it.
func TestEmbeddedFieldPath(t *testing.T) {
	req := &embedding{Items: []struct {
		Audit audit `json:"audit"`
	}{{}}}
	err := validate.Check(context.Background(), req)
	var got []string
	for _, d := range errs.DetailsOf(err) {
		got = append(got, d.Field)
	}
	slices.Sort(got)
	if strings.Join(got, ",") != "by,items[0].audit.by" {
		t.Errorf("fields = %v, want [by items[0].audit.by]", got)
	}
}
