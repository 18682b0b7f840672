package config

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/registry"
	"github.com/go-playground/validator/v10"
)

// Plug-ins: brokers and registries that live in modules of their own
// (contrib/broker/kafka, contrib/broker/rabbitmq, contrib/registry/etcd)
// register a kind when their package is imported, as database/sql drivers
// do:
//
//	import _ "github.com/ferry-go/ferry/contrib/broker/kafka"
//
// The configuration then selects them by kind (broker.kind: kafka) and
// gives their settings under broker.settings (registry.settings for a
// registry). Load decodes those settings strictly into the plug-in's
// settings struct — an unknown key, a value of the wrong type or a
// missing required one is a problem naming broker.settings.<key> — and
// validates them with their validate tags, like every built-in key.
// DefaultFactories includes every registered plug-in.

// plugin is one registered kind.
type plugin[T any] struct {
	// check decodes and validates settings, returning the problems.
	check func(settings map[string]any, source, prefix string) []Problem
	// make decodes the settings again and builds the value.
	make func(ctx context.Context, cfg *Config, settings map[string]any, res Resources) (T, error)
	// module is the import path that registered it, for messages.
	module string
}

var plugins struct {
	sync.Mutex
	brokers    map[string]plugin[broker.Broker]
	registries map[string]plugin[registry.Registry]
}

// knownPlugins are the plug-ins of this repository, by kind: an unknown
// kind among them is told which package to import.
var knownPlugins = map[string]string{
	"broker kafka":    "github.com/ferry-go/ferry/contrib/broker/kafka",
	"broker rabbitmq": "github.com/ferry-go/ferry/contrib/broker/rabbitmq",
	"registry etcd":   "github.com/ferry-go/ferry/contrib/registry/etcd",
}

// RegisterBroker makes broker.kind: kind build a broker with f from the
// settings in broker.settings, decoded over defaults into S (mapstructure
// tags; durations as "2s") and validated by S's validate tags. Call it
// from the plug-in package's init; module is that package's import path.
// It panics if kind is empty, built in, or registered already.
func RegisterBroker[S any](kind, module string, defaults S, f func(ctx context.Context, s S, cfg *Config, res Resources) (broker.Broker, error)) {
	plugins.Lock()
	defer plugins.Unlock()
	mustNewKind("broker", kind, builtinFactories().Brokers, plugins.brokers)
	if plugins.brokers == nil {
		plugins.brokers = map[string]plugin[broker.Broker]{}
	}
	plugins.brokers[kind] = newPlugin(module, defaults, f)
}

// RegisterRegistry is RegisterBroker for registry.kind and
// registry.settings.
func RegisterRegistry[S any](kind, module string, defaults S, f func(ctx context.Context, s S, cfg *Config, res Resources) (registry.Registry, error)) {
	plugins.Lock()
	defer plugins.Unlock()
	mustNewKind("registry", kind, builtinFactories().Registries, plugins.registries)
	if plugins.registries == nil {
		plugins.registries = map[string]plugin[registry.Registry]{}
	}
	plugins.registries[kind] = newPlugin(module, defaults, f)
}

func mustNewKind[F, P any](what, kind string, builtin map[string]F, registered map[string]P) {
	if kind == "" {
		panic("config: Register" + what + ": empty kind")
	}
	if _, ok := builtin[kind]; ok {
		panic(fmt.Sprintf("config: Register %s %q: a built-in kind", what, kind))
	}
	if _, ok := registered[kind]; ok {
		panic(fmt.Sprintf("config: Register %s %q: registered twice", what, kind))
	}
}

