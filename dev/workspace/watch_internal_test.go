package workspace

import (
	"path/filepath"
	"testing"
)

func TestSourcesMatch(t *testing.T) {
	root := filepath.FromSlash("/m")
	j := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	s := &sources{
		pkgDirs: map[string]bool{j("svc"): true, j("lib"): true},
		files:   map[string]bool{j("go.mod"): true, j("go.sum"): true, j("svc/static/index.html"): true},
		trees:   []string{j("assets")},
	}
	for path, want := range map[string]bool{
		"svc/main.go":           true,
		"svc/new.go":            true,
		"lib/lib.go":            true,
		"go.mod":                true,
		"go.sum":                true,
		"svc/static/index.html": true,
		"assets/a.css":          true,
		"assets/deep/b.css":     true,
		"lib/lib_test.go":       false,
		"svc/notes.txt":         false,
		"svc/.main.go.swp":      false,
		"svc/main.go~":          false,
		"svc/4913":              false,
		"assets/#a.css#":        false,
		"other/x.go":            false,
		"svc/static/other.html": false,
		"assetsx/a.css":         false,
		"lib/sub/x.go":          false,
	} {
		if got := s.matches(j(path)); got != want {
			t.Errorf("matches(%s) = %v, want %v", path, got, want)
		}
	}
}

func TestEnvironment(t *testing.T) {
	env, args := environment(
		[]string{"PATH=/bin", "PWD=/elsewhere", "NATS_URL=nats://os", "OTEL_SERVICE_NAME=os"},
		"/ws",
		[]string{"NATS_URL=nats://dev", "A=caller"},
		map[string]string{"A": "ws", "B": "${A}-${NATS_URL}"},
		Service{Name: "svc", Args: []string{"${B}", "$$x", "${UNSET}"}, Env: map[string]string{"C": "${B}!", "A": "svc"}},
	)
	want := []string{"PATH=/bin", "PWD=/ws", "NATS_URL=nats://dev", "OTEL_SERVICE_NAME=svc", "A=svc", "B=caller-nats://dev", "C=caller-nats://dev!"}
	if len(env) != len(want) {
		t.Fatalf("env = %q, want %q", env, want)
	}
	for i := range want {
		if env[i] != want[i] {
			t.Errorf("env = %q, want %q", env, want)
			break
		}
	}
	if wantArgs := []string{"caller-nats://dev", "$x", ""}; len(args) != 3 || args[0] != wantArgs[0] || args[1] != wantArgs[1] || args[2] != wantArgs[2] {
		t.Errorf("args = %q, want %q", args, wantArgs)
	}
}
