package validate_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware/validate"
)

func Example() {
	type Signup struct {
		Name  string `json:"name" validate:"required"`
		Email string `json:"email" validate:"required,email"`
		Age   int    `json:"age" validate:"gte=18"`
	}
	handler := validate.New()(func(ctx context.Context, req any) (any, error) {
		fmt.Println("handler ran")
		return nil, nil
	})
	_, err := handler(context.Background(), &Signup{Email: "ada@", Age: 12})
	var e *errs.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code(), e.Message())
		for _, d := range e.Details() {
			fmt.Printf("%s: %s\n", d.Field, d.Reason)
		}
	}
	// Output:
	// invalid_argument invalid request
	// name: is required
	// email: must be an email address
	// age: must be at least 18
}
