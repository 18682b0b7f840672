package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/middleware/auth"
	"github.com/ferry-go/ferry/middleware/ratelimit"
	"github.com/ferry-go/ferry/middleware/requestid"
	"github.com/ferry-go/ferry/middleware/shed"
	"github.com/ferry-go/ferry/middleware/timeout"
	validatemw "github.com/ferry-go/ferry/middleware/validate"
	"github.com/go-viper/mapstructure/v2"
	"golang.org/x/time/rate"
)

// The built-in middleware, by name, with their settings. Each settings
// struct is decoded strictly: an unknown key, a missing required one or a
// value of the wrong type is an error naming it.
var builtinMiddleware = map[string]MiddlewareFactory{
	"bulkhead":  settingsFactory(bulkheadMW),
	"timeout":   settingsFactory(timeoutMW),
	"ratelimit": settingsFactory(ratelimitMW),
	"shed":      settingsFactory(shedMW),
	"requestid": settingsFactory(func(struct{}) (middleware.Middleware, error) { return requestid.New(), nil }),
	"validate":  settingsFactory(func(struct{}) (middleware.Middleware, error) { return validatemw.New(), nil }),
	"auth":      settingsFactory(authMW),
}

// settingsFactory makes a MiddlewareFactory that decodes the settings into
// S before calling f.
func settingsFactory[S any](f func(S) (middleware.Middleware, error)) MiddlewareFactory {
	return func(settings map[string]any) (middleware.Middleware, error) {
		var s S
		if err := decodeSettings(settings, &s); err != nil {
			return nil, err
		}
		return f(s)
	}
}

// decodeSettings decodes m into the struct at out by its mapstructure
// tags: durations from strings ("2s"), numbers from strings, and an error
// for keys the struct does not have or required ones (tag "required")
// missing.
func decodeSettings(m map[string]any, out any) error {
	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           out,
		Metadata:         &md,
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		DecodeHook: func(from, to reflect.Type, data any) (any, error) {
			if to != reflect.TypeFor[time.Duration]() || from.Kind() != reflect.String {
				return data, nil
			}
			d, err := time.ParseDuration(data.(string))
			if err != nil {
				return nil, fmt.Errorf("%q: want a duration such as 2s", data)
			}
			return d, nil
		},
	})
	if err != nil {
		return err
	}
	if err := dec.Decode(m); err != nil {
		// mapstructure lists its errors on lines of their own, after a
		// heading: one line, each error naming its key, reads better.
		msg := strings.TrimPrefix(err.Error(), "decoding failed due to the following error(s):")
		var parts []string
		for _, line := range strings.Split(msg, "\n") {
			line = strings.Join(strings.Fields(line), " ")
			if line == "" {
				continue
			}
			// "'config.kafkaSettings' has invalid keys: x" names a Go type.
			if m := invalidKeys.FindStringSubmatch(line); m != nil {
				line = "unknown keys: " + m[1]
			}
			parts = append(parts, line)
		}
		return fmt.Errorf("settings: %s", strings.Join(parts, "; "))
	}
	t := reflect.TypeOf(out).Elem()
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if strings.Contains(opts, "required") || f.Tag.Get("settings") == "required" {
			if _, ok := m[name]; !ok {
				return fmt.Errorf("want settings.%s (%s)", name, f.Tag.Get("doc"))
			}
		}
	}
	return nil
}

// invalidKeys matches mapstructure's message for keys a struct lacks.
var invalidKeys = regexp.MustCompile(`^'[^']*' has invalid keys: (.*)$`)

type bulkheadSettings struct {
	Max int `mapstructure:"max" settings:"required" doc:"the most calls in flight"`
}

func bulkheadMW(s bulkheadSettings) (middleware.Middleware, error) {
	if s.Max < 1 {
		return nil, fmt.Errorf("settings.max = %d: want at least 1", s.Max)
	}
	return middleware.Bulkhead(s.Max), nil
}

type timeoutSettings struct {
	Timeout time.Duration `mapstructure:"timeout" settings:"required" doc:"the longest a handler may run, e.g. 2s"`
}

func timeoutMW(s timeoutSettings) (middleware.Middleware, error) {
	if s.Timeout <= 0 {
		return nil, fmt.Errorf("settings.timeout = %v: want a positive duration", s.Timeout)
	}
	return timeout.New(s.Timeout), nil
}

