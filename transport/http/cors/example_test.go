package cors_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/ferry-go/ferry/transport/http/cors"
)

func Example() {
	filter, err := cors.New(cors.Options{AllowedOrigins: []string{"https://app.example.com"}})
	if err != nil {
		panic(err)
	}
	// In a service: fhttp.NewServer(":8080", fhttp.WithFilter(filter)).
	h := filter(http.NotFoundHandler())

	r := httptest.NewRequest(http.MethodOptions, "/greeter/Hello", nil)
	r.Header.Set("Origin", "https://app.example.com")
	r.Header.Set("Access-Control-Request-Method", "POST")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Access-Control-Allow-Origin"), w.Header().Get("Access-Control-Allow-Methods"))
	// Output:
	// 204 https://app.example.com GET, HEAD, POST, PUT, PATCH, DELETE
}
