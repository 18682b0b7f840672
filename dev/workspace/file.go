package workspace

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a workspace file.
type Problem struct {
	// Line is the line of the file it is on, from 1; 0 when it is about
	// the file as a whole.
	Line int
	// Message says what is wrong and what was expected.
	Message string
}

// Error is a workspace file that cannot be used; it lists every problem.
type Error struct {
	// File is the workspace file's path.
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
		b.WriteString(p.Message)
	}
	return b.String()
}

var (
	topKeys     = []string{"env", "services"}
	serviceKeys = []string{"name", "path", "args", "env", "watch"}
)

// fileParser collects the problems of one workspace file.
type fileParser struct {
	dir      string
	problems []Problem
}

func (p *fileParser) errorf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.problems = append(p.problems, Problem{Line: line, Message: fmt.Sprintf(format, args...)})
}

// LoadFile reads the workspace file at path; see the package documentation
// for its format. Paths in it are relative to its directory, which is also
// the services' working directory. Every problem — a YAML error, an unknown
// or repeated key, a value of the wrong kind, a missing path, a path that
// is not a main package, a watch path that does not exist, two services of
// one name — is reported in one *Error, each with its line.
func LoadFile(path string) (*Workspace, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	p := &fileParser{dir: filepath.Dir(abs)}
	ws := p.parse(data)
	if len(p.problems) > 0 {
		return nil, &Error{File: abs, Problems: p.problems}
	}
	ws.File = abs
	return ws, nil
}

func (p *fileParser) parse(data []byte) *Workspace {
	ws := &Workspace{Dir: p.dir, Env: map[string]string{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml's messages start "yaml: line N: …".
		p.problems = append(p.problems, Problem{Message: err.Error()})
		return ws
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		p.errorf(nil, "empty file: want a services: list")
		return ws
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "want a mapping with services: (and env:), got %s", kindName(root))
		return ws
	}
	var servicesNode *yaml.Node
	p.mapping(root, "top level", topKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "env":
			ws.Env = p.env(v, "env")
		case "services":
			servicesNode = v
		}
	})
	if servicesNode == nil {
		p.errorf(root, "missing key services: want a list of services")
		return ws
	}
	if servicesNode.Kind != yaml.SequenceNode {
		p.errorf(servicesNode, "services: want a list of services, got %s", kindName(servicesNode))
		return ws
	}
	if len(servicesNode.Content) == 0 {
		p.errorf(servicesNode, "services: the list is empty")
	}
	names := map[string]int{} // name → line
	var mains []string
	var mainNodes []*yaml.Node
	for i, sn := range servicesNode.Content {
		what := fmt.Sprintf("services[%d]", i)
		if sn.Kind != yaml.MappingNode {
			p.errorf(sn, "%s: want a mapping with name, path, args, env, watch; got %s", what, kindName(sn))
			continue
		}
		svc := Service{Env: map[string]string{}}
		var nameNode, pathNode *yaml.Node
		p.mapping(sn, what, serviceKeys, func(key string, k, v *yaml.Node) {
			switch key {
			case "name":
				if s, ok := p.scalar(v, what+".name"); ok {
					svc.Name, nameNode = s, v
				}
			case "path":
				if s, ok := p.scalar(v, what+".path"); ok {
					pathNode = v
					svc.Dir = p.abs(s)
				}
			case "args":
				svc.Args = p.strings(v, what+".args")
			case "env":
				svc.Env = p.env(v, what+".env")
			case "watch":
				for j, w := range p.strings(v, what+".watch") {
					abs := p.abs(w)
					if _, err := os.Stat(abs); err != nil {
						p.errorf(v.Content[j], "%s.watch: %q: %v", what, w, statErr(err))
						continue
					}
					svc.Watch = append(svc.Watch, abs)
				}
			}
		})
		if pathNode == nil || svc.Dir == "" {
			at := sn
			if pathNode != nil {
				at = pathNode
			}
			p.errorf(at, "%s: missing path: want the directory of a main package, relative to %s", what, FileName)
		} else if fi, err := os.Stat(svc.Dir); err != nil {
			p.errorf(pathNode, "%s.path: %q: %v", what, pathNode.Value, statErr(err))
		} else if !fi.IsDir() {
			p.errorf(pathNode, "%s.path: %q is not a directory: want the directory of a main package", what, pathNode.Value)
		} else {
			mains = append(mains, svc.Dir)
			mainNodes = append(mainNodes, pathNode)
		}
		if nameNode == nil && svc.Dir != "" {
			svc.Name = filepath.Base(svc.Dir)
			nameNode = sn
		}
		if svc.Name != "" {
			if !nameRE.MatchString(svc.Name) {
				p.errorf(nameNode, "%s.name: %q: want a letter, then letters, digits, '-', '_' or '.'", what, svc.Name)
			} else if line, dup := names[svc.Name]; dup {
				p.errorf(nameNode, "%s.name: %q: a service of that name is already listed on line %d", what, svc.Name, line)
			} else {
				names[svc.Name] = nameNode.Line
			}
		}
		ws.Services = append(ws.Services, svc)
	}
	// The go tool is asked only about directories that exist.
	for i, msg := range checkMains(mains) {
		if msg != "" {
			p.errorf(mainNodes[i], "path %q: %s", mainNodes[i].Value, msg)
		}
	}
	return ws
}

// mapping calls f for each key of n in order, reporting keys not in known
// and keys given twice.
func (p *fileParser) mapping(n *yaml.Node, what string, known []string, f func(key string, k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "%s: a key must be a plain string", what)
			continue
		}
		if !slices.Contains(known, k.Value) {
			p.errorf(k, "%s: unknown key %q (want one of %s)", what, k.Value, strings.Join(known, ", "))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			p.errorf(k, "%s: key %q given twice (first on line %d)", what, k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		f(k.Value, k, v)
	}
}

// scalar returns a scalar's text; null is "".
func (p *fileParser) scalar(n *yaml.Node, what string) (string, bool) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s: want a string, got %s", what, kindName(n))
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	return n.Value, true
}

func (p *fileParser) strings(n *yaml.Node, what string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: want a list of strings, got %s", what, kindName(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		if s, ok := p.scalar(e, fmt.Sprintf("%s[%d]", what, i)); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *fileParser) env(n *yaml.Node, what string) map[string]string {
	env := map[string]string{}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return env
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping of variable names to values, got %s", what, kindName(n))
		return env
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" || strings.ContainsAny(k.Value, "=\x00") {
			p.errorf(k, "%s: %q is not an environment variable name", what, k.Value)
			continue
		}
		if _, dup := env[k.Value]; dup {
			p.errorf(k, "%s: variable %s given twice", what, k.Value)
			continue
		}
		if s, ok := p.scalar(v, what+"."+k.Value); ok {
			env[k.Value] = s
		}
	}
	return env
}

func (p *fileParser) abs(path string) string {
	if path == "" {
		return ""
	}
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(p.dir, filepath.FromSlash(path))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func statErr(err error) string {
	if os.IsNotExist(err) {
		return "no such file or directory"
	}
	return err.Error()
}