type ratelimitSettings struct {
	PerSecond float64 `mapstructure:"per_second" settings:"required" doc:"calls allowed per second and caller"`
	Burst     int     `mapstructure:"burst" doc:"calls allowed at once; default per_second rounded up"`
	MaxKeys   int     `mapstructure:"max_keys" doc:"callers tracked at once; default 10000"`
}

func ratelimitMW(s ratelimitSettings) (middleware.Middleware, error) {
	if s.PerSecond <= 0 {
		return nil, fmt.Errorf("settings.per_second = %v: want more than 0", s.PerSecond)
	}
	burst := s.Burst
	if burst == 0 {
		burst = max(1, int(s.PerSecond+0.999))
	}
	var opts []ratelimit.Option
	if s.MaxKeys != 0 {
		opts = append(opts, ratelimit.WithMaxKeys(s.MaxKeys))
	}
	l, err := ratelimit.New(rate.Limit(s.PerSecond), burst, opts...)
	if err != nil {
		return nil, err
	}
	return l.Middleware(), nil
}

type shedSettings struct {
	Max        int           `mapstructure:"max" settings:"required" doc:"the most calls in flight before shedding"`
	RetryAfter time.Duration `mapstructure:"retry_after" doc:"push-back sent with a shed call; default 1s"`
	Exempt     []string      `mapstructure:"exempt" doc:"endpoints never shed"`
}

func shedMW(s shedSettings) (middleware.Middleware, error) {
	var opts []shed.Option
	if s.RetryAfter != 0 {
		opts = append(opts, shed.WithRetryAfter(s.RetryAfter))
	}
	if len(s.Exempt) > 0 {
		opts = append(opts, shed.WithExempt(s.Exempt...))
	}
	sh, err := shed.New(s.Max, opts...)
	if err != nil {
		return nil, err
	}
	return sh.Middleware(), nil
}

// authSettings configure JWT (an HMAC secret read from an environment
// variable, never from the file) and API keys (read from a file of
// "key subject" lines).
type authSettings struct {
	HMACSecretEnv string   `mapstructure:"hmac_secret_env" doc:"environment variable holding the JWT HMAC secret"`
	Issuer        string   `mapstructure:"issuer" doc:"required JWT issuer"`
	Audience      []string `mapstructure:"audience" doc:"accepted JWT audiences"`
	APIKeysFile   string   `mapstructure:"api_keys_file" doc:"file of API keys, one 'key subject' per line"`
	Public        []string `mapstructure:"public" doc:"endpoints that need no credentials"`
}

func authMW(s authSettings) (middleware.Middleware, error) {
	var opts []auth.Option
	if s.HMACSecretEnv != "" {
		secret := os.Getenv(s.HMACSecretEnv)
		if secret == "" {
			return nil, fmt.Errorf("settings.hmac_secret_env: environment variable %s is empty or unset", s.HMACSecretEnv)
		}
		opts = append(opts, auth.WithHMACKey([]byte(secret)))
	}
	if s.APIKeysFile != "" {
		b, err := os.ReadFile(s.APIKeysFile)
		if err != nil {
			return nil, fmt.Errorf("settings.api_keys_file: %v", err)
		}
		keys := map[string]string{}
		for i, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			key, subject, ok := strings.Cut(line, " ")
			if !ok {
				return nil, fmt.Errorf("settings.api_keys_file %s line %d: want 'key subject'", s.APIKeysFile, i+1)
			}
			keys[key] = strings.TrimSpace(subject)
		}
		opts = append(opts, auth.WithAPIKeys(keys))
	}
	if s.HMACSecretEnv == "" && s.APIKeysFile == "" {
		return nil, errors.New("want settings.hmac_secret_env or settings.api_keys_file: no way to check credentials")
	}
	if s.Issuer != "" {
		opts = append(opts, auth.WithIssuer(s.Issuer))
	}
	if len(s.Audience) > 0 {
		opts = append(opts, auth.WithAudience(s.Audience...))
	}
	if len(s.Public) > 0 {
		opts = append(opts, auth.WithPublic(s.Public...))
	}
	a, err := auth.New(opts...)
	if err != nil {
		return nil, err
	}
	return a.Require(), nil
}
