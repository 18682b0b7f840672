package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/cmd/ferry/internal/scaffold"
)

// TestNewRefuses checks the refusals of ferry new: their exit codes and
// messages, and that nothing is written.
func TestNewRefuses(t *testing.T) {
	base := t.TempDir()
	full := filepath.Join(base, "full")
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(base, "fresh")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"name starts with a digit", []string{"new", "9lives", "--dir", fresh}, exitUsage, `invalid service name "9lives": a service name starts with a letter, followed by letters, digits, '-' or '_'`},
		{"name with a dot", []string{"new", "my.svc", "--dir", fresh}, exitUsage, `invalid service name "my.svc"`},
		{"name with a space", []string{"new", "my svc", "--dir", fresh}, exitUsage, `invalid service name "my svc"`},
		{"unknown broker", []string{"new", "demo", "--dir", fresh, "--broker", "redis"}, exitUsage, `invalid --broker "redis": want kafka or rabbitmq`},
		{"unknown registry", []string{"new", "demo", "--dir", fresh, "--registry", "consul"}, exitUsage, `invalid --registry "consul": want etcd`},
		{"name starts with a dash", []string{"new", "--dir", fresh, "--", "-x"}, exitUsage, `invalid service name "-x"`},
		{"module with a space", []string{"new", "demo", "--dir", fresh, "--module", "example.com/my svc"}, exitUsage, `invalid module path "example.com/my svc": element "my svc": invalid character ' '`},
		{"module with a double slash", []string{"new", "demo", "--dir", fresh, "--module", "example.com//demo"}, exitUsage, `invalid module path "example.com//demo": double slash`},
		{"bad ferry version", []string{"new", "demo", "--dir", fresh, "--ferry-version", "latest"}, exitUsage, `invalid --ferry-version "latest"`},
		{"no name", []string{"new"}, exitUsage, "missing <name>"},
		{"non-empty directory", []string{"new", "demo", "--dir", full, "--no-tidy"}, exitFailure, full + ": directory exists and is not empty; choose another name or --dir, or pass --update"},
		{"update of a directory ferry new did not create", []string{"new", "demo", "--dir", full, "--update", "--no-tidy"}, exitFailure, full + " is not empty and was not created by ferry new (no .ferry-scaffold.json); refusing to write into it"},
		{"a file", []string{"new", "demo", "--dir", file, "--no-tidy"}, exitFailure, file + " exists and is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ferryCmd(t, tt.args...)
			r.want(t, tt.code, "ferry new: "+tt.msg)
			if _, err := os.Stat(fresh); err == nil {
				t.Fatalf("%v created %s", tt.args, fresh)
			}
		})
	}
	if ents, _ := os.ReadDir(full); len(ents) != 1 {
		t.Errorf("the refused directory holds %d entries, want only the user's file", len(ents))
	}
}

