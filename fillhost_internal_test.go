package ferry

import "testing"

func TestFillHost(t *testing.T) {
	for in, want := range map[string]string{
		"http://[::]:8080":      "http://10.1.2.3:8080",
		"http://0.0.0.0:8080":   "http://10.1.2.3:8080",
		":9090":                 "10.1.2.3:9090",
		"127.0.0.1:9090":        "127.0.0.1:9090",
		"nats://127.0.0.1:4222": "nats://127.0.0.1:4222",
		"not an address":        "not an address",
	} {
		if got := fillHost(in, "10.1.2.3"); got != want {
			t.Errorf("fillHost(%q) = %q, want %q", in, got, want)
		}
	}
}
