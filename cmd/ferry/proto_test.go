package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/server"
	fgrpc "github.com/ferry-go/ferry/transport/grpc"
)

// echoServer is the echo service of startService, not started: what the
// running one serves, computed without it.
func echoServer() *server.Server {
	srv := server.New("echo", server.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	server.Handle(srv, "Echo", echo)
	server.Handle(srv, "Hello", hello)
	server.Handle(srv, "Slow", slow)
	server.HandleServerStream(srv, "Greetings", greetings)
	server.HandleBidiStream(srv, "Chat", chat)
	return srv
}

func TestProtoExport(t *testing.T) {
	s := startService(t, false)
	path, want, err := fgrpc.ProtoFile(echoServer())
	if err != nil {
		t.Fatalf("ProtoFile() error = %v", err)
	}
	if path != "ferry/echo.proto" {
		t.Errorf("ProtoFile() path = %q", path)
	}

	// The running service's file, read through reflection, is the one
	// ProtoFile prints without a server.
	r := ferryCmd(t, "proto", "export", "echo", "--addr", s.grpcAddr)
	r.want(t, exitOK)
	if r.stdout != string(want) {
		t.Errorf("ferry proto export = \n%s\nwant ProtoFile() =\n%s", r.stdout, want)
	}
	for _, w := range []string{
		"syntax = \"proto3\";\n\npackage echo;\n\nimport \"google/protobuf/timestamp.proto\";\n",
		"  optional int32 opt = 9;\n",
		"  map<string, int32> labels = 5;\n",
		"  string user_id = 14 [json_name = \"UserID\"];\n",
		"service Echo {\n  rpc Echo(EchoRequest) returns (EchoRequest);\n",
		"  rpc Greetings(HelloRequest) returns (stream HelloReply);\n",
		"  rpc Chat(stream HelloRequest) returns (stream HelloReply);\n",
	} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("ferry proto export = \n%s\nwant it to contain %q", r.stdout, w)
		}
	}

	// --all: the imports follow, each after its path.
	r = ferryCmd(t, "proto", "export", "echo", "--addr", s.grpcAddr, "--all")
	r.want(t, exitOK)
	if !strings.HasPrefix(r.stdout, "// ==> ferry/echo.proto <==\n"+string(want)) ||
		!strings.Contains(r.stdout, "\n\n// ==> google/protobuf/timestamp.proto <==\nsyntax = \"proto3\";\n\npackage google.protobuf;\n") {
		t.Errorf("ferry proto export --all = \n%s", r.stdout)
	}

	// --out: every file at its path.
	dir := t.TempDir()
	r = ferryCmd(t, "proto", "export", "echo", "--addr", s.grpcAddr, "--out", dir)
	r.want(t, exitOK)
	wantPaths := filepath.Join(dir, "ferry", "echo.proto") + "\n" + filepath.Join(dir, "google", "protobuf", "timestamp.proto") + "\n"
	if r.stdout != wantPaths {
		t.Errorf("ferry proto export --out stdout = %q, want %q", r.stdout, wantPaths)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "ferry", "echo.proto")); err != nil || string(b) != string(want) {
		t.Errorf("written ferry/echo.proto = %q, %v; want ProtoFile()", b, err)
	}

	// A fully qualified gRPC service name works too.
	ferryCmd(t, "proto", "export", "grpc.health.v1.Health", "--addr", s.grpcAddr).want(t, exitOK)

	ferryCmd(t, "proto", "export", "echo").want(t, exitUsage, "missing --addr host:port")
	ferryCmd(t, "proto", "export", "echo", "--addr", "http://"+s.grpcAddr).want(t, exitUsage, "without a scheme")
	ferryCmd(t, "proto", "export", "echo", "--addr", s.grpcAddr, "--all", "--out", dir).want(t, exitUsage)
	ferryCmd(t, "proto", "export", "nope", "--addr", s.grpcAddr).want(t, exitFailure, "not_found: no gRPC service nope.Nope on this server")
	ferryCmd(t, "proto", "export", "echo", "--addr", closedAddr(t), "--timeout", "300ms").want(t, exitFailure, "gRPC "+"127.0.0.1:")
	ferryCmd(t, "proto").want(t, exitUsage, "missing subcommand")
}

