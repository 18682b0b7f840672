package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ferry-go/ferry/cmd/ferry/internal/scaffold"
	"github.com/spf13/cobra"
)

type newOptions struct {
	dir, module  string
	update       bool
	ferryReplace string
	ferryVersion string
	noTidy       bool
	natsURL      string
	broker       string
	registry     string
}

func newNewCmd() *cobra.Command {
	var o newOptions
	cmd := &cobra.Command{
		Use:   "new <name>",
		Short: "Scaffold a new Ferry service module",
		Long: `Create a Go module for a new Ferry service in ./<name> (or --dir): main.go, a handler with
one typed endpoint (Hello) and its test, which calls it over HTTP, gRPC and NATS, ferry.yaml,
a Makefile (build, test, run, docker), a multi-stage Dockerfile for a distroless non-root
image, Kubernetes manifests (TCP readiness and liveness probes on the HTTP port, a preStop
sleep so endpoints drain) and a README. Then it runs go mod tidy (unless --no-tidy).

Which Ferry the project builds against: --ferry-version, if given; else, when ferry new runs
inside a Ferry checkout, or this ferry is a development build (go install ./cmd/ferry from a
checkout), that checkout, through a replace directive in go.mod (docker build then needs the
directive removed and a released version required); else this ferry's own version.

The name must be a valid Ferry service name: a letter, then letters, digits, '-' or '_'. The
module path defaults to the name. An existing non-empty directory is refused.

Regeneration: --update refreshes a project that ferry new created, with the rule below, and
reports what it did with each file. A file is rewritten only if its first line still holds
the marker "` + scaffold.Marker + `" and its content is exactly what
ferry new last wrote (the hashes are in ` + scaffold.ManifestFile + `). So:
  - service.go, service_test.go, ferry.yaml, go.mod, README.md and .gitignore carry no
    marker: they are yours from the start and never rewritten;
  - main.go, Makefile, Dockerfile, .dockerignore and k8s/*.yaml carry it: they are kept
    current, until you edit one (or delete its marker line to take it over);
  - a file you deleted is not recreated; files a newer Ferry adds are created.`,
		Example: `  ferry new demo
  ferry new billing --dir services/billing --module github.com/acme/billing
  ferry new demo --update                       # refresh Ferry's files, keep yours
  ferry new demo --ferry-replace ~/src/ferry    # develop against a local Ferry checkout
  ferry new orders --broker kafka --registry etcd  # events on Kafka, discovery in etcd`,
		Args: args(1, 1, "<name>"),
		RunE: runE(func(cmd *cobra.Command, argv []string) error { return runNew(cmd, argv[0], &o) }),
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "", "directory to create the project in (default ./<name>)")
	f.StringVar(&o.module, "module", "", "Go module path (default <name>)")
	f.BoolVar(&o.update, "update", false, "refresh Ferry's files of a project ferry new created; never overwrites files you wrote or edited")
	f.StringVar(&o.ferryReplace, "ferry-replace", "", "add 'replace "+scaffold.FerryModule+" => PATH' to go.mod (a local Ferry checkout; default: the checkout the working directory is in, or the one a development build of ferry came from)")
	f.StringVar(&o.ferryVersion, "ferry-version", "", "Ferry version go.mod requires (default: this ferry's version, or the latest via go mod tidy for a development build)")
	f.BoolVar(&o.noTidy, "no-tidy", false, "do not run go mod tidy in the new project")
	f.StringVar(&o.natsURL, "nats-url", "", "NATS server the service uses, shared with other services (default: each service embeds its own)")
	f.StringVar(&o.broker, "broker", "", "a plug-in broker the service uses: "+strings.Join(scaffold.PluginKinds("broker"), " or ")+" (imported in main.go, configured in ferry.yaml)")
	f.StringVar(&o.registry, "registry", "", "a plug-in registry the service uses: "+strings.Join(scaffold.PluginKinds("registry"), " or "))
	return cmd
}