func newPlugin[S, T any](module string, defaults S, f func(context.Context, S, *Config, Resources) (T, error)) plugin[T] {
	decode := func(settings map[string]any) (S, error) {
		s := defaults
		if err := decodeSettings(settings, &s); err != nil {
			return s, err
		}
		return s, nil
	}
	return plugin[T]{
		module: module,
		check: func(settings map[string]any, source, prefix string) []Problem {
			s, err := decode(settings)
			if err != nil {
				return []Problem{{Key: prefix, Source: source, Message: err.Error()}}
			}
			return settingsProblems(validate_.Struct(&s), source, prefix)
		},
		make: func(ctx context.Context, cfg *Config, settings map[string]any, res Resources) (T, error) {
			var zero T
			s, err := decode(settings)
			if err != nil {
				return zero, err
			}
			// A Config built in code has not been through Load.
			if probs := settingsProblems(validate_.Struct(&s), "code", "settings"); len(probs) > 0 {
				return zero, &Error{Problems: probs}
			}
			return f(ctx, s, cfg, res)
		},
	}
}

// settingsProblems turns a validator error on a settings struct into
// problems keyed prefix.<field>.
func settingsProblems(err error, source, prefix string) []Problem {
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return []Problem{{Key: prefix, Source: source, Message: err.Error()}}
	}
	out := make([]Problem, 0, len(verrs))
	for _, fe := range verrs {
		ns := fe.Namespace()
		if _, rest, ok := strings.Cut(ns, "."); ok {
			ns = rest // drop the struct's type name
		}
		key := prefix + "." + ns
		out = append(out, Problem{Key: key, Source: source, Value: show(fe.Value()), Message: message(fe, key)})
	}
	return out
}

// pluginProblems checks the settings of plug-in kinds (Load), and that
// built-in kinds are given none.
func pluginProblems(cfg *Config) []Problem {
	plugins.Lock()
	b, bOK := plugins.brokers[cfg.Broker.Kind]
	r, rOK := plugins.registries[cfg.Registry.Kind]
	plugins.Unlock()
	var out []Problem
	check := func(what string, ok bool, p func(map[string]any, string, string) []Problem, settings map[string]any, builtin bool) {
		key := what + ".settings"
		switch {
		case ok:
			out = append(out, p(settings, cfg.Source(key), key)...)
		case builtin && len(settings) > 0:
			out = append(out, Problem{Key: key, Source: cfg.Source(key), Message: "settings are for plug-in kinds only; " + what + ".kind " + kindOf(cfg, what) + " is built in"})
		}
	}
	f := builtinFactories()
	_, bBuiltin := f.Brokers[cfg.Broker.Kind]
	_, rBuiltin := f.Registries[cfg.Registry.Kind]
	check("broker", bOK, b.check, cfg.Broker.Settings, bBuiltin)
	check("registry", rOK, r.check, cfg.Registry.Settings, rBuiltin)
	return out
}

func kindOf(cfg *Config, what string) string {
	if what == "broker" {
		return cfg.Broker.Kind
	}
	return cfg.Registry.Kind
}

// addPlugins adds the registered plug-ins to f's tables.
func addPlugins(f *Factories) {
	plugins.Lock()
	defer plugins.Unlock()
	for kind, p := range plugins.brokers {
		f.Brokers[kind] = func(ctx context.Context, cfg *Config, res Resources) (broker.Broker, error) {
			return p.make(ctx, cfg, cfg.Broker.Settings, res)
		}
	}
	for kind, p := range plugins.registries {
		f.Registries[kind] = func(ctx context.Context, cfg *Config, res Resources) (registry.Registry, error) {
			return p.make(ctx, cfg, cfg.Registry.Settings, res)
		}
	}
}

// unknownKind is the message for a kind no table has: the known ones, and
// the package to import when it is one of this repository's plug-ins.
func unknownKind[F any](what, kind string, table map[string]F) string {
	msg := "unknown " + what + "; known: " + strings.Join(slices.Sorted(maps.Keys(table)), ", ")
	if module, ok := knownPlugins[what+" "+kind]; ok {
		msg += fmt.Sprintf(`; %s is a plug-in: import _ %q in the program`, kind, module)
	}
	return msg
}
