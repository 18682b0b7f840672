package http_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
)

// A server and a client on a free port: the client gets the reply, and an
// error with the code the handler chose.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	s := server.New("greeter")
	server.Handle(s, "Hello", func(_ context.Context, req *helloReq) (*helloResp, error) {
		if req.Name == "" {
			return nil, errs.New(errs.InvalidArgument, "name is required")
		}
		return &helloResp{Message: "Hello, " + req.Name}, nil
	})
	hs := fhttp.NewServer("127.0.0.1:0")
	if err := hs.Start(ctx, s); err != nil {
		fmt.Println(err)
		return
	}
	defer hs.Stop(ctx)

	c, err := fhttp.NewClient("http://" + hs.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	resp, err := transport.Invoke[helloReq, helloResp](ctx, c, "greeter", "Hello", &helloReq{Name: "Ada"})
	fmt.Println(resp.Message, err)
	_, err = transport.Invoke[helloReq, helloResp](ctx, c, "greeter", "Hello", &helloReq{})
	fmt.Println(errs.CodeOf(err), err)
	// Output:
	// Hello, Ada <nil>
	// invalid_argument invalid_argument: name is required
}
