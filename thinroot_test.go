package ferry_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestThinRoot: a service on ferry.New with the HTTP transport links
// neither NATS nor gRPC (issue #11: an HTTP-only hello was 35 MB because
// the root imported every transport and nats-server; it is 13 MB now).
func TestThinRoot(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "./transport/http", "./server", "./errs").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	for dep := range strings.Lines(string(out)) {
		dep = strings.TrimSpace(dep)
		for _, heavy := range []string{"github.com/nats-io/nats-server", "github.com/nats-io/nats.go", "google.golang.org/grpc"} {
			if strings.HasPrefix(dep, heavy) {
				t.Errorf("the root with the HTTP transport depends on %s", dep)
			}
		}
	}
}