// TestNewUpdate creates a project and regenerates it after the user edited
// some of it, through the command line.
func TestNewUpdate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	r := ferryCmd(t, "new", "demo", "--dir", dir, "--no-tidy", "--ferry-version", "v0.9.0")
	r.want(t, exitOK)
	for _, path := range []string{"go.mod", "main.go", "service.go", "service_test.go", "ferry.yaml", "Makefile", "Dockerfile", "k8s/deployment.yaml", "k8s/service.yaml", "README.md"} {
		line := `(?m)^created\s+` + regexp.QuoteMeta(filepath.Join(dir, filepath.FromSlash(path))) + `$`
		if !regexp.MustCompile(line).MatchString(r.stdout) {
			t.Errorf("ferry new output =\n%s\nwant a line matching %s", r.stdout, line)
		}
	}
	if !strings.Contains(r.stdout, "ferry call demo Hello") {
		t.Errorf("ferry new output =\n%s\nwant next steps", r.stdout)
	}
	if gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod")); !strings.Contains(string(gomod), "require github.com/ferry-go/ferry v0.9.0") {
		t.Errorf("go.mod =\n%s\nwant the --ferry-version", gomod)
	}

	makefile := filepath.Join(dir, "Makefile")
	b, _ := os.ReadFile(makefile)
	if err := os.WriteFile(makefile, append(b, "\nlint:\n\tgo vet ./...\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	ferryCmd(t, "new", "demo", "--dir", dir, "--no-tidy").want(t, exitFailure, "directory exists and is not empty")
	r = ferryCmd(t, "new", "demo", "--dir", dir, "--no-tidy", "--update")
	r.want(t, exitOK)
	for _, line := range []string{
		`(?m)^kept\s+` + regexp.QuoteMeta(makefile) + ` \(edited since ferry new wrote it\)$`,
		`(?m)^unchanged\s+` + regexp.QuoteMeta(filepath.Join(dir, "main.go")) + `$`,
		`(?m)^kept\s+` + regexp.QuoteMeta(filepath.Join(dir, "service.go")) + ` \(yours: no generated-file marker\)$`,
	} {
		if !regexp.MustCompile(line).MatchString(r.stdout) {
			t.Errorf("ferry new --update output =\n%s\nwant a line matching %s", r.stdout, line)
		}
	}
	if b, _ := os.ReadFile(makefile); !strings.Contains(string(b), "lint:") {
		t.Errorf("ferry new --update lost the user's Makefile edit")
	}
	ferryCmd(t, "new", "other", "--dir", dir, "--no-tidy", "--update").want(t, exitFailure, `was created for service "demo", not "other"`)
}

// TestHelp checks that every command documents itself, and that version
// and completion work.
func TestHelp(t *testing.T) {
	root := newRootCmd(new(strings.Builder), new(strings.Builder))
	for _, c := range root.Commands() {
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("command %q: Short, Long or Example is empty", c.Name())
		}
	}
	for _, args := range [][]string{{"--help"}, {"new", "--help"}, {"call", "--help"}, {"services", "--help"}, {"describe", "--help"}} {
		r := ferryCmd(t, args...)
		r.want(t, exitOK)
		if !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("ferry %v =\n%s\nwant usage and examples", args, r.stdout)
		}
	}
	if r := ferryCmd(t, "new", "--help"); !strings.Contains(r.stdout, scaffold.Marker) {
		t.Errorf("ferry new --help does not state the regeneration rule:\n%s", r.stdout)
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := ferryCmd(t, args...)
		r.want(t, exitOK)
		if !strings.HasPrefix(r.stdout, "ferry ") || !strings.Contains(r.stdout, runtime.Version()) {
			t.Errorf("ferry %v = %q, want the ferry and Go versions", args, r.stdout)
		}
		// A test binary is a development build: it names its source's release.
		if !strings.Contains(r.stdout, "\nsource "+ferry.Version+"\n") {
			t.Errorf("ferry %v = %q, want the source's release %s", args, r.stdout, ferry.Version)
		}
	}
	ferryCmd(t, "version", "extra").want(t, exitUsage, `ferry version: takes no arguments, got ["extra"]`)
	r := ferryCmd(t, "completion", "bash")
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "bash completion") {
		t.Errorf("ferry completion bash = %.200q..., want a bash completion script", r.stdout)
	}
	r = ferryCmd(t, "__complete", "call", "s", "E", "--transport", "")
	if !strings.Contains(r.stdout, "http\ngrpc\nnats\n") {
		t.Errorf("completion of --transport = %q, want http, grpc and nats", r.stdout)
	}
}

// TestNewDefaultsToTheCheckout: run from inside a Ferry checkout (as this
// test is), ferry new builds the project against that checkout; with
// --ferry-version it requires the release instead.
func TestNewDefaultsToTheCheckout(t *testing.T) {
	root := repoRoot(t)
	dir := filepath.Join(t.TempDir(), "demo")
	r := ferryCmd(t, "new", "demo", "--dir", dir, "--no-tidy")
	r.want(t, exitOK, "go.mod replaces github.com/ferry-go/ferry with the checkout at "+root+" (the working directory is inside it)")
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(gomod), "replace github.com/ferry-go/ferry => "+root+"\n") {
		t.Errorf("go.mod =\n%s\nwant a replace directive to %s", gomod, root)
	}

	dir = filepath.Join(t.TempDir(), "demo")
	r = ferryCmd(t, "new", "demo", "--dir", dir, "--no-tidy", "--ferry-version", "v0.1.0")
	r.want(t, exitOK)
	if strings.Contains(r.stderr, "replaces") {
		t.Errorf("with --ferry-version: stderr = %q, want no replace", r.stderr)
	}
	gomod, _ = os.ReadFile(filepath.Join(dir, "go.mod"))
	if strings.Contains(string(gomod), "replace") || !strings.Contains(string(gomod), "require github.com/ferry-go/ferry v0.1.0") {
		t.Errorf("go.mod with --ferry-version =\n%s\nwant a require of v0.1.0 and no replace", gomod)
	}
}

// TestNewTidyFailureSaysWhatToDo: when Ferry cannot be downloaded (no
// module proxy here), the error says how to build against a checkout.
func TestNewTidyFailureSaysWhatToDo(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command in PATH")
	}
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	dir := filepath.Join(t.TempDir(), "demo")
	ferryCmd(t, "new", "demo", "--dir", dir, "--ferry-version", "v0.0.1").want(t, exitFailure,
		"'go mod tidy' in "+dir+" failed",
		"cd "+dir+" && go mod edit -replace github.com/ferry-go/ferry=<path to the checkout> && go mod tidy")
}

func TestFerryCheckout(t *testing.T) {
	root := repoRoot(t)
	if got, ok := ferryCheckout(filepath.Join(root, "cmd", "ferry", "internal")); !ok || got != root {
		t.Errorf("ferryCheckout(inside the checkout) = %q, %v, want %q", got, ok, root)
	}
	// A module of its own inside a checkout is not the checkout.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/demo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, ok := ferryCheckout(filepath.Join(other)); ok {
		t.Errorf("ferryCheckout(another module) = %q, want none", got)
	}
	if got, ok := ferryCheckout(string(filepath.Separator)); ok {
		t.Errorf("ferryCheckout(/) = %q, want none", got)
	}
}
