package main

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/cmd/ferry/internal/scaffold"
	"github.com/spf13/cobra"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ferry's module version and the Go version it was built with",
		Long: `Print the version of the Ferry module this ferry binary was built from (as go install
recorded it: a release such as v0.4.0, a pseudo-version, or "(devel)" for a build from a
checkout, which also prints the release its source is heading for, ferry.Version), the VCS
revision when known, and the Go version and platform.

ferry new requires this same Ferry version in the go.mod it writes.`,
		Example: `  ferry version
  ferry --version`,
		Args: args(0, 0),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), versionText())
			return err
		}),
	}
}

// ferryVersion is the version of the Ferry module in this binary's build
// information: "v0.4.0", a pseudo-version, or "(devel)".
func ferryVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	if bi.Main.Path == scaffold.FerryModule {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == scaffold.FerryModule {
			if d.Replace != nil {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return "(unknown)"
}

func versionText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ferry %s\n", ferryVersion())
	if v := ferryVersion(); v != ferry.Version && v != strings.TrimSuffix(ferry.Version, "-dev") {
		// A development build: say which release its source is heading for.
		fmt.Fprintf(&b, "source %s\n", ferry.Version)
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, at, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = " (modified)"
				}
			}
		}
		if rev != "" {
			fmt.Fprintf(&b, "revision %s %s%s\n", rev, at, dirty)
		}
	}
	fmt.Fprintf(&b, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return b.String()
}

var goVersionRE = regexp.MustCompile(`go(\d+)\.(\d+)`)

// goLine is the go line for a new go.mod: the major and minor version of
// the Go that built ferry (at least Ferry's own), patch 0.
func goLine() string {
	m := goVersionRE.FindStringSubmatch(runtime.Version())
	if m == nil {
		return "1.26.0"
	}
	return m[1] + "." + m[2] + ".0"
}
