package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// FileName is the workspace file Load looks for.
const FileName = "ferry.work.yaml"

// Workspace is a set of services to build and run together.
type Workspace struct {
	// Dir is the absolute directory the services run in: the directory of
	// the workspace file, or the directory Load discovered services in.
	Dir string
	// File is the absolute path of the workspace file; empty when the
	// services were discovered.
	File string
	// Env is set for every service (the file's top-level env), before each
	// service's own Env. Values may name variables as ${NAME} (see the
	// package documentation).
	Env map[string]string
	// Services are the services, in the file's order or, discovered, in
	// the order of their directories.
	Services []Service
}

// Service is one main package of a workspace.
type Service struct {
	// Name names the service: its log prefix, its binary and
	// OTEL_SERVICE_NAME. A letter, then letters, digits, '-', '_' or '.'.
	Name string
	// Dir is the absolute directory of the main package; it is built and
	// its dependencies listed from there, so the module it belongs to is
	// the one used.
	Dir string
	// Args are the command-line arguments.
	Args []string
	// Env is set for this service, over the workspace's Env.
	Env map[string]string
	// Watch are absolute paths (files, or directories watched with their
	// subdirectories) whose change restarts the service, besides the Go
	// packages it is built from.
	Watch []string
}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)

// Load returns the workspace in dir: the services listed in dir's
// ferry.work.yaml if there is one, or else every main package found under
// dir (see the package documentation for both). A workspace file that
// cannot be used is an *Error listing every problem with its line.
func Load(dir string) (*Workspace, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("workspace: %s is not a directory", dir)
	}
	file := filepath.Join(abs, FileName)
	if _, err := os.Stat(file); err == nil {
		return LoadFile(file)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	return Discover(abs)
}

// Discover returns a workspace of every main package under dir, ignoring
// any workspace file: `go list ./...` in the module dir belongs to (which
// skips testdata, vendor, directories starting with . or _, nested modules
// and files excluded by build constraints such as //go:build ignore), and
// the same in every module found under dir. A service is named after its
// directory; when two directories share a name, both are named after their
// path relative to dir with '/' as '-'.
func Discover(dir string) (*Workspace, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	roots := []string{abs}
	// Modules nested under dir are not part of ./... of dir's module, and
	// dir may be in no module at all but hold several.
	err = filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: go list will say so if it matters
		}
		if d.IsDir() && path != abs && (skipDir(d.Name()) || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "go.mod" && filepath.Dir(path) != abs {
			roots = append(roots, filepath.Dir(path))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	inModule, err := moduleOf(abs)
	if err != nil {
		return nil, err
	}
	if !inModule {
		roots = roots[1:]
	}
	var dirs []string
	for _, root := range roots {
		found, err := mainPackages(root)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, found...)
	}
	slices.Sort(dirs)
	dirs = slices.Compact(dirs)
	if len(dirs) == 0 {
		return nil, fmt.Errorf("workspace: no main package under %s and no %s", abs, FileName)
	}
	ws := &Workspace{Dir: abs, Env: map[string]string{}}
	count := map[string]int{}
	for _, d := range dirs {
		count[filepath.Base(d)]++
	}
	for _, d := range dirs {
		name := filepath.Base(d)
		if count[name] > 1 || !nameRE.MatchString(name) {
			rel, err := filepath.Rel(abs, d)
			if err != nil || rel == "." {
				rel = name
			}
			name = strings.ReplaceAll(filepath.ToSlash(rel), "/", "-")
		}
		ws.Services = append(ws.Services, Service{Name: name, Dir: d, Env: map[string]string{}})
	}
	return ws, nil
}

// skipDir reports whether the go tool ignores a directory of this name in
// patterns such as ./... .
func skipDir(name string) bool {
	return name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// moduleOf reports whether dir belongs to a Go module (or workspace).
func moduleOf(dir string) (bool, error) {
	out, err := goCmd(context.Background(), dir, "env", "GOMOD")
	if err != nil {
		return false, err
	}
	mod := strings.TrimSpace(string(out))
	return mod != "" && mod != os.DevNull, nil
}

// mainPackages lists the directories of the main packages of ./... in dir.
func mainPackages(dir string) ([]string, error) {
	out, err := goCmd(context.Background(), dir, "list", "-e", "-f", `{{if and (eq .Name "main") (or .GoFiles .CgoFiles)}}{{.Dir}}{{end}}`, "./...")
	if err != nil {
		return nil, err
	}
	var dirs []string
	for line := range strings.Lines(string(out)) {
		if line = strings.TrimSpace(line); line != "" {
			dirs = append(dirs, line)
		}
	}
	return dirs, nil
}

// goCmd runs the go tool in dir and returns its standard output, or an
// error with its standard error.
func goCmd(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("workspace: go %s in %s: %s", args[0], dir, msg)
	}
	return out, nil
}

// checkMain returns why dir is not a buildable main package, or "".
func checkMain(dir string) string {
	out, err := goCmd(context.Background(), dir, "list", "-e", "-f", "{{.Name}}\t{{len .GoFiles}}\t{{if .Error}}{{.Error}}{{end}}", ".")
	if err != nil {
		return err.Error()
	}
	name, rest, _ := strings.Cut(strings.TrimRight(string(out), "\r\n"), "\t")
	files, perr, _ := strings.Cut(rest, "\t")
	switch {
	case name == "main" && files != "0":
		return ""
	case name == "main":
		return "not a Go package: only test files"
	case name == "":
		if perr == "" {
			perr = "no Go package"
		}
		return "not a Go package: " + perr
	default:
		return fmt.Sprintf("package %s is not a main package", name)
	}
}

// checkMains runs checkMain on every dir at once and returns the results in
// order.
func checkMains(dirs []string) []string {
	out := make([]string, len(dirs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, d := range dirs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = checkMain(d)
		})
	}
	wg.Wait()
	return out
}