// lockOf writes the lock file of srv's schema to a temporary file.
func lockOf(t *testing.T, srv *server.Server) string {
	t.Helper()
	fd, err := fgrpc.FileDescriptor(srv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := protostruct.MarshalLock(fd)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "echo.lock.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// echoBefore is an earlier echo service whose HelloRequest had a field
// before name, and no Chat method.
func echoBefore() *server.Server {
	type HelloRequest struct {
		Extra string `json:"extra"`
		Name  string `json:"name"`
	}
	old := server.New("echo")
	server.Handle(old, "Hello", func(context.Context, *HelloRequest) (*HelloReply, error) { return nil, nil })
	server.Handle(old, "Echo", echo)
	server.Handle(old, "Slow", func(context.Context, *HelloRequest) (*HelloReply, error) { return nil, nil })
	server.HandleServerStream(old, "Greetings", func(context.Context, *HelloRequest, server.Sender[HelloReply]) error { return nil })
	return old
}

func TestSchemaLockCheck(t *testing.T) {
	s := startService(t, false)
	dir := t.TempDir()
	lock := filepath.Join(dir, "api", "echo.lock.json")

	ferryCmd(t, "schema", "check", "echo", "--addr", s.grpcAddr, "--lock", lock).want(t, exitFailure,
		"not_found: no lock file "+lock+": write it with ferry schema lock echo")
	r := ferryCmd(t, "schema", "lock", "echo", "--addr", s.grpcAddr, "--lock", lock)
	r.want(t, exitOK)
	if want := "wrote " + lock + " (ferry/echo.proto and 1 imported files)\n"; r.stdout != want {
		t.Errorf("ferry schema lock stdout = %q, want %q", r.stdout, want)
	}
	// The lock is what the Go API writes for the same service.
	if b, err := os.ReadFile(lock); err != nil || string(b) != readFile(t, lockOf(t, echoServer())) {
		t.Errorf("ferry schema lock wrote %q, %v; want MarshalLock(FileDescriptor(echo))", b, err)
	}
	r = ferryCmd(t, "schema", "check", "echo", "--addr", s.grpcAddr, "--lock", lock)
	r.want(t, exitOK)
	if want := "compatible with " + lock + " (0 changes)\n"; r.stdout != want {
		t.Errorf("ferry schema check stdout = %q, want %q", r.stdout, want)
	}

	// Against the lock of an earlier version: name was field 2.
	r = ferryCmd(t, "schema", "check", "echo", "--addr", s.grpcAddr, "--lock", lockOf(t, echoBefore()))
	r.want(t, exitFailure,
		"failed_precondition: 2 wire-incompatible changes from the lock ",
		"  echo.HelloRequest.name: field name of message echo.HelloRequest changed number 2 → 1\n",
		"  echo.HelloRequest.name: field number 1 of message echo.HelloRequest reused: was string extra, now string name\n",
	)
	if want := "compatible: method echo.Echo.Chat added: rpc Chat(stream echo.HelloRequest) returns (stream echo.HelloReply)\n"; r.stdout != want {
		t.Errorf("ferry schema check stdout = %q, want %q", r.stdout, want)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"file": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ferryCmd(t, "schema", "check", "echo", "--addr", s.grpcAddr, "--lock", bad).want(t, exitFailure, "invalid_argument: protostruct: not a lock file")
	ferryCmd(t, "schema", "lock", "echo").want(t, exitUsage, "missing --addr")
	ferryCmd(t, "schema").want(t, exitUsage, "missing subcommand")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