func runNew(cmd *cobra.Command, name string, o *newOptions) error {
	if err := scaffold.ValidateName(name); err != nil {
		return usageError{err}
	}
	if o.module != "" {
		if err := scaffold.ValidateModule(o.module); err != nil {
			return usageError{err}
		}
	} else if err := scaffold.ValidateModule(name); err != nil {
		return usagef("%v; pass --module", err)
	}
	for _, k := range []struct{ flag, kind string }{{"broker", o.broker}, {"registry", o.registry}} {
		if k.kind != "" && !slices.Contains(scaffold.PluginKinds(k.flag), k.kind) {
			return usagef("invalid --%s %q: want %s", k.flag, k.kind, strings.Join(scaffold.PluginKinds(k.flag), " or "))
		}
	}
	version := ferryVersion()
	if o.ferryVersion != "" {
		if !scaffold.ValidVersion(o.ferryVersion) {
			return usagef("invalid --ferry-version %q: want a version such as v0.4.0", o.ferryVersion)
		}
		version = o.ferryVersion
	}
	replace := o.ferryReplace
	if replace == "" && o.ferryVersion == "" {
		var why string
		if replace, why = defaultReplace(version); replace != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "ferry new: go.mod replaces %s with the checkout at %s (%s); pass --ferry-version to require a release instead\n",
				scaffold.FerryModule, replace, why)
		}
	}
	if replace != "" {
		abs, err := filepath.Abs(replace)
		if err != nil {
			return usagef("--ferry-replace %q: %v", replace, err)
		}
		replace = abs
	}
	dir := o.dir
	if dir == "" {
		dir = name
	}
	res, err := scaffold.Generate(scaffold.Options{
		Name:         name,
		Module:       o.module,
		Dir:          dir,
		FerryVersion: version,
		FerryReplace: replace,
		NATSURL:      o.natsURL,
		GoVersion:    goLine(),
		Update:       o.update,
		Broker:       o.broker,
		Registry:     o.registry,
	})
	out := cmd.OutOrStdout()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, r := range res {
		line := string(r.Action) + "\t" + filepath.Join(dir, filepath.FromSlash(r.Path))
		if r.Reason != "" {
			line += " (" + r.Reason + ")"
		}
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
	if err != nil {
		return err
	}
	if !o.noTidy {
		if err := goModTidy(cmd, dir, replace != ""); err != nil {
			return err
		}
	}
	if !o.update {
		fmt.Fprintf(out, "\nNext:\n  cd %s\n  make test    # calls Hello over HTTP, gRPC and NATS\n  make run     # then, from another terminal: ferry call %s Hello '{\"name\":\"Ada\"}'\n", dir, name)
	}
	return nil
}

// defaultReplace is the Ferry checkout a new project builds against when
// the user named neither a version nor a checkout: the one the working
// directory is in, else the one this development build of ferry was built
// from (a "(devel)" build knows its source directory unless it was built
// with -trimpath). why says which, for the message.
func defaultReplace(version string) (dir, why string) {
	if wd, err := os.Getwd(); err == nil {
		if root, ok := ferryCheckout(wd); ok {
			return root, "the working directory is inside it"
		}
	}
	if version != "(devel)" && version != "(unknown)" && version != "" {
		return "", "" // a release or pseudo-version: go mod tidy downloads it
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if root, ok := ferryCheckout(filepath.Dir(file)); ok {
			return root, "this ferry is a development build from it"
		}
	}
	return "", ""
}

var ferryModuleLine = regexp.MustCompile(`(?m)^module\s+` + regexp.QuoteMeta(scaffold.FerryModule) + `\s*$`)

// ferryCheckout finds the root of the Ferry checkout that dir is in.
func ferryCheckout(dir string) (string, bool) {
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			// The nearest go.mod decides: a project inside a checkout is
			// not the checkout.
			return dir, ferryModuleLine.Match(b)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// goModTidy runs go mod tidy in dir, which writes go.sum (and adds the
// latest Ferry when go.mod requires none). replaced says whether go.mod
// points Ferry at a local checkout; when it does not, a failure is most
// likely Ferry that cannot be downloaded, and the error says what to do.
func goModTidy(cmd *cobra.Command, dir string, replaced bool) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "go not found in PATH: run 'go mod tidy' in %s before building\n", dir)
		return nil
	}
	tidy := exec.CommandContext(cmd.Context(), goBin, "mod", "tidy")
	tidy.Dir = dir
	tidy.Stdout = cmd.ErrOrStderr()
	tidy.Stderr = cmd.ErrOrStderr()
	if err := tidy.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if !replaced {
				return fmt.Errorf("the project is written, but 'go mod tidy' in %s failed (%v). If %s could not be downloaded, "+
					"build against a local checkout of Ferry instead: cd %s && go mod edit -replace %s=<path to the checkout> && go mod tidy "+
					"(ferry new --ferry-replace <path> does this for a new project)", dir, ee, scaffold.FerryModule, dir, scaffold.FerryModule)
			}
			return fmt.Errorf("the project is written, but 'go mod tidy' in %s failed (%v); fix the cause above and run it again", dir, ee)
		}
		return fmt.Errorf("run go mod tidy in %s: %w", dir, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "ran go mod tidy in %s\n", dir)
	return nil
}
