package scaffold_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/cmd/ferry/internal/scaffold"
	"github.com/ferry-go/ferry/config"
	"go.yaml.in/yaml/v3"
)

func TestValidateName(t *testing.T) {
	for _, name := range []string{"demo", "D", "order-service", "order_service", "a1", "Greeter2"} {
		if err := scaffold.ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "1demo", "-demo", "_demo", "de mo", "de.mo", "de/mo", "dé", "demo!"} {
		err := scaffold.ValidateName(name)
		if err == nil || !strings.Contains(err.Error(), "a service name starts with a letter") {
			t.Errorf("ValidateName(%q) = %v, want an error saying what a name looks like", name, err)
		}
	}
}

func TestValidateModule(t *testing.T) {
	for _, p := range []string{"demo", "example.com/acme/demo", "github.com/a/b/v2", "a-b_c~d+e", "Demo"} {
		if err := scaffold.ValidateModule(p); err != nil {
			t.Errorf("ValidateModule(%q) = %v, want nil", p, err)
		}
	}
	for p, msg := range map[string]string{
		"":                 "empty",
		"/abs":             "leading slash",
		"-x":               "leading dash",
		"a/":               "trailing slash",
		"a//b":             "double slash",
		"a/./b":            "only dots",
		"a/.b":             "leading dot",
		"a/b.":             "trailing dot",
		"a b":              "invalid character ' '",
		"a/con":            "reserved file name on Windows",
		"a/prog~1":         "Windows short name",
		"example.com/ä/b":  "invalid character 'ä'",
		"example.com/a:b":  "invalid character ':'",
		"example.com/a@v1": "invalid character '@'",
	} {
		err := scaffold.ValidateModule(p)
		if err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "invalid module path") {
			t.Errorf("ValidateModule(%q) = %v, want an error containing %q", p, err, msg)
		}
	}
}

func generate(t *testing.T, o scaffold.Options) []scaffold.Result {
	t.Helper()
	res, err := scaffold.Generate(o)
	if err != nil {
		t.Fatalf("Generate(%+v) = %v", o, err)
	}
	return res
}

