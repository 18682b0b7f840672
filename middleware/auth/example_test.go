package auth_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-go/ferry/middleware/auth"
	"github.com/ferry-go/ferry/transport"
	"github.com/golang-jwt/jwt/v5"
)

func Example() {
	key := []byte("an-hmac-key-of-at-least-32-bytes!!")
	a, err := auth.New(auth.WithHMACKey(key), auth.WithIssuer("https://id.example.com"))
	if err != nil {
		panic(err)
	}
	handler := a.Require()(func(ctx context.Context, req any) (any, error) {
		p, _ := auth.PrincipalFromContext(ctx)
		return "hello " + p.Subject, nil
	})

	// What a transport does for an incoming call carrying a token.
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "ada", "iss": "https://id.example.com", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(key)
	incoming := func(md transport.Metadata) context.Context {
		return transport.NewCallContext(context.Background(), &transport.Call{Service: "greeter", Endpoint: "Hello", Request: md})
	}

	fmt.Println(handler(incoming(transport.Pairs("authorization", "Bearer "+tok)), nil))
	fmt.Println(handler(incoming(nil), nil))
	fmt.Println(handler(incoming(transport.Pairs("authorization", "Bearer "+tok+"x")), nil))
	// Output:
	// hello ada <nil>
	// <nil> unauthenticated: missing credentials
	// <nil> unauthenticated: invalid token
}
