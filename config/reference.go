package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Reference renders the configuration reference (docs/CONFIG.md): every
// key with its environment variable, type, default and meaning, from the
// Config type itself, so it cannot drift.
func Reference() string {
	var b strings.Builder
	b.WriteString(`# Configuration reference

<!-- Generated from config.Config by config.Reference; "go test ./config -run TestReference -update" rewrites it. -->

A service built with ` + "`config.NewService`" + ` or ` + "`config.Run`" + ` reads its configuration from, highest first:

1. flags: ` + "`--set KEY=VALUE`" + ` for any key, and the shortcuts ` + "`--http-addr`, `--grpc-addr`, `--nats-url`, `--registry`, `--broker`, `--log-level`, `--name`" + `;
2. environment variables: ` + "`FERRY_`" + ` + the key upper-cased with dots as underscores;
3. the file named by ` + "`--config`" + ` (or ` + "`FERRY_CONFIG`" + `, or ` + "`ferry.yaml`" + ` if present): YAML, TOML or JSON;
4. the defaults below.

Lists of strings are comma-separated in flags and environment variables; maps and lists of objects are
JSON there. A configuration that cannot be used stops the service at start-up with a message naming each
key, where its value came from and what was expected; the values of secrets (` + "`nats.password`, `nats.token`" + `,
the passwords in ` + "`nats.embedded.users`" + `) are never printed. Give secrets through the environment or a
` + "`nats.creds_file`" + `, not a committed file (a password in ` + "`nats.embedded.users`" + ` may be a bcrypt hash).

| key | environment variable | type | default | meaning |
|---|---|---|---|---|
`)
	def := reflect.ValueOf(Default())
	for _, l := range leaves() {
		f := reflect.TypeFor[Config]().FieldByIndex(l.index)
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", l.key, l.env, typeName(l.typ), defaultOf(def.FieldByIndex(l.index)), f.Tag.Get("doc"))
	}
	b.WriteString(`
## Middleware

` + "`middleware`" + ` is a list of ` + "`{name, settings}`" + `, outermost first, in the file (or as JSON in
` + "`FERRY_MIDDLEWARE`" + `). Settings are checked strictly: an unknown key, a missing required one or a value
of the wrong type stops the service at start-up, naming it.

| name | setting | type | required | meaning |
|---|---|---|---|---|
`)
	for _, m := range middlewareSettings {
		if m.settings.NumField() == 0 {
			fmt.Fprintf(&b, "| `%s` | — | | | no settings |\n", m.name)
			continue
		}
		for i := range m.settings.NumField() {
			f := m.settings.Field(i)
			req := ""
			if f.Tag.Get("settings") == "required" {
				req = "yes"
			}
			fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", m.name, f.Tag.Get("mapstructure"), typeName(f.Type), req, f.Tag.Get("doc"))
		}
	}
	return b.String()
}

// middlewareSettings lists the built-in middleware's settings types for the
// reference, in the order shown.
var middlewareSettings = []struct {
	name     string
	settings reflect.Type
}{
	{"auth", reflect.TypeFor[authSettings]()},
	{"bulkhead", reflect.TypeFor[bulkheadSettings]()},
	{"ratelimit", reflect.TypeFor[ratelimitSettings]()},
	{"requestid", reflect.TypeFor[struct{}]()},
	{"shed", reflect.TypeFor[shedSettings]()},
	{"timeout", reflect.TypeFor[timeoutSettings]()},
	{"validate", reflect.TypeFor[struct{}]()},
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "list of strings"
	case t.Kind() == reflect.Slice:
		return "list of " + strings.ToLower(t.Elem().Name())
	case t.Kind() == reflect.Map:
		return "map"
	}
	return t.Kind().String()
}

func defaultOf(v reflect.Value) string {
	if v.Type() == durationType {
		return "`" + time.Duration(v.Int()).String() + "`"
	}
	if v.IsZero() {
		switch v.Kind() {
		case reflect.Bool:
			return "`false`"
		case reflect.Int:
			return "`0`"
		}
		return "—"
	}
	return fmt.Sprintf("`%v`", v.Interface())
}