func read(t *testing.T, dir, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGenerate checks the files of a new project: which carry the marker,
// that Go files are gofmt-clean, that ferry.yaml is a valid configuration
// and the Kubernetes manifests hold the probes and the preStop hook.
func TestGenerate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "svc")
	res := generate(t, scaffold.Options{Name: "My_Svc", Module: "example.com/acme/my-svc", Dir: dir, FerryVersion: "v1.2.3", GoVersion: "1.26.0"})

	var paths, marked []string
	for _, r := range res {
		if r.Action != scaffold.Created {
			t.Errorf("%s: %s, want created", r.Path, r.Action)
		}
		paths = append(paths, r.Path)
		content := read(t, dir, r.Path)
		if scaffold.HasMarker([]byte(content)) {
			marked = append(marked, r.Path)
		}
		if strings.Contains(content, "<no value>") {
			t.Errorf("%s holds a missing template value:\n%s", r.Path, content)
		}
		if strings.HasSuffix(r.Path, ".go") {
			if f, err := format.Source([]byte(content)); err != nil || string(f) != content {
				t.Errorf("%s is not gofmt-clean (%v):\n%s", r.Path, err, content)
			}
		}
	}
	wantPaths := []string{"go.mod", "main.go", "service.go", "service_test.go", "ferry.yaml", "Makefile", "Dockerfile",
		".dockerignore", ".gitignore", "k8s/deployment.yaml", "k8s/service.yaml", "README.md"}
	if !slices.Equal(paths, wantPaths) {
		t.Errorf("Generate wrote %v, want %v", paths, wantPaths)
	}
	wantMarked := []string{"main.go", "Makefile", "Dockerfile", ".dockerignore", "k8s/deployment.yaml", "k8s/service.yaml"}
	if !slices.Equal(marked, wantMarked) {
		t.Errorf("files with the marker = %v, want %v", marked, wantMarked)
	}

	// main.go counts as generated for Go tools; service.go does not.
	for path, want := range map[string]bool{"main.go": true, "service.go": false} {
		f, err := parser.ParseFile(token.NewFileSet(), path, read(t, dir, path), parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if got := ast.IsGenerated(f); got != want {
			t.Errorf("%s counts as generated = %v, want %v", path, got, want)
		}
	}

	gomod := read(t, dir, "go.mod")
	for _, want := range []string{"module example.com/acme/my-svc\n", "\ngo 1.26.0\n", "\nrequire github.com/ferry-go/ferry v1.2.3\n"} {
		if !strings.Contains(gomod, want) {
			t.Errorf("go.mod =\n%s\nwant it to contain %q", gomod, want)
		}
	}
	if strings.Contains(gomod, "replace") {
		t.Errorf("go.mod =\n%s\nwant no replace without FerryReplace", gomod)
	}
	if main := read(t, dir, "main.go"); !strings.Contains(main, "config.Run(context.Background(), register, os.Args[1:])") {
		t.Errorf("main.go does not run config.Run:\n%s", main)
	}

	cfg, err := config.Load(config.Sources{File: filepath.Join(dir, "ferry.yaml"), Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("config.Load(ferry.yaml) = %v", err)
	}
	httpPort, grpcPort, adminPort, natsPort := scaffold.Ports("My_Svc")
	if cfg.Service.Name != "My_Svc" || cfg.Service.Version != "0.1.0" || cfg.Transports.HTTP.Addr != fmt.Sprintf(":%d", httpPort) ||
		cfg.Transports.GRPC.Addr != fmt.Sprintf(":%d", grpcPort) || !cfg.Transports.NATS.Enabled || cfg.NATS.URL != "" ||
		cfg.NATS.Embedded.Port != natsPort || cfg.Admin.Addr != fmt.Sprintf(":%d", adminPort) {
		t.Errorf("ferry.yaml loads as %+v", cfg)
	}

	var dep struct {
		Metadata struct{ Name string }
		Spec     struct {
			Template struct {
				Spec struct {
					TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
					SecurityContext               struct {
						RunAsNonRoot bool `yaml:"runAsNonRoot"`
					} `yaml:"securityContext"`
					Containers []struct {
						Image          string
						Ports          []struct{ Name string }
						ReadinessProbe struct {
							HTTPGet struct{ Path, Port string } `yaml:"httpGet"`
						} `yaml:"readinessProbe"`
						LivenessProbe struct {
							HTTPGet struct{ Path, Port string } `yaml:"httpGet"`
						} `yaml:"livenessProbe"`
						Lifecycle struct {
							PreStop struct {
								Sleep struct{ Seconds int }
							} `yaml:"preStop"`
						}
					}
				}
			}
		}
	}
	if err := yaml.Unmarshal([]byte(read(t, dir, "k8s/deployment.yaml")), &dep); err != nil {
		t.Fatalf("k8s/deployment.yaml: %v", err)
	}
	ps := dep.Spec.Template.Spec
	if dep.Metadata.Name != "my-svc" || len(ps.Containers) != 1 || !ps.SecurityContext.RunAsNonRoot {
		t.Fatalf("k8s/deployment.yaml = %+v, want one container of my-svc, non-root", dep)
	}
	c := ps.Containers[0]
	if c.Image != "my-svc:latest" || c.ReadinessProbe.HTTPGet != (struct{ Path, Port string }{"/readyz", "admin"}) ||
		c.LivenessProbe.HTTPGet != (struct{ Path, Port string }{"/livez", "admin"}) || len(c.Ports) != 3 || c.Ports[2].Name != "admin" ||
		c.Lifecycle.PreStop.Sleep.Seconds <= 0 || ps.TerminationGracePeriodSeconds <= c.Lifecycle.PreStop.Sleep.Seconds+15 {
		t.Errorf("k8s container = %+v, grace %ds: want HTTP probes on /readyz and /livez of the admin port, the admin port exposed, a preStop sleep and room for the 15s drain", c, ps.TerminationGracePeriodSeconds)
	}
	var svc struct {
		Spec struct {
			Selector map[string]string
			Ports    []struct {
				Name       string
				Port       int
				TargetPort string `yaml:"targetPort"`
			}
		}
	}
	if err := yaml.Unmarshal([]byte(read(t, dir, "k8s/service.yaml")), &svc); err != nil {
		t.Fatalf("k8s/service.yaml: %v", err)
	}
	if svc.Spec.Selector["app.kubernetes.io/name"] != "my-svc" || len(svc.Spec.Ports) != 3 || svc.Spec.Ports[0].Port != httpPort ||
		svc.Spec.Ports[1].TargetPort != "grpc" || svc.Spec.Ports[2].Port != adminPort {
		t.Errorf("k8s/service.yaml = %+v", svc)
	}

	docker := read(t, dir, "Dockerfile")
	for _, want := range []string{"FROM golang:1.26 AS build", "CGO_ENABLED=0 go build", "FROM gcr.io/distroless/static-debian12:nonroot", "USER 65532:65532", `ENTRYPOINT ["/app/My_Svc", "--config", "/app/ferry.yaml"]`} {
		if !strings.Contains(docker, want) {
			t.Errorf("Dockerfile does not contain %q:\n%s", want, docker)
		}
	}
	makefile := read(t, dir, "Makefile")
	for _, target := range []string{"build", "test", "run", "docker"} {
		if !regexp.MustCompile(`(?m)^` + target + `:.*\n\t\S`).MatchString(makefile) {
			t.Errorf("Makefile has no target %q with a tab-indented recipe:\n%s", target, makefile)
		}
	}
	// make build reuses what go test and go run compiled: any other
	// CGO_ENABLED or -trimpath would compile every dependency again.
	if build := regexp.MustCompile(`(?m)^build:.*\n(?:#.*\n)*\t(.*)`).FindStringSubmatch(makefile); build == nil || build[1] != "go build -o bin/$(BINARY) ." {
		t.Errorf("make build runs %q, want plain go build -o bin/$(BINARY) . (the settings of go test)", build)
	}

	var m struct {
		Name, Module string
		Files        map[string]string
	}
	if err := json.Unmarshal([]byte(read(t, dir, scaffold.ManifestFile)), &m); err != nil {
		t.Fatal(err)
	}
	if m.Name != "My_Svc" || m.Module != "example.com/acme/my-svc" || len(m.Files) != len(wantPaths) {
		t.Errorf("manifest = %+v", m)
	}
}

func TestGoMod(t *testing.T) {
	tests := []struct {
		name     string
		version  string
		replace  string
		want     []string
		wantNone string
	}{
		{"release", "v0.4.0", "", []string{"require github.com/ferry-go/ferry v0.4.0\n"}, "replace"},
		{"release with replace", "v0.4.0", "/src/ferry", []string{"require github.com/ferry-go/ferry v0.4.0\n", "replace github.com/ferry-go/ferry => /src/ferry\n"}, ""},
		{"devel with replace", "(devel)", "/src/my ferry", []string{"require github.com/ferry-go/ferry v0.0.0-00010101000000-000000000000\n", "replace github.com/ferry-go/ferry => \"/src/my ferry\"\n"}, ""},
		{"devel: go mod tidy adds the latest", "(devel)", "", nil, "require"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			generate(t, scaffold.Options{Name: "demo", Dir: dir, FerryVersion: tt.version, FerryReplace: tt.replace, GoVersion: "1.26.0"})
			gomod := read(t, dir, "go.mod")
			if !strings.HasPrefix(gomod, "module demo\n") {
				t.Errorf("go.mod =\n%s\nwant module demo (the name) by default", gomod)
			}
			for _, w := range tt.want {
				if !strings.Contains(gomod, w) {
					t.Errorf("go.mod =\n%s\nwant it to contain %q", gomod, w)
				}
			}
			if tt.wantNone != "" && strings.Contains(gomod, tt.wantNone) {
				t.Errorf("go.mod =\n%s\nwant no %q", gomod, tt.wantNone)
			}
		})
	}
}

