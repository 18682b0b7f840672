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

type countReq struct {
	To int `json:"to"`
}

type count struct {
	N int `json:"n"`
}

// A server stream over HTTP: the client reads the messages as NDJSON (or
// as Server-Sent Events, with WithStreamFormat), then the trailer.
func ExampleClient_NewStream() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	s := server.New("counter")
	server.HandleServerStream(s, "Count", func(ctx context.Context, req *countReq, out server.Sender[count]) error {
		for i := 1; i <= req.To; i++ {
			if err := out.Send(&count{N: i}); err != nil {
				return err
			}
		}
		c, _ := transport.CallFromContext(ctx)
		c.SetTrailer("total", fmt.Sprint(req.To))
		return nil
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

	countEP := transport.StreamEndpoint[countReq, count]{Service: "counter", Name: "Count", Kind: transport.ServerStreaming}
	st, err := countEP.OpenServer(ctx, c, &countReq{To: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	for m, err := range st.All() {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(m.N)
	}
	fmt.Println("total:", st.Trailer().Get("total"))
	// Output:
	// 1
	// 2
	// 3
	// total: 3
}
