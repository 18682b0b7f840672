package workspace_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/dev/workspace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		superviseForever(dir) // TestPdeathsig's supervisor
		return
	}
	goleak.VerifyTestMain(m)
}

// writeFiles writes files (path → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// module writes a module example.com/ws with files into a new directory.
func module(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"go.mod": "module example.com/ws\n\ngo 1.26\n"})
	writeFiles(t, dir, files)
	return dir
}

const hello = "package main\n\nfunc main() { println(\"hello\") }\n"

func names(ws *workspace.Workspace) []string {
	var out []string
	for _, s := range ws.Services {
		out = append(out, s.Name)
	}
	return out
}

func TestDiscover(t *testing.T) {
	dir := module(t, map[string]string{
		"cmd/api/main.go":            hello,
		"cmd/worker/main.go":         hello,
		"lib/lib.go":                 "package lib\n",
		"x/srv/main.go":              hello,
		"y/srv/main.go":              hello,
		"testdata/fixture/main.go":   hello,
		"_skip/main.go":              hello,
		".hidden/main.go":            hello,
		"gen/main.go":                "//go:build ignore\n\n" + hello,
		"tools/main_test.go":         "package main\n",
		"nested/go.mod":              "module example.com/nested\n\ngo 1.26\n",
		"nested/cmd/inner/main.go":   hello,
		"nested/testdata/x/main.go":  hello,
		"nested/_skip/other/main.go": hello,
	})
	ws, err := workspace.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"api", "worker", "inner", "x-srv", "y-srv"}
	if got := names(ws); !slices.Equal(got, want) {
		t.Errorf("Load(dir) names = %q, want %q", got, want)
	}
	if ws.File != "" {
		t.Errorf("File = %q, want empty for a discovered workspace", ws.File)
	}
	if ws.Dir != dir {
		t.Errorf("Dir = %q, want %q", ws.Dir, dir)
	}
	for _, s := range ws.Services {
		if s.Name == "inner" && s.Dir != filepath.Join(dir, "nested", "cmd", "inner") {
			t.Errorf("inner Dir = %q", s.Dir)
		}
	}
}

func TestDiscoverOutsideModule(t *testing.T) {
	// A directory in no module holding two modules.
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a/go.mod":  "module example.com/a\n\ngo 1.26\n",
		"a/main.go": hello,
		"b/go.mod":  "module example.com/b\n\ngo 1.26\n",
		"b/main.go": hello,
	})
	t.Setenv("GOWORK", "off")
	ws, err := workspace.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(ws), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("names = %q, want %q", got, want)
	}
}

