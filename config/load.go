package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/go-viper/mapstructure/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix prefixes every key's environment variable.
const EnvPrefix = "FERRY_"

// DefaultFile is the file Load reads when Sources.File is empty and it
// exists in the working directory.
const DefaultFile = "ferry.yaml"

// Sources says where Load reads. The zero value reads ferry.yaml if it
// exists, the process environment, and no flags.
type Sources struct {
	// File is the configuration file, YAML, TOML or JSON by its extension.
	// Empty: DefaultFile if it exists. A named file that cannot be read is
	// an error.
	File string
	// Flags are command-line flags registered with RegisterFlags and
	// parsed; nil: none.
	Flags *pflag.FlagSet
	// Env looks environment variables up; nil: os.LookupEnv.
	Env func(key string) (string, bool)
	// Defaults, if set, changes the defaults (Default) before the sources
	// are read — a program's own defaults, such as `ferry gateway`'s
	// service.name and gateway.enabled. Every source still overrides them.
	Defaults func(*Config)
}

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Key is the configuration key, e.g. "transports.http.addr".
	Key string
	// Source is where the value came from: "flag --x", "env NAME",
	// "file PATH" or "default".
	Source string
	// Value is the offending value as given, if any.
	Value string
	// Message says what was expected.
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Key)
	if p.Value != "" {
		fmt.Fprintf(&b, " = %q", p.Value)
	}
	fmt.Fprintf(&b, " (from %s): %s", p.Source, p.Message)
	return b.String()
}

// Error is a configuration that cannot be used; it lists every problem.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "config: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config: %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// leaf is one settable key of Config.
type leaf struct {
	key   string
	env   string
	index []int // field index path in Config
	typ   reflect.Type
}

// complex reports whether the leaf holds a map or a slice of structs:
// given whole (file, or JSON in env and flags), never key by key.
func (l leaf) complex() bool {
	switch l.typ.Kind() {
	case reflect.Map:
		return true
	case reflect.Slice:
		return l.typ.Elem().Kind() == reflect.Struct
	}
	return false
}

var durationType = reflect.TypeFor[time.Duration]()

// leaves lists Config's keys in field order.
func leaves() []leaf {
	var out []leaf
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("mapstructure")
			if !f.IsExported() || tag == "" {
				continue
			}
			key := tag
			if prefix != "" {
				key = prefix + "." + tag
			}
			idx := append(slices.Clone(index), i)
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, key, idx)
				continue
			}
			out = append(out, leaf{key: key, env: EnvName(key), index: idx, typ: f.Type})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// EnvName returns the environment variable of a key:
// "transports.http.addr" → "FERRY_TRANSPORTS_HTTP_ADDR".
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Keys returns every configuration key, in the order of Config's fields.
func Keys() []string {
	ls := leaves()
	keys := make([]string, len(ls))
	for i, l := range ls {
		keys[i] = l.key
	}
	return keys
}

// Flag names registered by RegisterFlags.
const (
	FlagConfig = "config"
	FlagSet    = "set"
)

// shortcuts are the flags for the keys set most often.
var shortcuts = []struct{ flag, key, usage string }{
	{"name", "service.name", "service name"},
	{"http-addr", "transports.http.addr", "HTTP listen address"},
	{"grpc-addr", "transports.grpc.addr", "gRPC listen address"},
	{"nats-url", "nats.url", "NATS server URL; empty starts an embedded server"},
	{"registry", "registry.kind", "registry: none, memory, nats, srv, static, dns"},
	{"broker", "broker.kind", "broker: none, memory, nats, jetstream"},
	{"log-level", "log.level", "log level: debug, info, warn, error"},
}

// RegisterFlags adds Ferry's flags to fs: --config FILE, --set KEY=VALUE
// (repeatable; any key), and shortcuts for common keys (--http-addr,
// --grpc-addr, --nats-url, --registry, --broker, --log-level, --name).
func RegisterFlags(fs *pflag.FlagSet) {
	fs.StringP(FlagConfig, "c", "", "configuration file (YAML, TOML or JSON); default "+DefaultFile+" if present")
	fs.StringArray(FlagSet, nil, "set any configuration key, e.g. --set transports.grpc.enabled=false (repeatable)")
	for _, s := range shortcuts {
		fs.String(s.flag, "", s.usage+" ("+s.key+")")
	}
}

