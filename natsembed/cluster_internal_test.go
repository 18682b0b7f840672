package natsembed

import (
	"context"
	"net"
	"testing"
)

// A route port taken between its choice and the server's bind: the
// cluster starts again on other ports instead of failing (CI saw it under
// load: "bind: address already in use").
func TestStartClusterRetriesTakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	calls := 0
	pickPorts = func(host string, n int) ([]int, error) {
		calls++
		ports, err := freePorts(host, n)
		if calls == 1 && err == nil {
			ports[n-1] = taken.Addr().(*net.TCPAddr).Port
		}
		return ports, err
	}
	defer func() { pickPorts = freePorts }()

	servers, err := StartCluster(context.Background(), 2, Options{})
	if err != nil {
		t.Fatalf("StartCluster with a taken route port = %v, want it to retry", err)
	}
	for _, s := range servers {
		s.Shutdown()
	}
	if calls != 2 {
		t.Errorf("route ports picked %d times, want 2", calls)
	}
}
