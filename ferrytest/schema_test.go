package ferrytest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/server"
)

// The versions of the shop service: v1 is locked in testdata/shop.lock.json
// (FERRY_UPDATE_SCHEMA=1 go test -run TestSchemaLockCommitted ./ferrytest
// rewrites it).

type Reply struct {
	OK bool `json:"ok"`
}

func shop[Req any]() *server.Server {
	s := server.New("shop")
	server.Handle(s, "Order", func(context.Context, *Req) (*Reply, error) { return &Reply{}, nil })
	return s
}

func shopV1() *server.Server {
	type Req struct {
		Name string `json:"name"`
		Qty  int32  `json:"qty"`
		Note string `json:"note"`
	}
	return shop[Req]()
}

func shopReordered() *server.Server {
	type Req struct {
		Qty  int32  `json:"qty"` // moved up: now number 1
		Name string `json:"name"`
		Note string `json:"note"`
	}
	return shop[Req]()
}

func shopRetyped() *server.Server {
	type Req struct {
		Name string `json:"name"`
		Qty  string `json:"qty"`
		Note string `json:"note"`
	}
	return shop[Req]()
}

func shopReused() *server.Server {
	type Req struct {
		Name string `json:"name"`
		Qty  int32  `json:"qty"`
		Rush bool   `json:"rush"` // where note was
	}
	return shop[Req]()
}

func shopAdded() *server.Server {
	type Req struct {
		Name  string   `json:"name"`
		Qty   int32    `json:"qty"`
		Note  string   `json:"note"`
		Extra []string `json:"extra"`
	}
	s := shop[Req]()
	server.Handle(s, "Ping", func(context.Context, *Reply) (*Reply, error) { return &Reply{}, nil })
	return s
}

// tb records what SchemaLock reports instead of failing the test.
type tb struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	logs   []string
	fatal  bool
}

func (r *tb) Helper() {}

func (r *tb) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *tb) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *tb) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.fatal = true
	runtime.Goexit()
}

// schemaLock runs ferrytest.SchemaLock on a recorder, in a goroutine of its
// own so that Fatalf can end it.
func schemaLock(t *testing.T, srv *server.Server, path string) *tb {
	r := &tb{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ferrytest.SchemaLock(r, srv, path)
	}()
	<-done
	return r
}

func TestSchemaLockCommitted(t *testing.T) {
	// The committed lock of v1 passes, with nothing to report.
	if cs := ferrytest.SchemaLock(t, shopV1(), "testdata/shop.lock.json"); len(cs) != 0 {
		t.Errorf("SchemaLock(v1) changes = %v, want none", cs)
	}
}

func TestSchemaLockCatches(t *testing.T) {
	const lock = "testdata/shop.lock.json"
	for _, tc := range []struct {
		name   string
		srv    *server.Server
		errors []string
	}{
		{"reordered", shopReordered(), []string{
			"ferrytest: schema lock testdata/shop.lock.json: field name of message shop.Req changed number 1 → 2",
			"ferrytest: schema lock testdata/shop.lock.json: field qty of message shop.Req changed number 2 → 1",
		}},
		{"retyped", shopRetyped(), []string{
			"ferrytest: schema lock testdata/shop.lock.json: field qty of message shop.Req changed type int32 → string",
		}},
		{"reused", shopReused(), []string{
			"ferrytest: schema lock testdata/shop.lock.json: field number 3 of message shop.Req reused: was string note, now bool rush",
		}},
		{"added", shopAdded(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := schemaLock(t, tc.srv, lock)
			if got, want := strings.Join(r.errors, "\n"), strings.Join(tc.errors, "\n"); got != want {
				t.Errorf("SchemaLock(%s) errors:\n%s\nwant:\n%s", tc.name, got, want)
			}
			if tc.name == "added" {
				logs := strings.Join(r.logs, "\n")
				for _, w := range []string{"method shop.Shop.Ping added", "field repeated string extra = 4 added to message shop.Req"} {
					if !strings.Contains(logs, w) {
						t.Errorf("SchemaLock(added) logs:\n%s\nwant %q", logs, w)
					}
				}
			}
		})
	}
}

func TestSchemaLockUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api", "shop.lock.json")
	r := schemaLock(t, shopV1(), path)
	if !r.fatal || !strings.Contains(strings.Join(r.errors, ""), "no schema lock "+path+": run the test with FERRY_UPDATE_SCHEMA=1 to write it") {
		t.Errorf("SchemaLock(no lock) = %v, want a fatal error saying how to write it", r.errors)
	}

	t.Setenv(ferrytest.UpdateSchemaEnv, "1")
	if r := schemaLock(t, shopReordered(), path); len(r.errors) != 0 {
		t.Fatalf("SchemaLock(update) errors = %v", r.errors)
	}
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(ferrytest.UpdateSchemaEnv, "")
	if r := schemaLock(t, shopReordered(), path); len(r.errors) != 0 {
		t.Errorf("SchemaLock(reordered against its own lock) errors = %v", r.errors)
	}
	if r := schemaLock(t, shopV1(), path); len(r.errors) != 2 {
		t.Errorf("SchemaLock(v1 against the reordered lock) errors = %v, want 2", r.errors)
	}
	committed, err := os.ReadFile("testdata/shop.lock.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(written) == string(committed) {
		t.Error("the lock of the reordered service is the committed lock of v1")
	}
}