// TestRegenerate pins the regeneration rule, file by file.
func TestRegenerate(t *testing.T) {
	dir := t.TempDir()
	o := scaffold.Options{Name: "demo", Dir: dir, FerryVersion: "v0.1.0", GoVersion: "1.26.0"}
	generate(t, o)

	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(path)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifestPath := filepath.Join(dir, scaffold.ManifestFile)
	var m map[string]any
	if err := json.Unmarshal([]byte(read(t, dir, scaffold.ManifestFile)), &m); err != nil {
		t.Fatal(err)
	}
	files := m["files"].(map[string]any)

	// An older Ferry wrote k8s/service.yaml differently; the user never touched it.
	old := "# " + scaffold.Marker + "\nkind: Service # as an older ferry new wrote it\n"
	write("k8s/service.yaml", old)
	files["k8s/service.yaml"] = hashOf(t, dir, "k8s/service.yaml")
	// The user edited the Makefile, keeping the marker.
	write("Makefile", read(t, dir, "Makefile")+"\nlint:\n\tgo vet ./...\n")
	// The user took the Dockerfile over by deleting its marker line.
	docker := read(t, dir, "Dockerfile")
	write("Dockerfile", docker[strings.Index(docker, "\n")+1:])
	// The user deleted .dockerignore.
	if err := os.Remove(filepath.Join(dir, ".dockerignore")); err != nil {
		t.Fatal(err)
	}
	// k8s/deployment.yaml is new in this version of Ferry: the manifest does not know it.
	delete(files, "k8s/deployment.yaml")
	if err := os.Remove(filepath.Join(dir, "k8s", "deployment.yaml")); err != nil {
		t.Fatal(err)
	}
	// The user wrote their own service.go; it has no marker.
	write("service.go", "package main // mine\n")
	// A checkout turned main.go's line endings into CRLF: not an edit.
	write("main.go", strings.ReplaceAll(read(t, dir, "main.go"), "\n", "\r\n"))
	b, _ := json.Marshal(m)
	if err := os.WriteFile(manifestPath, b, 0o644); err != nil {
		t.Fatal(err)
	}

	if _, err := scaffold.Generate(o); err == nil || !strings.Contains(err.Error(), "directory exists and is not empty") {
		t.Fatalf("Generate without Update on a project = %v, want ErrNotEmpty", err)
	}
	o.Update = true
	res := generate(t, o)
	got := map[string]string{}
	for _, r := range res {
		got[r.Path] = string(r.Action) + " " + r.Reason
	}
	want := map[string]string{
		"go.mod":              "kept yours: no generated-file marker",
		"main.go":             "unchanged ",
		"service.go":          "kept yours: no generated-file marker",
		"service_test.go":     "kept yours: no generated-file marker",
		"ferry.yaml":          "kept yours: no generated-file marker",
		"Makefile":            "kept edited since ferry new wrote it",
		"Dockerfile":          "kept yours: no generated-file marker",
		".dockerignore":       "kept deleted since ferry new wrote it; not recreated",
		".gitignore":          "kept yours: no generated-file marker",
		"k8s/deployment.yaml": "created ",
		"k8s/service.yaml":    "updated ",
		"README.md":           "kept yours: no generated-file marker",
	}
	for path, w := range want {
		if got[path] != w {
			t.Errorf("regenerate %s: %q, want %q", path, got[path], w)
		}
	}
	if s := read(t, dir, "k8s/service.yaml"); s == old || !strings.Contains(s, "targetPort: grpc") {
		t.Errorf("k8s/service.yaml was not brought up to date:\n%s", s)
	}
	if s := read(t, dir, "service.go"); s != "package main // mine\n" {
		t.Errorf("service.go = %q, want the user's", s)
	}
	if _, err := os.Stat(filepath.Join(dir, ".dockerignore")); err == nil {
		t.Errorf(".dockerignore was recreated")
	}
	if !strings.Contains(read(t, dir, "Makefile"), "lint:") {
		t.Errorf("the user's Makefile edit was lost")
	}

	// Now up to date: a second run changes nothing, and the updated file
	// counts as Ferry's again.
	for _, r := range generate(t, o) {
		if r.Action == scaffold.Created || r.Action == scaffold.Updated {
			t.Errorf("second regeneration: %s %s, want nothing written", r.Action, r.Path)
		}
		if r.Path == "k8s/service.yaml" && r.Action != scaffold.Unchanged {
			t.Errorf("second regeneration: k8s/service.yaml %s %s, want unchanged", r.Action, r.Reason)
		}
	}

	// Regeneration never renames the service or changes the module.
	if _, err := scaffold.Generate(scaffold.Options{Name: "other", Dir: dir, GoVersion: "1.26.0", Update: true}); err == nil || !strings.Contains(err.Error(), `was created for service "demo", not "other"`) {
		t.Errorf("Generate(other name, Update) = %v, want a refusal", err)
	}
	if _, err := scaffold.Generate(scaffold.Options{Name: "demo", Module: "x.org/demo", Dir: dir, GoVersion: "1.26.0", Update: true}); err == nil || !strings.Contains(err.Error(), `has module "demo", not "x.org/demo"`) {
		t.Errorf("Generate(other module, Update) = %v, want a refusal", err)
	}
}

