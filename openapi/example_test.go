package openapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/ferry-go/ferry/openapi"
	"github.com/ferry-go/ferry/server"
	fhttp "github.com/ferry-go/ferry/transport/http"
)

// A service's endpoints and its document on one listener: the document at
// GET /openapi.json, every other path to the HTTP transport's handler.
func Example() {
	s := server.New("greeter", server.WithVersion("1.0.0"))
	server.Handle(s, "Hello", func(_ context.Context, req *HelloRequest) (*HelloReply, error) {
		return &HelloReply{Message: "Hello, " + req.Name}, nil
	}, server.WithRoute("GET /v1/hello/{name}"))

	api, err := fhttp.NewHandler(s)
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+openapi.Path, openapi.Handler(s))
	mux.Handle("/", api)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + ln.Addr().String() + openapi.Path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Title   string `json:"title"`
			Version string `json:"version"`
		} `json:"info"`
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Header.Get("Content-Type"), doc.OpenAPI, doc.Info.Title, doc.Info.Version)
	for _, path := range slices.Sorted(maps.Keys(doc.Paths)) {
		for method, op := range doc.Paths[path] {
			fmt.Println(method, path, op.OperationID)
		}
	}
	// Output:
	// application/json 3.1.0 greeter 1.0.0
	// post /greeter/Hello Hello
	// get /v1/hello/{name} Hello_get
}
