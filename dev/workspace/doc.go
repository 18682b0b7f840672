// Package workspace is the process supervisor of `ferry dev` (issue #13): it
// finds the services of a workspace, builds each with the go tool, runs them
// with their output prefixed by name, rebuilds and restarts one when its
// sources change, restarts one that crashed, and stops them all. It knows
// nothing of NATS, the gateway or the dashboard: its caller starts those and
// passes their addresses in the environment (Options.Env).
//
//	ws, err := workspace.Load(".")                         // ferry.work.yaml, or every main package
//	...
//	err = workspace.Run(ctx, ws, workspace.Options{        // until ctx ends (Ctrl-C)
//		Output: os.Stdout,
//		Env:    []string{"NATS_URL=" + nats.ClientURL(), "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318"},
//	})
//
// or, for a dashboard, New, Start, then Status, Logs, Restart and the
// OnEvent callback, and Stop.
//
// # ferry.work.yaml
//
// Load reads ferry.work.yaml when the directory has one:
//
//	env:                        # for every service (optional)
//	  LOG_LEVEL: debug
//	services:
//	  - name: greeter           # optional: the last element of path
//	    path: greeter           # a main package's directory, relative to this file
//	    args: [-http, 127.0.0.1:0]
//	    env:
//	      GREETER_GRPC_ADDR: 127.0.0.1:0
//	      FERRY_NATS_URL: ${NATS_URL}
//	    watch: [static, greeter.toml]   # more paths whose change restarts it (optional)
//
// It is read strictly: an unknown or repeated key, a value of the wrong kind,
// a missing or empty path, a path that is not a directory holding a main
// package (asked of the go tool), a watch path that does not exist, a bad or
// repeated name are all reported at once in an *Error, each with its line.
// Names are a letter, then letters, digits, '-', '_' or '.'. Values of env
// are strings (a YAML number or boolean is taken as written); ${NAME} in a
// value of env is NAME from the layers below it (see Environment), and in
// args NAME from the service's whole environment; an unset NAME is empty,
// and $$ is a literal $. The repository's examples/ferry.work.yaml is an
// example: it moves every listener to 127.0.0.1:0 and every example onto
// the dev NATS, and says why.
//
// # Discovery
//
// Without a ferry.work.yaml (and always with Discover), the services are the
// main packages `go list ./...` finds in the module the directory belongs
// to, plus those of every module nested under it (or only those, when the
// directory is in no module): testdata, vendor and directories starting
// with '.' or '_' are skipped, files excluded by build constraints (such as
// //go:build ignore) do not count, and a directory of only test files is not
// a service. Each is named after its directory; two directories of one name
// are both named after their path from the workspace, '/' as '-'
// (x/srv → x-srv). Discovered services get no args and no env of their own.
//
// # Building and running
//
// Every service is built with `go build -o BIN .` run in its directory (so
// the module, go.work and toolchain it belongs to are the ones used), into a
// new directory per build under Options.BinDir (a temporary directory by
// default; removed by Stop). At most GOMAXPROCS builds run at once. A failed
// build writes the compiler's output to Output as the service's lines, sets
// ServiceStatus.BuildError and leaves the process of the previous build
// running, if there is one (State stays Running); if none, the state is
// FailedBuild until the next change.
//
// The process runs in the workspace's directory (Workspace.Dir: the file's
// directory, or the discovered one), with PWD set to it.
//
// Environment, each layer over the one before: the supervisor's own
// environment; OTEL_SERVICE_NAME=<name>; Options.Env (NATS_URL,
// OTEL_EXPORTER_OTLP_ENDPOINT…); the file's top-level env; the service's
// env.
//
// Standard output and standard error are read line by line and written to
// Options.Output as "<name> | <line>", names padded to one width, the
// prefix coloured when Output is a terminal (Options.Color); each line is
// one Write, under a lock, so lines of different services never mix, even
// when a service writes half lines. A line longer than 64 KiB is cut. The
// last Options.LogLines lines of each service (default 1000), with the
// supervisor's own lines about it (building, started, exited…), are kept
// for Logs.
//
// # Restarts
//
// Sources are watched with fsnotify (inotify, kqueue, ReadDirectoryChangesW)
// rather than by polling modification times: a change is seen at once
// whatever the size of the tree, nothing runs while nothing changes, and
// fsnotify is already in the module graph (viper uses it). It watches
// directories, not files, so new files and editors that save by renaming a
// new file over the old one are seen. Watched are the directories of the
// packages the service is built from that belong to the workspace's own
// modules (`go list -deps`: the main module, the modules of go.work, modules
// replaced by a local directory — not the module cache or GOROOT); in them a
// change to a non-test .go file counts, as do go.mod, go.sum, the package's
// embedded files and the service's watch paths (a directory with everything
// under it). Editors' scratch files (.x.swp, x~, #x#, dot files) do not.
// The list is taken again at every build, so a newly imported package is
// watched from then on.
//
// After a change the sources must stay quiet for Options.Debounce (300ms)
// — one rebuild for a burst of saves or a branch switch. If the build
// succeeds, the old process is stopped (below) and one of the new binary
// started; if not, the old one runs on.
//
// A process that exits by itself with status 0 is not started again: it
// chose to end (a one-shot job, -h), and starting it again would loop. It
// is Exited until its sources change or Restart is called. A process that
// exits with another status, is killed by a signal it did not get from the
// supervisor, or cannot be started, is started again after a back-off:
// Options.MinBackoff (1s), doubling with each crash in a row, at most
// Options.MaxBackoff (30s); State is Restarting and NextStart says when. The
// back-off starts over after a process ran 10s (or MaxBackoff, if longer)
// before crashing, and when the sources change (the fix is tried at once).
//
// # Signals and process groups
//
// Each service runs in a process group of its own (Setpgid), so that
// whatever it starts (a `go run` wrapper's child, a shell's sleep) is
// stopped with it, and so that the Ctrl-C a terminal sends to `ferry dev`'s
// process group does not reach the services before the supervisor decides
// the order. Stopping a service sends SIGINT to its group and, after
// Options.Grace (5s) or when Stop's context ends, SIGKILL to the group.
// When a service's main process exits, whatever is left of its group is
// killed too. On Linux a service also gets Pdeathsig=SIGKILL, so it dies
// with the supervisor even when the supervisor is killed with SIGKILL
// (elsewhere, a supervisor killed that way leaves its services running;
// everywhere, it leaves its binaries in the build directory).
// Stop stops every service this way, waits for them, stops watching and
// removes the binaries; Run calls it when its context ends.
package workspace