// Load reads the configuration from src, with the usual precedence: flags
// over environment variables over the file over defaults. Every key can be
// set from each source (see docs/CONFIG.md). A configuration that cannot be
// used — an unreadable file, an unknown key in it, a value of the wrong
// type, a missing required key, an invalid value — is an *Error naming
// every problem's key, source and what was expected.
func Load(src Sources) (*Config, error) {
	env := src.Env
	if env == nil {
		env = os.LookupEnv
	}
	file := src.File
	fileFlag := ""
	if src.Flags != nil {
		if f := src.Flags.Lookup(FlagConfig); f != nil && f.Changed {
			file, fileFlag = f.Value.String(), "flag --"+FlagConfig
		}
	}
	if file == "" {
		if v, ok := env(EnvPrefix + "CONFIG"); ok && v != "" {
			file, fileFlag = v, "env "+EnvPrefix+"CONFIG"
		}
	}
	v := viper.New()
	if file == "" {
		if _, err := os.Stat(DefaultFile); err == nil {
			file = DefaultFile
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		if ext := strings.TrimPrefix(filepath.Ext(file), "."); ext == "yml" {
			v.SetConfigType("yaml")
		}
		if err := v.ReadInConfig(); err != nil {
			source := fileFlag
			if source == "" {
				source = "file " + file
			}
			return nil, &Error{Problems: []Problem{{Key: "config", Source: source, Value: file, Message: "cannot read the configuration file: " + err.Error()}}}
		}
	}

	flags, problems := flagValues(src.Flags)
	cfg := Default()
	if src.Defaults != nil {
		src.Defaults(&cfg)
	}
	cfg.sources = map[string]string{}
	rv := reflect.ValueOf(&cfg).Elem()
	ls := leaves()
	for _, l := range ls {
		var (
			raw    any
			source string
			given  bool
		)
		switch {
		case flags[l.key].set:
			raw, source, given = flags[l.key].value, flags[l.key].source, true
		default:
			if s, ok := env(l.env); ok {
				raw, source, given = s, "env "+l.env, true
			} else if v.InConfig(l.key) {
				raw, source, given = v.Get(l.key), "file "+file, true
			}
		}
		if !given {
			continue
		}
		cfg.sources[l.key] = source
		if err := decodeLeaf(rv.FieldByIndex(l.index), l, raw); err != nil {
			problems = append(problems, Problem{Key: l.key, Source: source, Value: showKey(l.key, raw), Message: err.Error()})
		}
	}
	for k := range flags {
		if !slices.ContainsFunc(ls, func(l leaf) bool { return l.key == k }) {
			problems = append(problems, Problem{Key: k, Source: flags[k].source, Message: "unknown key" + suggest(k, ls)})
		}
	}
	if file != "" {
		for _, k := range v.AllKeys() {
			if !known(k, ls) {
				problems = append(problems, Problem{Key: k, Source: "file " + file, Message: "unknown key" + suggest(k, ls)})
			}
		}
	}
	if len(problems) == 0 {
		problems = validate(&cfg)
	}
	if len(problems) == 0 {
		problems = pluginProblems(&cfg)
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b Problem) int { return strings.Compare(a.Key, b.Key) })
		return nil, &Error{Problems: problems}
	}
	return &cfg, nil
}

type flagValue struct {
	value  string
	source string
	set    bool
}

// flagValues collects the keys set by flags; --set KEY=VALUE entries that
// are not of that form are problems.
func flagValues(fs *pflag.FlagSet) (map[string]flagValue, []Problem) {
	out := map[string]flagValue{}
	if fs == nil {
		return out, nil
	}
	var problems []Problem
	for _, s := range shortcuts {
		if f := fs.Lookup(s.flag); f != nil && f.Changed {
			out[s.key] = flagValue{value: f.Value.String(), source: "flag --" + s.flag, set: true}
		}
	}
	if f := fs.Lookup(FlagSet); f != nil && f.Changed {
		sets, _ := fs.GetStringArray(FlagSet)
		for _, kv := range sets {
			k, val, ok := strings.Cut(kv, "=")
			k = strings.ToLower(strings.TrimSpace(k))
			if !ok || k == "" {
				problems = append(problems, Problem{Key: FlagSet, Source: "flag --" + FlagSet, Value: kv, Message: "want KEY=VALUE"})
				continue
			}
			out[k] = flagValue{value: val, source: "flag --set " + k, set: true}
		}
	}
	return out, problems
}

