package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"

	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
)

// The benchmarks compare Ferry with a raw net/http + encoding/json handler
// and client on the same workload, at 64 concurrent callers:
//
//	go test -run=^$ -bench=. -benchmem ./transport/http/

func parallel64(b *testing.B) {
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
}

func rawServer(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /greeter/Hello", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var req helloReq
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		out, _ := json.Marshal(&helloResp{Message: "Hello, " + req.Name})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(ln) }()
	b.Cleanup(func() { _ = hs.Close() })
	return "http://" + ln.Addr().String()
}

func rawCall(hc *http.Client, url string) error {
	body, _ := json.Marshal(&helloReq{Name: "Ada"})
	resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var out helloResp
	return json.Unmarshal(data, &out)
}

func rawBenchClient(b *testing.B) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func BenchmarkRaw(b *testing.B) {
	url := rawServer(b) + "/greeter/Hello"
	hc := rawBenchClient(b)
	parallel64(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := rawCall(hc, url); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkFerry(b *testing.B) {
	s := server.New("greeter", server.WithLogger(quiet))
	server.Handle(s, "Hello", hello)
	_, base := start(b, s)
	c := newClient(b, base)
	ctx := context.Background()
	parallel64(b)
	b.RunParallel(func(pb *testing.PB) {
		req := &helloReq{Name: "Ada"}
		for pb.Next() {
			if _, err := transport.Invoke[helloReq, helloResp](ctx, c, "greeter", "Hello", req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkFerryServer measures the server alone: a raw client calls it.
func BenchmarkFerryServer(b *testing.B) {
	s := server.New("greeter", server.WithLogger(quiet))
	server.Handle(s, "Hello", hello)
	_, base := start(b, s)
	url := base + "/greeter/Hello"
	hc := rawBenchClient(b)
	parallel64(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := rawCall(hc, url); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkFerryClient measures the client alone: it calls a raw server.
func BenchmarkFerryClient(b *testing.B) {
	c := newClient(b, rawServer(b))
	ctx := context.Background()
	parallel64(b)
	b.RunParallel(func(pb *testing.PB) {
		req := &helloReq{Name: "Ada"}
		for pb.Next() {
			if _, err := transport.Invoke[helloReq, helloResp](ctx, c, "greeter", "Hello", req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkHandler measures the server's per-request work without the
// network.
func BenchmarkHandler(b *testing.B) {
	s := server.New("greeter", server.WithLogger(quiet))
	server.Handle(s, "Hello", hello)
	h, err := fhttp.NewHandler(s)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"name":"Ada"}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		r, _ := http.NewRequest("POST", "/greeter/Hello", nil)
		for pb.Next() {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			clear(w.h)
			h.ServeHTTP(w, r)
		}
	})
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}