// hashOf is the manifest's hash of a file: SHA-256 of its content with
// CRLF line endings made LF.
func hashOf(t *testing.T, dir, path string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(strings.ReplaceAll(read(t, dir, path), "\r\n", "\n")))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestRefuse checks that Generate refuses a non-empty directory that it
// did not create, with or without Update, and a path that is a file.
func TestRefuse(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := scaffold.Options{Name: "demo", Dir: dir, GoVersion: "1.26.0"}
	if _, err := scaffold.Generate(o); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Generate(non-empty dir) = %v, want a refusal", err)
	}
	o.Update = true
	if _, err := scaffold.Generate(o); err == nil || !strings.Contains(err.Error(), "was not created by ferry new") {
		t.Errorf("Generate(non-empty dir, Update) = %v, want a refusal", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the refused directory holds %d entries, want only the user's file", len(ents))
	}
	o.Dir = filepath.Join(dir, "notes.txt")
	if _, err := scaffold.Generate(o); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("Generate(a file) = %v, want a refusal", err)
	}
}

// Two services scaffolded side by side get different ports, and one given
// a NATS URL shares that server instead of embedding its own.
func TestDistinctPortsAndSharedNATS(t *testing.T) {
	h1, g1, a1, n1 := scaffold.Ports("orders")
	h2, g2, a2, n2 := scaffold.Ports("payments")
	if h1 == h2 || g1 == g2 || a1 == a2 || n1 == n2 {
		t.Errorf("orders and payments share ports: %d/%d/%d/%d and %d/%d/%d/%d", h1, g1, a1, n1, h2, g2, a2, n2)
	}
	dir := t.TempDir()
	if _, err := scaffold.Generate(scaffold.Options{Name: "orders", Dir: dir, GoVersion: "1.26.0", NATSURL: "nats://127.0.0.1:4222"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Sources{File: filepath.Join(dir, "ferry.yaml"), Env: func(string) (string, bool) { return "", false }})
	if err != nil || cfg.NATS.URL != "nats://127.0.0.1:4222" {
		t.Errorf("ferry.yaml with a shared NATS: nats.url = %q, %v", cfg.NATS.URL, err)
	}
	if dep := read(t, dir, "k8s/deployment.yaml"); !strings.Contains(dep, "- name: FERRY_NATS_URL\n              value: nats://127.0.0.1:4222") {
		t.Errorf("k8s/deployment.yaml does not set FERRY_NATS_URL:\n%s", dep)
	}
}

// A service made with plug-ins imports their packages, requires and (with
// a checkout) replaces their modules, and selects them in ferry.yaml;
// --update keeps them and refuses to change them.
func TestPlugins(t *testing.T) {
	dir := t.TempDir()
	o := scaffold.Options{Name: "demo", Dir: dir, FerryVersion: "(devel)", FerryReplace: "/src/ferry", GoVersion: "1.26.0", Broker: "kafka", Registry: "etcd"}
	generate(t, o)
	main, gomod, yaml := read(t, dir, "main.go"), read(t, dir, "go.mod"), read(t, dir, "ferry.yaml")
	for file, wants := range map[string][]string{
		main: {`_ "github.com/ferry-go/ferry/contrib/broker/kafka" // registers broker.kind: kafka`,
			`_ "github.com/ferry-go/ferry/contrib/registry/etcd" // registers registry.kind: etcd`},
		gomod: {"require github.com/ferry-go/ferry/contrib/broker/kafka v0.0.0-00010101000000-000000000000\n",
			"replace github.com/ferry-go/ferry/contrib/broker/kafka => /src/ferry/contrib/broker/kafka\n",
			"replace github.com/ferry-go/ferry/contrib/registry/etcd => /src/ferry/contrib/registry/etcd\n"},
		yaml: {"  kind: kafka ", `  settings: {brokers: ["localhost:9092"]}`, "  kind: etcd ", `  settings: {endpoints: ["localhost:2379"]}`},
	} {
		for _, w := range wants {
			if !strings.Contains(file, w) {
				t.Errorf("generated file =\n%s\nwant it to contain %q", file, w)
			}
		}
	}
	if strings.Contains(yaml, "rabbitmq") {
		t.Errorf("ferry.yaml names rabbitmq:\n%s", yaml)
	}

	// --update without the flags keeps the plug-ins in main.go (which it
	// rewrites: it carries the marker).
	up := o
	up.Update, up.Broker, up.Registry = true, "", ""
	res, err := scaffold.Generate(up)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Path == "main.go" && r.Action != scaffold.Unchanged {
			t.Errorf("--update did %s main.go, want it unchanged:\n%s", r.Action, read(t, dir, "main.go"))
		}
	}
	up.Broker = "rabbitmq"
	if _, err := scaffold.Generate(up); err == nil || !strings.Contains(err.Error(), `created with broker "kafka", not "rabbitmq"`) {
		t.Errorf("Generate(update to another broker) = %v, want a refusal naming both", err)
	}

	// Unknown kinds name the known ones.
	bad := scaffold.Options{Name: "demo", Dir: t.TempDir(), GoVersion: "1.26.0", Broker: "redis"}
	if _, err := scaffold.Generate(bad); err == nil || !strings.Contains(err.Error(), `broker "redis": want one of kafka, rabbitmq`) {
		t.Errorf("Generate(broker redis) = %v", err)
	}
}