// known reports whether a key read from the file is a Config key, or a
// part of a complex (map or list) one.
func known(k string, ls []leaf) bool {
	for _, l := range ls {
		if k == l.key || (l.complex() && strings.HasPrefix(k, l.key+".")) {
			return true
		}
	}
	return false
}

// suggest names the closest key, for typos.
func suggest(k string, ls []leaf) string {
	best, bestD := "", 4
	for _, l := range ls {
		if d := distance(k, l.key); d < bestD {
			best, bestD = l.key, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// showKey is show, except that secrets (passwords, tokens, and the users
// list, which holds passwords) are never printed back.
func showKey(key string, raw any) string {
	k := strings.ToLower(key)
	if strings.HasSuffix(k, "password") || strings.HasSuffix(k, "token") || k == "nats.embedded.users" {
		if raw == nil || raw == "" {
			return ""
		}
		return "(redacted)"
	}
	return show(raw)
}

func show(raw any) string {
	switch r := raw.(type) {
	case string:
		return r
	case nil:
		return ""
	case time.Duration:
		return r.String()
	}
	switch v := reflect.ValueOf(raw); v.Kind() {
	case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "" // nothing given, as for nil: not "null"
		}
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return fmt.Sprint(raw)
	}
	return string(b)
}

// decodeLeaf decodes raw into field, saying what was expected on failure.
func decodeLeaf(field reflect.Value, l leaf, raw any) error {
	if s, ok := raw.(string); ok && l.complex() {
		// Maps and lists come as JSON from env and flags.
		var generic any
		if err := json.Unmarshal([]byte(s), &generic); err != nil {
			return fmt.Errorf("want JSON (%s): %v", kindName(l.typ), err)
		}
		raw = generic
	}
	if s, ok := raw.(string); ok {
		switch {
		case l.typ == durationType:
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				return errors.New("want a duration such as 500ms, 10s or 1m30s")
			}
			field.SetInt(int64(d))
			return nil
		case l.typ.Kind() == reflect.Bool:
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return errors.New("want true or false")
			}
			field.SetBool(b)
			return nil
		case l.typ.Kind() == reflect.Int:
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return errors.New("want a whole number")
			}
			field.SetInt(int64(n))
			return nil
		}
	}
	target := reflect.New(l.typ)
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		),
		WeaklyTypedInput: true,
		ErrorUnused:      true,
		Result:           target.Interface(),
	})
	if err != nil {
		return err
	}
	if err := dec.Decode(raw); err != nil {
		msg := strings.TrimPrefix(err.Error(), "decoding failed due to the following error(s):")
		return fmt.Errorf("want %s: %s", kindName(l.typ), strings.Join(strings.Fields(msg), " "))
	}
	field.Set(target.Elem())
	return nil
}

// kindName describes a type for messages.
func kindName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 10s"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "a list of strings (comma-separated in env and flags)"
	case t.Kind() == reflect.Slice:
		return "a list of " + t.Elem().Name() + " objects"
	case t.Kind() == reflect.Map:
		return "a map"
	}
	return t.Kind().String()
}

var (
	serviceNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
	validate_     = newValidator()
)

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name := f.Tag.Get("mapstructure")
		if name == "" || name == "-" {
			return f.Name
		}
		return name
	})
	must := func(err error) {
		if err != nil {
			panic(err) // a tag registered twice: a programming error caught by any test
		}
	}
	must(v.RegisterValidation("service_name", func(fl validator.FieldLevel) bool {
		return serviceNameRE.MatchString(fl.Field().String())
	}))
	must(v.RegisterValidation("listen_addr", func(fl validator.FieldLevel) bool {
		_, port, err := net.SplitHostPort(fl.Field().String())
		if err != nil {
			return false
		}
		n, err := strconv.Atoi(port)
		return err == nil && n >= 0 && n <= 65535
	}))
	must(v.RegisterValidation("nats_subject", func(fl validator.FieldLevel) bool {
		return natsserver.IsValidSubject(fl.Field().String())
	}))
	must(v.RegisterValidation("nats_subject_queue", func(fl validator.FieldLevel) bool {
		// A subject, or a subject and a queue group after a space, as
		// nats-server checks subscribe permissions.
		s := fl.Field().String()
		subject, queue, hasQueue := strings.Cut(s, " ")
		if !hasQueue {
			return natsserver.IsValidSubject(s)
		}
		queue = strings.TrimLeft(queue, " ")
		return natsserver.IsValidSubject(subject) && natsserver.IsValidSubject(queue)
	}))
	must(v.RegisterValidation("nats_urls", func(fl validator.FieldLevel) bool {
		for _, u := range strings.Split(fl.Field().String(), ",") {
			u = strings.TrimSpace(u)
			if !strings.Contains(u, "://") {
				u = "nats://" + u
			}
			p, err := url.Parse(u)
			if err != nil || p.Host == "" {
				return false
			}
		}
		return true
	}))
	return v
}

