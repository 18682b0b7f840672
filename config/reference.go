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
	b.WriteString(`
## Calling other services

` + "`config.Client(svc)`" + ` is the client a service calls others with: it finds them in the service's registry
(or over its NATS connection), runs tracing and metrics on every call, and is configured by ` + "`client`" + `
above. ` + "`clients`" + ` configures calls to one service at a time, by its name; a key left out keeps the
value of ` + "`client`" + ` (field by field, also inside ` + "`retry`" + ` and ` + "`tls`" + `):

` + "```yaml" + `
client:
  transports: [nats, grpc]
clients:
  payments:
    transports: [grpc]          # payments over gRPC only
    timeout: 2s
    retry: {max_attempts: 3, attempt_timeout: 500ms}
    tls: {ca_file: /etc/ferry/ca.pem, cert_file: /etc/ferry/orders.pem, key_file: /etc/ferry/orders-key.pem}
    grpc_compression: gzip      # requests to payments gzip-compressed
    idempotent: [Refund]
` + "```" + `

| key under ` + "`clients.<service>`" + ` | type | meaning |
|---|---|---|
`)
	walkDoc(&b, reflect.TypeFor[ServiceCalls](), "")
	b.WriteString(`
## Plug-ins

Brokers and registries whose clients are heavy live in modules of their own under ` + "`contrib/`" + `, so a
service that does not use them does not build them. A plug-in registers its kind when its package is
imported (as a ` + "`database/sql`" + ` driver does); the configuration then selects it by that kind and gives
its settings under ` + "`broker.settings`" + ` or ` + "`registry.settings`" + ` (in the file, or as JSON in
` + "`FERRY_BROKER_SETTINGS`" + ` / ` + "`FERRY_REGISTRY_SETTINGS`" + `). The settings are checked at load like every
key above — an unknown key, a value of the wrong type or out of range is a problem naming
` + "`broker.settings.<key>`" + ` — and a kind that is not imported says which package to import.

` + "```go" + `
import _ "github.com/ferry-go/ferry/contrib/broker/kafka" // registers broker.kind: kafka
` + "```" + `

` + "```yaml" + `
broker:
  kind: kafka
  settings: {brokers: ["kafka-0:9092", "kafka-1:9092"]}
` + "```" + `

| kind | package | settings |
|---|---|---|
| ` + "`broker.kind: kafka`" + ` | ` + "`github.com/ferry-go/ferry/contrib/broker/kafka`" + ` | [contrib/broker/kafka](../contrib/broker/kafka/README.md) |
| ` + "`broker.kind: rabbitmq`" + ` | ` + "`github.com/ferry-go/ferry/contrib/broker/rabbitmq`" + ` | [contrib/broker/rabbitmq](../contrib/broker/rabbitmq/README.md) |
| ` + "`registry.kind: etcd`" + ` | ` + "`github.com/ferry-go/ferry/contrib/registry/etcd`" + ` | [contrib/registry/etcd](../contrib/registry/etcd/README.md) |

` + "`ferry new --broker kafka`" + ` (or ` + "`rabbitmq`" + `, and ` + "`--registry etcd`" + `) writes the import and the
configuration into a new service. Programs register kinds of their own the same way, with ` + "`config.RegisterBroker`" + ` and ` + "`config.RegisterRegistry`" + `, or per service with ` + "`WithFactories`" + `.
` + "`examples/events/anybroker`" + ` is a whole program that runs on JetStream, Kafka or RabbitMQ by this
configuration alone ([examples/events](../examples/events/README.md)).
`)
	return b.String()
}

// walkDoc writes a row per leaf of struct t.
func walkDoc(b *strings.Builder, t reflect.Type, prefix string) {
	for i := range t.NumField() {
		f := t.Field(i)
		key := prefix + f.Tag.Get("mapstructure")
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			walkDoc(b, f.Type, key+".")
			continue
		}
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", key, typeName(f.Type), f.Tag.Get("doc"))
	}
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
