package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/ferrytest"
)

// protoClient calls the echo service with the code protoc-gen-go and
// protoc-gen-go-grpc generate from the exported .proto: a unary call whose
// every field must come back as sent, a server stream and a bidi stream.
const protoClient = `package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	pb "github.com/ferry-go/ferry/cmd/ferry/testdata/DIR/echopb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func main() {
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	c := pb.NewEchoClient(cc)

	hello, err := c.Hello(ctx, &pb.HelloRequest{Name: "Ada"})
	if err != nil {
		return fmt.Errorf("Hello: %w", err)
	}
	fmt.Println("unary:", hello.GetMessage())

	req := &pb.EchoRequest{
		Name: "Ada", Count: -1 << 40, Ratio: 0.5, Tags: []string{"a", "b"},
		Labels: map[string]int32{"x": 1}, At: timestamppb.New(time.Unix(1700000000, 5).UTC()),
		Blob: []byte{0, 1, 2}, Inner: &pb.Inner{N: 7, Note: "in"}, Opt: proto.Int32(0),
		Next: &pb.Inner{N: -1}, Flags: map[string]string{"k": "v"}, Ok: true, Unit: 1 << 63, UserId: "u1",
	}
	back, err := c.Echo(ctx, req)
	if err != nil {
		return fmt.Errorf("Echo: %w", err)
	}
	if !proto.Equal(req, back) {
		return fmt.Errorf("Echo returned %v, want %v", back, req)
	}
	fmt.Println("echo: equal, opt set:", back.Opt != nil)

	st, err := c.Greetings(ctx, &pb.HelloRequest{Name: "Bo"})
	if err != nil {
		return fmt.Errorf("Greetings: %w", err)
	}
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("Greetings: %w", err)
		}
		fmt.Println("stream:", m.GetMessage())
	}

	chat, err := c.Chat(ctx)
	if err != nil {
		return fmt.Errorf("Chat: %w", err)
	}
	for _, name := range []string{"Cy", "Di"} {
		if err := chat.Send(&pb.HelloRequest{Name: name}); err != nil {
			return fmt.Errorf("Chat send: %w", err)
		}
		m, err := chat.Recv()
		if err != nil {
			return fmt.Errorf("Chat: %w", err)
		}
		fmt.Println("bidi:", m.GetMessage())
	}
	if err := chat.CloseSend(); err != nil {
		return err
	}
	if _, err := chat.Recv(); err != io.EOF {
		return fmt.Errorf("Chat end = %v, want EOF", err)
	}
	return nil
}
`

// TestProtoExportCompilesAndCalls is the proof that the exported .proto is
// usable: protoc with protoc-gen-go and protoc-gen-go-grpc (built from the
// module's own dependencies, not Debian's) compiles the file ferry proto
// export writes, and a Go client built from the generated code calls the
// running Ferry service, unary and streams.
func TestProtoExportCompilesAndCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("builds protoc plug-ins and a client")
	}
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("no protoc in PATH: run scripts/install-protoc (Debian's protobuf-compiler)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	ctx := ferrytest.Context(t)
	root := repoRoot(t)
	work := t.TempDir()
	run := func(dir, name string, args ...string) string {
		t.Helper()
		start := time.Now()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "PATH="+filepath.Join(work, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		t.Logf("%s %s: %v", filepath.Base(name), args[0], time.Since(start).Round(time.Millisecond))
		return string(out)
	}

	s := startService(t, false)
	protoDir := filepath.Join(work, "proto")
	ferryCmd(t, "proto", "export", "echo", "--addr", s.grpcAddr, "--out", protoDir).want(t, exitOK)

	// The plug-ins, in one go build: protoc-gen-go from google.golang.org/protobuf,
	// protoc-gen-go-grpc from the tool the module requires.
	if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	build := append([]string{"build"}, ferrytest.BuildFlags...)
	run(root, goBin, append(build, "-o", filepath.Join(work, "bin")+string(os.PathSeparator),
		"google.golang.org/protobuf/cmd/protoc-gen-go", "google.golang.org/grpc/cmd/protoc-gen-go-grpc")...)

	// The client is a package of this module, so it builds offline from the
	// module's go.sum and shares the build cache; testdata keeps it out of
	// ./... and the directory is removed at the end.
	if err := os.MkdirAll(filepath.Join(root, "cmd", "ferry", "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	clientDir, err := os.MkdirTemp(filepath.Join(root, "cmd", "ferry", "testdata"), "protoclient-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(clientDir)
		os.Remove(filepath.Dir(clientDir)) // only if empty
	})
	pkg := "github.com/ferry-go/ferry/cmd/ferry/testdata/" + filepath.Base(clientDir) + "/echopb"
	const module = "github.com/ferry-go/ferry"
	run(root, protoc, "-I", protoDir,
		"--go_out="+root, "--go_opt=module="+module, "--go_opt=Mferry/echo.proto="+pkg,
		"--go-grpc_out="+root, "--go-grpc_opt=module="+module, "--go-grpc_opt=Mferry/echo.proto="+pkg,
		"ferry/echo.proto")
	src := strings.ReplaceAll(protoClient, "DIR", filepath.Base(clientDir))
	if err := os.WriteFile(filepath.Join(clientDir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(work, "client")
	run(root, goBin, append(build, "-o", bin, "./cmd/ferry/testdata/"+filepath.Base(clientDir))...)

	got := run(work, bin, s.grpcAddr)
	want := `unary: Hello, Ada!
echo: equal, opt set: true
stream: Hello, B!
stream: Hello, o!
bidi: Hello, Cy!
bidi: Hello, Di!
`
	if got != want {
		t.Errorf("generated client printed\n%s\nwant\n%s", got, want)
	}
}
