package ferry_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/encoding/protowire"
)

// hostileRSSBound is the peak resident memory the hostile-load test allows
// the service (without the race detector), documented in
// docs/RELIABILITY.md.
const hostileRSSBound = 768 << 20

// hostileChildEnv makes the test binary serve the hostile-load target
// instead of running tests.
const hostileChildEnv = "FERRY_HOSTILE_CHILD"

// Strings is the request of the hostile test's endpoint: a repeated string
// field, the cheapest thing on the wire that costs the most to decode.
type Strings struct {
	S []string `json:"s"`
}

// runHostileChild serves Take and Echo over HTTP and gRPC with the default
// limits until its stdin closes, printing "ready <http> <grpc>".
func runHostileChild() int {
	srv := server.New("victim")
	server.Handle(srv, "Take", func(_ context.Context, r *Strings) (*Empty, error) { return &Empty{}, nil })
	server.Handle(srv, "Echo", func(_ context.Context, m *msg) (*msg, error) { return m, nil })
	h, g := fhttp.NewServer("127.0.0.1:0"), fgrpc.NewServer("127.0.0.1:0")
	svc := ferry.New(srv, ferry.WithTransport(h), ferry.WithTransport(g), ferry.WithSignals(), ferry.WithLogger(quiet()))
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	httpAddr, grpcAddr := "http://"+h.Addr().String(), g.Addr().String()
	fmt.Printf("ready %s %s\n", httpAddr, grpcAddr)
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = svc.Stop(ctx)
	return 0
}

// Empty is an empty reply.
type Empty struct{}

// rawBytes is a gRPC codec that sends bytes as they are.
type rawBytes struct{}

func (rawBytes) Name() string                  { return "proto" }
func (rawBytes) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawBytes) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append((*v.(*[]byte))[:0], data...)
	return nil
}

var _ encoding.Codec = rawBytes{}

// peakRSS reads a process's peak resident set size in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmHWM in /proc status")
	return 0
}

// TestHostileRequestsBoundMemory is issue #11's fault 16: rounds of 32
// hostile requests of just under 4 MiB at once — gRPC messages of empty
// repeated strings, JSON arrays of empty strings — against a service with
// the default limits, while a normal caller goes on calling. Admission
// before decoding (server.Admission) and the element cap of the derived
// protobuf codec bound the memory; the normal calls all succeed.
func TestHostileRequestsBoundMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process and sends hundreds of MiB")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), hostileChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("child did not start: %s", stderr.String())
	}
	var httpAddr, grpcAddr string
	if _, err := fmt.Sscanf(sc.Text(), "ready %s %s", &httpAddr, &grpcAddr); err != nil {
		t.Fatalf("child said %q: %v", sc.Text(), err)
	}
	base := peakRSS(t, cmd.Process.Pid)

	const limit = 4<<20 - 64<<10 // under the 4 MiB message and body limits
	var pb []byte
	for len(pb)+2 <= limit {
		pb = protowire.AppendBytes(protowire.AppendTag(pb, 1, protowire.BytesType), nil)
	}
	js := []byte(`{"s":[""` + strings.Repeat(`,""`, (limit-10)/3) + `]}`)

	cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawBytes{}), grpc.MaxCallSendMsgSize(8<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()
	ctx := ferrytest.Context(t)

	// The normal caller.
	var normal, normalFailed atomic.Int64
	stop := make(chan struct{})
	var nwg sync.WaitGroup
	nwg.Add(1)
	go func() {
		defer nwg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			req, _ := http.NewRequestWithContext(cctx, "POST", httpAddr+"/victim/Echo", strings.NewReader(`{"text":"hi"}`))
			resp, err := hc.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			cancel()
			normal.Add(1)
			if err != nil && normalFailed.Add(1) <= 3 {
				t.Errorf("normal call during the hostile load: %v", err)
			}
		}
	}()

	var hostile, refused atomic.Int64
	began := time.Now()
	race := slices.Contains(ferrytest.BuildFlags, "-race")
	rounds := 3
	if race {
		rounds = 1 // the race detector makes decoding ten times slower
	}
	for round := range rounds {
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				defer cancel()
				var err error
				if i%2 == 0 {
					var out []byte
					err = cc.Invoke(cctx, "/victim.Victim/Take", &pb, &out)
				} else {
					req, _ := http.NewRequestWithContext(cctx, "POST", httpAddr+"/victim/Take", bytes.NewReader(js))
					var resp *http.Response
					if resp, err = hc.Do(req); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
				}
				hostile.Add(1)
				if err != nil {
					refused.Add(1)
				}
			}()
		}
		wg.Wait()
		t.Logf("round %d done after %v", round+1, time.Since(began).Round(time.Millisecond))
	}
	close(stop)
	nwg.Wait()
	peak := peakRSS(t, cmd.Process.Pid)
	t.Logf("%d hostile requests of %d KiB (%d refused or failed), %d normal calls (%d failed); child peak RSS %d MiB (%d MiB at start)",
		hostile.Load(), limit>>10, refused.Load(), normal.Load(), normalFailed.Load(), peak>>20, base>>20)
	bound := int64(hostileRSSBound)
	if race {
		bound *= 3 // the race detector's shadow memory
	}
	if peak > bound {
		t.Errorf("child peak RSS %d MiB, want at most %d MiB", peak>>20, bound>>20)
	}
}
