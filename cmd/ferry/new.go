package main

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
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
  ferry new demo --ferry-replace ~/src/ferry    # develop against a local Ferry checkout`,
		Args: args(1, 1, "<name>"),
		RunE: runE(func(cmd *cobra.Command, argv []string) error { return runNew(cmd, argv[0], &o) }),
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "", "directory to create the project in (default ./<name>)")
	f.StringVar(&o.module, "module", "", "Go module path (default <name>)")
	f.BoolVar(&o.update, "update", false, "refresh Ferry's files of a project ferry new created; never overwrites files you wrote or edited")
	f.StringVar(&o.ferryReplace, "ferry-replace", "", "add 'replace "+scaffold.FerryModule+" => PATH' to go.mod (a local Ferry checkout)")
	f.StringVar(&o.ferryVersion, "ferry-version", "", "Ferry version go.mod requires (default: this ferry's version, or the latest via go mod tidy for a development build)")
	f.BoolVar(&o.noTidy, "no-tidy", false, "do not run go mod tidy in the new project")
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
	version := ferryVersion()
	if o.ferryVersion != "" {
		if !scaffold.ValidVersion(o.ferryVersion) {
			return usagef("invalid --ferry-version %q: want a version such as v0.4.0", o.ferryVersion)
		}
		version = o.ferryVersion
	}
	replace := o.ferryReplace
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
		GoVersion:    goLine(),
		Update:       o.update,
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
		if err := goModTidy(cmd, dir); err != nil {
			return err
		}
	}
	if !o.update {
		fmt.Fprintf(out, "\nNext:\n  cd %s\n  make test    # calls Hello over HTTP, gRPC and NATS\n  make run     # then, from another terminal: ferry call %s Hello '{\"name\":\"Ada\"}'\n", dir, name)
	}
	return nil
}

// goModTidy runs go mod tidy in dir, which writes go.sum (and adds the
// latest Ferry when go.mod requires none).
func goModTidy(cmd *cobra.Command, dir string) error {
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
			return fmt.Errorf("the project is written, but 'go mod tidy' in %s failed (%v); fix the cause above and run it again", dir, ee)
		}
		return fmt.Errorf("run go mod tidy in %s: %w", dir, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "ran go mod tidy in %s\n", dir)
	return nil
}
