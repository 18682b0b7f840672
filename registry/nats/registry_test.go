package nats_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/natsembed"
	"github.com/ferry-go/ferry/registry"
	natsreg "github.com/ferry-go/ferry/registry/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func jetStream(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("nats.Connect(%q) = %v, want nil", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New = %v, want nil", err)
	}
	return nc, js
}

func newRegistry(t testing.TB, js jetstream.JetStream, opts ...natsreg.Option) *natsreg.Registry {
	t.Helper()
	r, err := natsreg.New(testCtx(t), js, opts...)
	if err != nil {
		t.Fatalf("New(%v) = %v, want nil", opts, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestConformance(t *testing.T) {
	s := ferrytest.NATS(t)
	_, js := jetStream(t, s.ClientURL())
	var n atomic.Int64
	ferrytest.RegistryConformance(t, func(t testing.TB) registry.Registry {
		return newRegistry(t, js, natsreg.WithBucket(fmt.Sprintf("conf_%d", n.Add(1))))
	})
}

func TestTTLConformance(t *testing.T) {
	s := ferrytest.NATS(t)
	_, js := jetStream(t, s.ClientURL())
	ferrytest.RegistryTTLConformance(t, func(t testing.TB, ttl time.Duration) (registry.Registry, func()) {
		r := newRegistry(t, js, natsreg.WithTTL(ttl))
		return r, func() { _ = r.Close() }
	})
}

func TestNewInvalidOptions(t *testing.T) {
	s := ferrytest.NATS(t)
	_, js := jetStream(t, s.ClientURL())
	tests := []struct {
		name string
		opts []natsreg.Option
	}{
		{"bucket with dot", []natsreg.Option{natsreg.WithBucket("a.b")}},
		{"empty bucket", []natsreg.Option{natsreg.WithBucket("")}},
		{"TTL under a second", []natsreg.Option{natsreg.WithTTL(500 * time.Millisecond)}},
		{"zero heartbeat", []natsreg.Option{natsreg.WithHeartbeat(0)}},
		{"heartbeat not under TTL", []natsreg.Option{natsreg.WithTTL(2 * time.Second), natsreg.WithHeartbeat(2 * time.Second)}},
		{"zero replicas", []natsreg.Option{natsreg.WithReplicas(0)}},
		{"six replicas", []natsreg.Option{natsreg.WithReplicas(6)}},
	}
	for _, tt := range tests {
		r, err := natsreg.New(testCtx(t), js, tt.opts...)
		if errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("New(%s) = %v, %v, want an %v error", tt.name, r, err, errs.InvalidArgument)
		}
		if r != nil {
			_ = r.Close()
		}
	}
	if r, err := natsreg.New(testCtx(t), nil); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("New(nil JetStream) = %v, %v, want an %v error", r, err, errs.InvalidArgument)
	}
}

func TestNewExistingBucket(t *testing.T) {
	ctx := testCtx(t)
	s := ferrytest.NATS(t)
	_, js := jetStream(t, s.ClientURL())

	// A bucket made by New is bound again with its own TTL.
	first := newRegistry(t, js, natsreg.WithBucket("shared"), natsreg.WithTTL(4*time.Second))
	second := newRegistry(t, js, natsreg.WithBucket("shared"), natsreg.WithTTL(time.Minute))
	if got, want := second.TTL(), first.TTL(); got != want {
		t.Errorf("TTL() of a registry on an existing bucket = %v, want the bucket's %v", got, want)
	}
	if got := second.Bucket(); got != "shared" {
		t.Errorf("Bucket() = %q, want %q", got, "shared")
	}
	in := registry.Instance{ID: "i1", Service: "svc", Endpoints: []registry.Endpoint{{Transport: "grpc", Address: "127.0.0.1:1"}}}
	if err := first.Register(ctx, in); err != nil {
		t.Fatalf("Register = %v, want nil", err)
	}
	if got, err := second.Lookup(ctx, "svc"); err != nil || len(got) != 1 {
		t.Errorf("Lookup(svc) through the second registry = %v, %v, want one instance", got, err)
	}

	// A bucket without expiry would keep crashed instances forever.
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "plain"}); err != nil {
		t.Fatalf("CreateKeyValue(plain) = %v", err)
	}
	r, err := natsreg.New(ctx, js, natsreg.WithBucket("plain"))
	if errs.CodeOf(err) != errs.FailedPrecondition || !strings.Contains(err.Error(), "plain") {
		t.Errorf("New(bucket without TTL) = %v, %v, want a %v error naming the bucket", r, err, errs.FailedPrecondition)
	}
}

