package workspace

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// sources is what one service is built from, as far as watching goes.
type sources struct {
	// pkgDirs are the directories of the packages of the workspace's
	// modules the service depends on: a change to any non-test .go file
	// in one (a new file too) counts.
	pkgDirs map[string]bool
	// files count whatever their name: go.mod, go.sum, embedded files,
	// watch entries that are files.
	files map[string]bool
	// trees are watch entries that are directories: anything under them
	// counts, except editors' scratch files.
	trees []string
}

// dirs returns the directories to watch for s.
func (s *sources) dirs() map[string]bool {
	out := map[string]bool{}
	for d := range s.pkgDirs {
		out[d] = true
	}
	for f := range s.files {
		out[filepath.Dir(f)] = true
	}
	for _, t := range s.trees {
		_ = filepath.WalkDir(t, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				if path != t && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				out[path] = true
			}
			return nil
		})
	}
	return out
}

// matches reports whether a change to path concerns s.
func (s *sources) matches(path string) bool {
	if s.files[path] {
		return true
	}
	base := filepath.Base(path)
	if scratch(base) {
		return false
	}
	if s.pkgDirs[filepath.Dir(path)] && strings.HasSuffix(base, ".go") && !strings.HasSuffix(base, "_test.go") {
		return true
	}
	for _, t := range s.trees {
		if path == t || strings.HasPrefix(path, t+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// scratch reports whether a file name is an editor's temporary or backup
// file, whose writes are not edits.
func scratch(base string) bool {
	return strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") || strings.HasPrefix(base, "#") ||
		strings.HasSuffix(base, ".swp") || strings.HasSuffix(base, ".swx") || base == "4913"
}

// watcher tells runners that their sources changed. One fsnotify watcher
// serves every service; it watches directories, not files, so that
// editors that save by writing a new file and renaming it over the old one
// are seen, and so are new files.
type watcher struct {
	fw *fsnotify.Watcher

	mu      sync.Mutex
	subs    map[*runner]*sources
	watched map[string]bool

	done chan struct{}
}

func newWatcher() (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{fw: fw, subs: map[*runner]*sources{}, watched: map[string]bool{}, done: make(chan struct{})}
	go w.loop()
	return w, nil
}

// set replaces what r is told about.
func (w *watcher) set(r *runner, s *sources) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.subs[r] = s
	w.sync()
}

// sync watches exactly the directories some runner needs. w.mu is held.
func (w *watcher) sync() {
	want := map[string]bool{}
	for _, s := range w.subs {
		for d := range s.dirs() {
			want[d] = true
		}
	}
	for d := range w.watched {
		if !want[d] {
			_ = w.fw.Remove(d) // fails if d is gone, which is fine
			delete(w.watched, d)
		}
	}
	for d := range want {
		if !w.watched[d] {
			// A directory that does not exist (yet) is not watched; the
			// next build lists the sources again.
			if w.fw.Add(d) == nil {
				w.watched[d] = true
			}
		}
	}
}

func (w *watcher) loop() {
	defer close(w.done)
	for {
		select {
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			w.event(ev)
		case _, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			// An overflow loses events; nothing better to do than carry on.
		}
	}
}

func (w *watcher) event(ev fsnotify.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	newTree := false
	for r, s := range w.subs {
		if s.matches(ev.Name) {
			r.notify()
			if ev.Has(fsnotify.Create) && len(s.trees) > 0 {
				newTree = true
			}
		}
	}
	if newTree {
		w.sync() // a directory created under a watched tree
	}
}

func (w *watcher) close() {
	_ = w.fw.Close()
	<-w.done
}

// listSources asks the go tool what the main package in dir is built from:
// the directories of its dependencies that belong to the module of dir (or
// the workspace's modules, or a module replaced by a local directory),
// their go.mod and go.sum, and their embedded files.
func listSources(ctx context.Context, dir string, extra []string) (*sources, error) {
	const tmpl = `{{if and (not .Standard) .Module}}{{if or .Module.Main (and .Module.Replace (not .Module.Replace.Version))}}` +
		`{{.Dir}}{{"\t"}}{{.Module.GoMod}}{{range .EmbedFiles}}{{"\t"}}{{.}}{{end}}{{"\n"}}{{end}}{{end}}`
	out, err := goCmd(ctx, dir, "list", "-e", "-deps", "-f", tmpl, ".")
	if err != nil {
		return nil, err
	}
	s := &sources{pkgDirs: map[string]bool{}, files: map[string]bool{}}
	for line := range strings.Lines(string(out)) {
		fields := strings.Split(strings.TrimRight(line, "\r\n"), "\t")
		if len(fields) < 2 || fields[0] == "" {
			continue
		}
		pkgDir := fields[0]
		s.pkgDirs[pkgDir] = true
		if mod := fields[1]; mod != "" {
			s.files[mod] = true
			s.files[filepath.Join(filepath.Dir(mod), "go.sum")] = true
		}
		for _, e := range fields[2:] {
			s.files[filepath.Join(pkgDir, filepath.FromSlash(e))] = true
		}
	}
	if len(s.pkgDirs) == 0 {
		s.pkgDirs[dir] = true
	}
	addExtra(s, extra)
	return s, nil
}

func addExtra(s *sources, extra []string) {
	for _, p := range extra {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			s.trees = append(s.trees, p)
		} else {
			s.files[p] = true
		}
	}
}