func TestDiscoverNothing(t *testing.T) {
	dir := module(t, map[string]string{"lib/lib.go": "package lib\n"})
	if _, err := workspace.Load(dir); err == nil || !strings.Contains(err.Error(), "no main package") {
		t.Errorf("Load(no mains) = %v, want an error saying no main package", err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := module(t, map[string]string{
		"svc/api/main.go": hello,
		"other/main.go":   hello,
		"static/x.txt":    "x",
		workspace.FileName: `# a comment
env:
  COMMON: one
  PORT: 8080
services:
  - name: api
    path: svc/api
    args: [-v, "--addr=127.0.0.1:0"]
    env: {KEY: value, EMPTY: , FLAG: true}
    watch: [static]
  - path: ./other
`,
	})
	ws, err := workspace.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ws.File != filepath.Join(dir, workspace.FileName) || ws.Dir != dir {
		t.Errorf("File, Dir = %q, %q", ws.File, ws.Dir)
	}
	if got := ws.Env; got["COMMON"] != "one" || got["PORT"] != "8080" || len(got) != 2 {
		t.Errorf("Env = %v", got)
	}
	if got, want := names(ws), []string{"api", "other"}; !slices.Equal(got, want) {
		t.Fatalf("names = %q, want %q", got, want)
	}
	api := ws.Services[0]
	if api.Dir != filepath.Join(dir, "svc", "api") {
		t.Errorf("api Dir = %q", api.Dir)
	}
	if want := []string{"-v", "--addr=127.0.0.1:0"}; !slices.Equal(api.Args, want) {
		t.Errorf("api Args = %q, want %q", api.Args, want)
	}
	if e := api.Env; e["KEY"] != "value" || e["EMPTY"] != "" || e["FLAG"] != "true" || len(e) != 3 {
		t.Errorf("api Env = %v", e)
	}
	if want := []string{filepath.Join(dir, "static")}; !slices.Equal(api.Watch, want) {
		t.Errorf("api Watch = %q, want %q", api.Watch, want)
	}
	if o := ws.Services[1]; o.Dir != filepath.Join(dir, "other") || len(o.Args) != 0 {
		t.Errorf("other = %+v", o)
	}
}

func TestLoadFileErrors(t *testing.T) {
	files := map[string]string{
		"a/main.go":  hello,
		"b/main.go":  hello,
		"lib/lib.go": "package lib\n",
		"empty/x.md": "no Go here",
		"file.txt":   "a file",
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string // each in the error
	}{
		{"syntax", "services: [\n", []string{"yaml:"}},
		{"empty file", "", []string{"empty file"}},
		{"not a mapping", "- a\n", []string{":1: want a mapping"}},
		{"unknown top key", "service:\n  - path: a\n", []string{`:1: top level: unknown key "service" (want one of env, services)`, "missing key services"}},
		{"services not a list", "services: a\n", []string{`:1: services: want a list of services, got "a"`}},
		{"no services", "services: []\n", []string{":1: services: the list is empty"}},
		{"service not a mapping", "services:\n  - a\n", []string{":2: services[0]: want a mapping"}},
		{"unknown service key", "services:\n  - path: a\n    argz: [x]\n", []string{`:3: services[0]: unknown key "argz" (want one of name, path, args, env, watch)`}},
		{"key twice", "services:\n  - path: a\n    path: b\n", []string{`:3: services[0]: key "path" given twice (first on line 2)`}},
		{"missing path", "services:\n  - name: a\n", []string{":2: services[0]: missing path"}},
		{"empty path", "services:\n  - name: a\n    path: \"\"\n", []string{":3: services[0]: missing path"}},
		{"no such path", "services:\n  - path: nope\n", []string{`:2: services[0].path: "nope": no such file or directory`}},
		{"path is a file", "services:\n  - path: file.txt\n", []string{`:2: services[0].path: "file.txt" is not a directory`}},
		{"not main", "services:\n  - path: lib\n", []string{`:2: path "lib": package lib is not a main package`}},
		{"no Go files", "services:\n  - path: empty\n", []string{`:2: path "empty": not a Go package`}},
		{"duplicate names", "services:\n  - path: a\n  - name: a\n    path: b\n", []string{`:3: services[1].name: "a": a service of that name is already listed on line 2`}},
		{"bad name", "services:\n  - name: 9lives\n    path: a\n", []string{`:2: services[0].name: "9lives": want a letter`}},
		{"name not a string", "services:\n  - name: [a]\n    path: a\n", []string{":2: services[0].name: want a string, got a list"}},
		{"args not a list", "services:\n  - path: a\n    args: -v\n", []string{`:3: services[0].args: want a list of strings, got "-v"`}},
		{"arg not a string", "services:\n  - path: a\n    args: [{x: 1}]\n", []string{":3: services[0].args[0]: want a string, got a mapping"}},
		{"env not a mapping", "env: [A]\nservices:\n  - path: a\n", []string{":1: env: want a mapping of variable names to values, got a list"}},
		{"env value not scalar", "services:\n  - path: a\n    env: {A: [1]}\n", []string{":3: services[0].env.A: want a string, got a list"}},
		{"env bad name", "services:\n  - path: a\n    env: {\"A=B\": x}\n", []string{`:3: services[0].env: "A=B" is not an environment variable name`}},
		{"watch missing", "services:\n  - path: a\n    watch: [nope]\n", []string{`:3: services[0].watch: "nope": no such file or directory`}},
		{"every problem", "services:\n  - path: nope\n  - path: lib\n    bogus: 1\n", []string{":2: services[0].path", ":3: path \"lib\"", `:4: services[1]: unknown key "bogus"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := module(t, files)
			writeFiles(t, dir, map[string]string{workspace.FileName: tc.yaml})
			_, err := workspace.Load(dir)
			if err == nil {
				t.Fatalf("Load = nil error, want one containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error =\n%v\nwant it to contain %q", err, w)
				}
			}
			var werr *workspace.Error
			if !errors.As(err, &werr) {
				t.Errorf("Load error is %T, want *workspace.Error", err)
			}
		})
	}
}

// TestExamplesFile loads the repository's examples/ferry.work.yaml.
func TestExamplesFile(t *testing.T) {
	ws, err := workspace.Load(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	if ws.File == "" {
		t.Fatal("examples/ has no ferry.work.yaml: Load discovered the services")
	}
	if got, want := names(ws), []string{"greeter", "events", "tracing", "config"}; !slices.Equal(got, want) {
		t.Errorf("names = %q, want %q", got, want)
	}
	for _, s := range ws.Services {
		if _, err := os.Stat(filepath.Join(s.Dir, "main.go")); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
}
