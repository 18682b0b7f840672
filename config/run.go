package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ferry-go/ferry"
	"github.com/ferry-go/ferry/server"
	"github.com/spf13/pflag"
)

// Run is a whole main: it parses args (the flags of RegisterFlags), loads
// the configuration, builds the service with NewService and register, and
// runs it until ctx ends or SIGINT/SIGTERM arrives, then drains it within
// shutdown_timeout. It makes the configured logger slog's default (level,
// format, trace IDs), so handlers can log with slog.InfoContext(ctx, …).
// --help prints the flags and returns nil.
//
//	func main() {
//		if err := config.Run(context.Background(), register, os.Args[1:]); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
func Run(ctx context.Context, register func(*ferry.Service, *server.Server), args []string, opts ...Option) error {
	fs := pflag.NewFlagSet("service", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("config: %w", err)
	}
	bo := buildOptions{}
	for _, o := range opts {
		if o != nil {
			o(&bo)
		}
	}
	cfg, err := Load(Sources{Flags: fs, Defaults: bo.defaults})
	if err != nil {
		return err
	}
	// The process's default logger is the configured one, so that handlers
	// logging with slog.InfoContext(ctx, …) get its level, its format and
	// the trace ID of their call.
	slog.SetDefault(newLogger(cfg.Log, bo.logOut))
	svc, err := NewService(cfg, register, opts...)
	if err != nil {
		return err
	}
	return svc.Run(ctx) // SIGINT/SIGTERM, shutdown_timeout
}
