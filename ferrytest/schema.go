package ferrytest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/server"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
)

// UpdateSchemaEnv is the environment variable that makes SchemaLock write
// the lock file instead of checking it: FERRY_UPDATE_SCHEMA=1 go test ./...
const UpdateSchemaEnv = "FERRY_UPDATE_SCHEMA"

// SchemaLock guards srv's wire schema in a test, with no server running:
// it compares the schema the gRPC transport would serve for srv
// (transport/grpc's FileDescriptor) with the lock file at path (as ferry
// schema lock writes it; see codec/protostruct's MarshalLock) and fails the
// test with one error per breaking change — a field renumbered by
// reordering struct fields, retyped, reused or removed without reserving
// its number, a method removed — naming the message and field.
// Compatible changes (additions) are logged and pass.
//
// With FERRY_UPDATE_SCHEMA set to a non-empty value it writes the lock file
// instead (creating its directory), for a change that is meant to be; a
// missing lock file fails the test, saying so. It returns the changes found.
//
//	func TestSchema(t *testing.T) {
//		ferrytest.SchemaLock(t, newServer(), "testdata/greeter.lock.json")
//	}
func SchemaLock(t testing.TB, srv *server.Server, path string) []protostruct.Change {
	t.Helper()
	fd, err := fgrpc.FileDescriptor(srv)
	if err != nil {
		t.Fatalf("ferrytest: schema of %s: %v", srv.Name(), err)
	}
	if os.Getenv(UpdateSchemaEnv) != "" {
		b, err := protostruct.MarshalLock(fd)
		if err != nil {
			t.Fatalf("ferrytest: %v", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("ferrytest: %v", err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatalf("ferrytest: %v", err)
		}
		t.Logf("ferrytest: wrote the schema lock %s (%s set)", path, UpdateSchemaEnv)
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ferrytest: no schema lock %s: run the test with %s=1 to write it, and commit it", path, UpdateSchemaEnv)
	}
	if err != nil {
		t.Fatalf("ferrytest: %v", err)
	}
	locked, err := protostruct.UnmarshalLock(b)
	if err != nil {
		t.Fatalf("ferrytest: schema lock %s: %v", path, err)
	}
	changes := protostruct.Compare(locked, fd)
	for _, c := range changes {
		if c.Breaking {
			t.Errorf("ferrytest: schema lock %s: %s", path, c.Message)
		} else {
			t.Logf("ferrytest: schema lock %s: %s (compatible; %s=1 updates the lock)", path, c.Message, UpdateSchemaEnv)
		}
	}
	return changes
}