// validate checks the decoded configuration against its struct tags.
func validate(cfg *Config) []Problem {
	err := validate_.Struct(cfg)
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		if err != nil {
			return []Problem{{Key: "config", Source: "default", Message: err.Error()}}
		}
		return nil
	}
	problems := make([]Problem, 0, len(verrs))
	for _, fe := range verrs {
		key := strings.TrimPrefix(fe.Namespace(), "Config.")
		top := topKey(key)
		problems = append(problems, Problem{Key: key, Source: cfg.Source(top), Value: showKey(key, fe.Value()), Message: message(fe, key)})
	}
	return problems
}

// topKey turns "registry.static[0].id" into "registry.static", the key
// whose source is recorded.
func topKey(key string) string {
	if i := strings.IndexByte(key, '['); i >= 0 {
		return key[:i]
	}
	return key
}

// message says what a failed validation expected.
func message(fe validator.FieldError, key string) string {
	param := fe.Param()
	switch fe.Tag() {
	case "required":
		return "is required"
	case "required_if":
		f, val, _ := strings.Cut(param, " ")
		return fmt.Sprintf("is required when %s is %s", sibling(key, f), val)
	case "required_with":
		return fmt.Sprintf("is required with %s", sibling(key, param))
	case "excluded_without":
		return fmt.Sprintf("needs %s", sibling(key, param))
	case "excluded_with":
		var names []string
		for _, p := range strings.Fields(param) {
			names = append(names, sibling(key, p))
		}
		return "cannot be set with " + strings.Join(names, " or ")
	case "oneof":
		return "want one of: " + strings.ReplaceAll(param, " ", ", ")
	case "hostname_port|url":
		return "want host:port or a URL such as http://10.0.0.5:2379"
	case "semver":
		return "want a semantic version such as 1.2.3"
	case "service_name":
		return "want a letter, then letters, digits, '-' or '_'"
	case "listen_addr":
		return "want host:port (host may be empty, port 0–65535), e.g. :8080 or 127.0.0.1:0"
	case "nats_subject":
		return "want a NATS subject such as orders.* or $SRV.>"
	case "nats_subject_queue":
		return "want a NATS subject such as orders.* or $SRV.>, optionally a space and a queue group"
	case "nats_urls":
		return "want NATS URLs such as nats://127.0.0.1:4222, comma-separated"
	case "file":
		return "want an existing, readable file"
	case "gt":
		return "want more than " + param
	case "gte":
		return "want at least " + param
	case "lte":
		return "want at most " + param
	case "min":
		return "want at least " + param + " entries"
	case "startswith":
		return "want it to start with " + param
	case "ne":
		return "cannot be " + param
	}
	return fmt.Sprintf("fails %q %s", fe.Tag(), param)
}

// sibling names the key of a field next to key: ("transports.http.addr",
// "Enabled") → "transports.http.enabled".
func sibling(key, field string) string {
	prefix := key
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		prefix = key[:i+1]
	} else {
		prefix = ""
	}
	name := field
	if f, ok := reflect.TypeFor[fieldNames]().FieldByName(field); ok {
		name = f.Tag.Get("mapstructure")
	}
	return prefix + name
}

// fieldNames maps the Go names used in cross-field tags to their keys.
type fieldNames struct {
	Enabled   bool   `mapstructure:"enabled"`
	CertFile  string `mapstructure:"cert_file"`
	KeyFile   string `mapstructure:"key_file"`
	User      string `mapstructure:"user"`
	Password  string `mapstructure:"password"`
	Token     string `mapstructure:"token"`
	CredsFile string `mapstructure:"creds_file"`
	NKeyFile  string `mapstructure:"nkey_file"`
}
