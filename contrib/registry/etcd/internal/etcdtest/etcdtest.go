// Package etcdtest starts an embedded etcd server for the tests of the
// etcd registry.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/ferrytest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Server is a single-member etcd cluster on 127.0.0.1.
type Server struct {
	// URL is the client URL, http://127.0.0.1:<port>.
	URL string
	// Etcd is the embedded server.
	Etcd *embed.Etcd

	dir          string
	client, peer url.URL
	logs         *ferrytest.Buffer
}

// Start starts a single-member etcd server for t: data in t.TempDir(),
// client and peer listeners on free 127.0.0.1 ports, logging errors only
// (shown when the test fails).
// It waits until the server is ready (within the test's Context) and
// closes it at the end of the test. Should a port be taken between its
// choice and the bind, it starts again on other ports, up to 5 times.
func Start(t testing.TB) *Server {
	t.Helper()
	var lastErr error
	for range 5 {
		s, err := start(t)
		if err == nil {
			return s
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("etcdtest: start etcd: %v", lastErr)
	return nil
}

func start(t testing.TB) (*Server, error) {
	logs := &ferrytest.Buffer{}
	t.Cleanup(func() { // registered first, so it runs after the server closed
		if t.Failed() {
			t.Logf("etcd log:\n%s", logs.String())
		}
	})
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	s := &Server{
		dir:    t.TempDir(),
		client: url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])},
		peer:   url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])},
		logs:   logs,
	}
	s.URL = s.client.String()
	if err := s.run(t); err != nil {
		return nil, err
	}
	t.Cleanup(s.Stop)
	return s, nil
}

// run starts the server on s's ports and data.
func (s *Server) run(t testing.TB) error {
	cfg := embed.NewConfig()
	cfg.Name = "ferry-test"
	cfg.Dir = s.dir
	cfg.ListenClientUrls = []url.URL{s.client}
	cfg.AdvertiseClientUrls = []url.URL{s.client}
	cfg.ListenPeerUrls = []url.URL{s.peer}
	cfg.AdvertisePeerUrls = []url.URL{s.peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Errors only, kept in a buffer that a failed test logs: closing the
	// server logs its listeners' ends as errors, which are not.
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(zapcore.NewCore(
		zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(s.logs), zap.ErrorLevel)))
	cfg.UnsafeNoFsync = true // a test's data need not survive a power cut
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	ctx := ferrytest.Context(t)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("etcd failed before ready: %w", err)
	case <-ctx.Done():
		e.Close()
		return fmt.Errorf("etcd not ready: %w", ctx.Err())
	}
	s.Etcd = e
	return nil
}

// Stop stops the server; Restart starts it again.
func (s *Server) Stop() {
	if s.Etcd != nil {
		s.Etcd.Close()
		s.Etcd = nil
	}
}

// Restart starts the stopped server again, on the same ports and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.run(t); err != nil {
		t.Fatalf("etcdtest: restart etcd: %v", err)
	}
}

// freePorts returns n ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Client returns a client of s, closed at the end of the test.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.URL}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcdtest: client of %s: %v", s.URL, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}