func TestRegisterAfterClose(t *testing.T) {
	ctx := testCtx(t)
	s := ferrytest.NATS(t)
	_, js := jetStream(t, s.ClientURL())
	r := newRegistry(t, js)
	in := registry.Instance{ID: "i1", Service: "svc"}
	if err := r.Register(ctx, in); err != nil {
		t.Fatalf("Register = %v, want nil", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if err := r.Register(ctx, in); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Errorf("Register after Close = %v, want a %v error", err, errs.FailedPrecondition)
	}
	// Close deletes nothing; Deregister still works.
	if got, err := r.Lookup(ctx, "svc"); err != nil || len(got) != 1 {
		t.Errorf("Lookup(svc) after Close = %v, %v, want the instance still there", got, err)
	}
	if err := r.Deregister(ctx, in); err != nil {
		t.Errorf("Deregister after Close = %v, want nil", err)
	}
	if got, err := r.Lookup(ctx, "svc"); err != nil || len(got) != 0 {
		t.Errorf("Lookup(svc) after Deregister = %v, %v, want []", got, err)
	}
}

func TestForeignValuesIgnored(t *testing.T) {
	ctx := testCtx(t)
	s := ferrytest.NATS(t)
	_, js := jetStream(t, s.ClientURL())
	r := newRegistry(t, js)
	good := registry.Instance{ID: "good", Service: "svc"}
	if err := r.Register(ctx, good); err != nil {
		t.Fatalf("Register = %v, want nil", err)
	}
	kv, err := js.KeyValue(ctx, natsreg.DefaultBucket)
	if err != nil {
		t.Fatalf("KeyValue = %v", err)
	}
	w, err := r.Watch(ctx, "svc")
	if err != nil {
		t.Fatalf("Watch = %v", err)
	}
	defer w.Stop()
	if got, err := w.Next(ctx); err != nil || len(got) != 1 {
		t.Fatalf("first Next = %v, %v, want [good]", got, err)
	}
	for key, val := range map[string]string{
		"svc.garbage":  "{not json",
		"svc.mismatch": `{"id":"other","service":"svc"}`,
		"svc.invalid":  `{"id":"invalid","service":"svc","endpoints":[{"transport":"http"}]}`,
	} {
		if _, err := kv.PutString(ctx, key, val); err != nil {
			t.Fatalf("Put(%s) = %v", key, err)
		}
	}
	// A valid change after the foreign values is seen, the foreign ones are not.
	good2 := registry.Instance{ID: "good2", Service: "svc"}
	if err := r.Register(ctx, good2); err != nil {
		t.Fatalf("Register = %v, want nil", err)
	}
	got, err := w.Next(ctx)
	if err != nil || len(got) != 2 || got[0].ID != "good" || got[1].ID != "good2" {
		t.Errorf("Next after foreign puts = %v, %v, want [good good2]", got, err)
	}
	got, err = r.Lookup(ctx, "svc")
	if err != nil || len(got) != 2 {
		t.Errorf("Lookup(svc) with foreign values = %v, %v, want [good good2]", got, err)
	}
}

// TestWatchAcrossServerRestart drops the connection under a watcher, of
// one service (Watch) or of every service (WatchAll): Next reports it, then
// resumes once the server is back.
func TestWatchAcrossServerRestart(t *testing.T) {
	t.Run("Watch", func(t *testing.T) {
		testWatchAcrossServerRestart(t, func(ctx context.Context, r *natsreg.Registry) (registry.Watcher, error) {
			return r.Watch(ctx, "svc")
		})
	})
	t.Run("WatchAll", func(t *testing.T) {
		testWatchAcrossServerRestart(t, func(ctx context.Context, r *natsreg.Registry) (registry.Watcher, error) {
			return r.WatchAll(ctx)
		})
	})
}

func testWatchAcrossServerRestart(t *testing.T, watch func(context.Context, *natsreg.Registry) (registry.Watcher, error)) {
	ctx := testCtx(t)
	dir := t.TempDir()
	s, err := natsembed.Start(ctx, natsembed.Options{JetStream: true, StoreDir: dir})
	if err != nil {
		t.Fatalf("natsembed.Start = %v", err)
	}
	t.Cleanup(s.Shutdown)
	port := s.Addr().(*net.TCPAddr).Port
	_, js := jetStream(t, s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	r := newRegistry(t, js, natsreg.WithTTL(5*time.Second))
	i1 := registry.Instance{ID: "i1", Service: "svc"}
	if err := r.Register(ctx, i1); err != nil {
		t.Fatalf("Register(i1) = %v, want nil", err)
	}
	w, err := watch(ctx, r)
	if err != nil {
		t.Fatalf("watch = %v", err)
	}
	defer w.Stop()
	if got, err := w.Next(ctx); err != nil || len(got) != 1 {
		t.Fatalf("first Next = %v, %v, want [i1]", got, err)
	}

	s.Shutdown()
	_, err = w.Next(ctx)
	if errs.CodeOf(err) != errs.Unavailable || !errors.Is(err, nats.ErrDisconnected) {
		t.Fatalf("Next after the server stopped = %v, want an %v error wrapping %v", err, errs.Unavailable, nats.ErrDisconnected)
	}

	s2, err := natsembed.Start(ctx, natsembed.Options{JetStream: true, StoreDir: dir, Port: port})
	if err != nil {
		t.Fatalf("natsembed.Start(again on port %d) = %v", port, err)
	}
	t.Cleanup(s2.Shutdown)
	i2 := registry.Instance{ID: "i2", Service: "svc"}
	for {
		err := r.Register(ctx, i2)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("Register(i2) after restart = %v, want nil", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		got, err := w.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("Next after restart = %v, want [i1 i2]", err)
			}
			continue
		}
		if len(got) == 2 && got[0].ID == "i1" && got[1].ID == "i2" {
			break
		}
	}
}

// Lookup never misses a live instance whose heartbeat replaces its entry
// while Lookup reads: with a KV watch's first snapshot it could (the old
// message gone, the new one after the snapshot's end); 300 Lookups during
// heartbeats every 5ms find both instances every time.
func TestLookupDuringHeartbeats(t *testing.T) {
	s := ferrytest.NATS(t)
	_, js := jetStream(t, s.ClientURL())
	r := newRegistry(t, js, natsreg.WithTTL(2*time.Second), natsreg.WithHeartbeat(5*time.Millisecond))
	ctx := testCtx(t)
	for _, id := range []string{"a", "b"} {
		in := registry.Instance{ID: id, Service: "beat", Endpoints: []registry.Endpoint{{Transport: "http", Address: "http://10.0.0.1:80"}}}
		if err := r.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	misses := 0
	for range 300 {
		ins, err := r.Lookup(ctx, "beat")
		if err != nil {
			t.Fatal(err)
		}
		if len(ins) != 2 {
			misses++
		}
	}
	if misses > 0 {
		t.Errorf("%d of 300 Lookups missed a live instance", misses)
	}
}
