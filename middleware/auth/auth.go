package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
	"github.com/golang-jwt/jwt/v5"
)

// Header names read from the request metadata.
const (
	AuthorizationKey = "authorization"
	APIKeyKey        = "x-api-key"
)

// Method values of Principal.Method.
const (
	MethodJWT    = "jwt"
	MethodAPIKey = "api_key"
)

// Principal is the authenticated caller.
type Principal struct {
	// Subject is the JWT "sub" claim, or the name an API key maps to.
	Subject string
	// Method is MethodJWT or MethodAPIKey.
	Method string
	// Scopes come from the JWT "scope" claim (space-separated) or "scp"
	// claim (string or array), or from the API key's entry.
	Scopes []string
	// Claims are the token's claims; nil for API keys.
	Claims jwt.MapClaims
}

// HasScope reports whether p has scope s.
func (p Principal) HasScope(s string) bool { return slices.Contains(p.Scopes, s) }

type principalKey struct{}

// NewContext returns a copy of ctx carrying p, as the middleware does; it
// is for tests of handlers that read PrincipalFromContext.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the caller authenticated by Require or
// Optional, if any.
func PrincipalFromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Option configures New. An option that cannot be honoured makes New fail.
type Option func(*config)

type config struct {
	errs []error // invalid options, reported by the constructor

	hmacKey   []byte
	rsaKey    *rsa.PublicKey
	ecKey     *ecdsa.PublicKey
	keyfunc   jwt.Keyfunc
	kfAlgs    []string
	algs      []string // WithAlgorithms
	leeway    time.Duration
	issuer    string
	audience  []string
	now       func() time.Time
	apiKeys   map[[32]byte]Principal
	apiHeader string
	public    map[string]bool
}

// fail records an invalid option for the constructor to report.
func (c *config) fail(err error) { c.errs = append(c.errs, err) }

var (
	hmacAlgs = []string{"HS256", "HS384", "HS512"}
	rsaAlgs  = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)

// MinHMACKeyBytes is the shortest HMAC key WithHMACKey accepts (RFC 7518
// §3.2: a key at least as long as the HS256 hash).
const MinHMACKeyBytes = 32

// WithHMACKey trusts tokens signed with key by HS256, HS384 or HS512. The
// key must be at least MinHMACKeyBytes long.
func WithHMACKey(key []byte) Option {
	return func(c *config) {
		if len(key) < MinHMACKeyBytes {
			c.fail(fmt.Errorf("HMAC key is %d bytes, want at least %d", len(key), MinHMACKeyBytes))
			return
		}
		c.hmacKey = slices.Clone(key)
	}
}

// WithRSAPublicKey trusts tokens signed by the private half of key with
// RS256/384/512 or PS256/384/512. Keys under 2048 bits are refused.
func WithRSAPublicKey(key *rsa.PublicKey) Option {
	return func(c *config) {
		if key == nil || key.N == nil {
			c.fail(errors.New("nil RSA public key"))
			return
		}
		if key.N.BitLen() < 2048 {
			c.fail(fmt.Errorf("RSA key is %d bits, want at least 2048", key.N.BitLen()))
			return
		}
		c.rsaKey = key
	}
}

// WithECDSAPublicKey trusts tokens signed by the private half of key with
// the algorithm of its curve: ES256 for P-256, ES384 for P-384, ES512 for
// P-521.
func WithECDSAPublicKey(key *ecdsa.PublicKey) Option {
	return func(c *config) {
		if key == nil || key.Curve == nil {
			c.fail(errors.New("nil ECDSA public key"))
			return
		}
		if ecAlg(key) == "" {
			c.fail(fmt.Errorf("ECDSA curve %s is not one of P-256, P-384, P-521", key.Curve.Params().Name))
			return
		}
		c.ecKey = key
	}
}

func ecAlg(key *ecdsa.PublicKey) string {
	switch key.Curve {
	case elliptic.P256():
		return "ES256"
	case elliptic.P384():
		return "ES384"
	case elliptic.P521():
		return "ES512"
	}
	return ""
}

// WithKeyfunc verifies tokens with the keys kf returns (key rotation, a
// JWKS cache…), for the signing algorithms algs only, which must be named.
func WithKeyfunc(kf jwt.Keyfunc, algs ...string) Option {
	return func(c *config) {
		if kf == nil {
			c.fail(errors.New("nil jwt.Keyfunc"))
			return
		}
		if len(algs) == 0 {
			c.fail(errors.New("WithKeyfunc needs the allowed algorithms"))
			return
		}
		for _, a := range algs {
			if err := knownAlg(a); err != nil {
				c.fail(err)
				return
			}
		}
		c.keyfunc, c.kfAlgs = kf, slices.Clone(algs)
	}
}

// WithAlgorithms narrows the accepted signing algorithms to algs (for
// example only "RS256"). Each must be allowed by a configured key.
func WithAlgorithms(algs ...string) Option {
	return func(c *config) {
		if len(algs) == 0 {
			c.fail(errors.New("WithAlgorithms needs at least one algorithm"))
			return
		}
		for _, a := range algs {
			if err := knownAlg(a); err != nil {
				c.fail(err)
				return
			}
		}
		c.algs = slices.Clone(algs)
	}
}

func knownAlg(a string) error {
	if strings.EqualFold(a, "none") {
		return errors.New(`algorithm "none" is never allowed`)
	}
	if jwt.GetSigningMethod(a) == nil {
		return fmt.Errorf("unknown signing algorithm %q", a)
	}
	return nil
}

// WithLeeway sets the clock skew allowed when checking exp and nbf
// (default 30s, at most 5m).
func WithLeeway(d time.Duration) Option {
	return func(c *config) {
		if d < 0 || d > 5*time.Minute {
			c.fail(fmt.Errorf("leeway %v: want 0 to 5m", d))
			return
		}
		c.leeway = d
	}
}

// WithIssuer requires the "iss" claim to be iss.
func WithIssuer(iss string) Option {
	return func(c *config) {
		if iss == "" {
			c.fail(errors.New("empty issuer"))
			return
		}
		c.issuer = iss
	}
}

// WithAudience requires the "aud" claim to contain one of aud.
func WithAudience(aud ...string) Option {
	return func(c *config) {
		if len(aud) == 0 || slices.Contains(aud, "") {
			c.fail(errors.New("empty audience"))
			return
		}
		c.audience = slices.Clone(aud)
	}
}

// WithClock sets the clock used to check exp and nbf (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.fail(errors.New("nil clock"))
			return
		}
		c.now = now
	}
}

// WithAPIKeys accepts the API keys of keys, each mapped to the subject of
// its Principal. Keys shorter than 16 bytes are refused. It may be given
// more than once.
func WithAPIKeys(keys map[string]string) Option {
	return func(c *config) {
		for k, sub := range keys {
			if err := addAPIKey(c, k, Principal{Subject: sub}); err != nil {
				c.fail(err)
				return
			}
		}
	}
}

// WithAPIKey accepts key as the credentials of p (whose Method is set to
// MethodAPIKey). Keys shorter than 16 bytes are refused.
func WithAPIKey(key string, p Principal) Option {
	return func(c *config) {
		if err := addAPIKey(c, key, p); err != nil {
			c.fail(err)
		}
	}
}

func addAPIKey(c *config, key string, p Principal) error {
	if len(key) < 16 {
		return fmt.Errorf("API key for %q is %d bytes, want at least 16", p.Subject, len(key))
	}
	if p.Subject == "" {
		return errors.New("API key with an empty subject")
	}
	if c.apiKeys == nil {
		c.apiKeys = map[[32]byte]Principal{}
	}
	p.Method, p.Claims, p.Scopes = MethodAPIKey, nil, slices.Clone(p.Scopes)
	c.apiKeys[sha256.Sum256([]byte(key))] = p
	return nil
}

// WithAPIKeyHeader reads API keys from the metadata key name instead of
// x-api-key.
func WithAPIKeyHeader(name string) Option {
	return func(c *config) {
		if name == "" || strings.EqualFold(name, AuthorizationKey) {
			c.fail(fmt.Errorf("API key header %q: want a name other than authorization", name))
			return
		}
		c.apiHeader = strings.ToLower(name)
	}
}

// WithPublic names endpoints that Require lets through without
// credentials, as Optional does: "Health" for that endpoint of any
// service, "orders/Health" for one service's.
func WithPublic(endpoints ...string) Option {
	return func(c *config) {
		for _, e := range endpoints {
			if e == "" || strings.HasPrefix(e, "/") || strings.HasSuffix(e, "/") {
				c.fail(fmt.Errorf("public endpoint %q: want Endpoint or service/Endpoint", e))
				return
			}
			if c.public == nil {
				c.public = map[string]bool{}
			}
			c.public[e] = true
		}
	}
}

// Authenticator checks credentials. Build it with New; it is safe for
// concurrent use.
type Authenticator struct {
	cfg    config
	parser *jwt.Parser // nil when no JWT key is configured
}

// New returns an Authenticator trusting the keys of opts. It fails when an
// option is invalid or no credentials at all are configured.
func New(opts ...Option) (*Authenticator, error) {
	cfg := config{leeway: 30 * time.Second, now: time.Now, apiHeader: APIKeyKey}
	for _, o := range opts {
		if o == nil {
			continue
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	a := &Authenticator{cfg: cfg}
	var allowed []string
	if cfg.hmacKey != nil {
		allowed = append(allowed, hmacAlgs...)
	}
	if cfg.rsaKey != nil {
		allowed = append(allowed, rsaAlgs...)
	}
	if cfg.ecKey != nil {
		allowed = append(allowed, ecAlg(cfg.ecKey))
	}
	for _, alg := range cfg.kfAlgs {
		if !slices.Contains(allowed, alg) {
			allowed = append(allowed, alg)
		}
	}
	if cfg.algs != nil {
		for _, alg := range cfg.algs {
			if !slices.Contains(allowed, alg) {
				return nil, fmt.Errorf("auth: algorithm %s has no key configured for it", alg)
			}
		}
		allowed = cfg.algs
	}
	if len(allowed) == 0 && len(cfg.apiKeys) == 0 {
		return nil, errors.New("auth: no keys configured: want a JWT key option or API keys")
	}
	if len(allowed) > 0 {
		popts := []jwt.ParserOption{
			jwt.WithValidMethods(allowed),
			jwt.WithLeeway(cfg.leeway),
			jwt.WithTimeFunc(cfg.now),
			jwt.WithExpirationRequired(),
		}
		if cfg.issuer != "" {
			popts = append(popts, jwt.WithIssuer(cfg.issuer))
		}
		if len(cfg.audience) > 0 {
			popts = append(popts, jwt.WithAudience(cfg.audience...))
		}
		a.parser = jwt.NewParser(popts...)
	}
	return a, nil
}

// keyFor picks the verification key by the token's algorithm family, so a
// key is only ever used with its own kind of algorithm.
func (a *Authenticator) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if a.cfg.keyfunc != nil && slices.Contains(a.cfg.kfAlgs, alg) {
		return a.cfg.keyfunc(t)
	}
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if a.cfg.hmacKey != nil {
			return a.cfg.hmacKey, nil
		}
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		if a.cfg.rsaKey != nil {
			return a.cfg.rsaKey, nil
		}
	case *jwt.SigningMethodECDSA:
		if a.cfg.ecKey != nil && ecAlg(a.cfg.ecKey) == alg {
			return a.cfg.ecKey, nil
		}
	}
	return nil, errors.New("no key for the token's algorithm")
}

var (
	errMissing   = errs.New(errs.Unauthenticated, "missing credentials")
	errInvalid   = errs.New(errs.Unauthenticated, "invalid token")
	errExpired   = errs.New(errs.Unauthenticated, "token expired")
	errNotYet    = errs.New(errs.Unauthenticated, "token not valid yet")
	errAPIKey    = errs.New(errs.Unauthenticated, "invalid API key")
	errScheme    = errs.New(errs.Unauthenticated, "unsupported authorization scheme: want Bearer")
	errNoJWT     = errs.New(errs.Unauthenticated, "bearer tokens are not accepted")
	errNoAPIKeys = errs.New(errs.Unauthenticated, "API keys are not accepted")
)

// Authenticate checks the credentials in md. It returns the Principal, or
// ok false when md carries no credentials, or an Unauthenticated error when
// the credentials are wrong. Error messages never contain the credentials.
func (a *Authenticator) Authenticate(md transport.Header) (p Principal, ok bool, err error) {
	if md == nil {
		return Principal{}, false, nil
	}
	if h := md.Get(AuthorizationKey); h != "" {
		scheme, tok, _ := strings.Cut(strings.TrimSpace(h), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return Principal{}, false, errScheme
		}
		tok = strings.TrimSpace(tok)
		if tok == "" {
			return Principal{}, false, errInvalid
		}
		p, err := a.verify(tok)
		return p, err == nil, err
	}
	if key := md.Get(a.cfg.apiHeader); key != "" {
		if len(a.cfg.apiKeys) == 0 {
			return Principal{}, false, errNoAPIKeys
		}
		p, found := a.cfg.apiKeys[sha256.Sum256([]byte(key))]
		if !found {
			return Principal{}, false, errAPIKey
		}
		p.Scopes = slices.Clone(p.Scopes)
		return p, true, nil
	}
	return Principal{}, false, nil
}

func (a *Authenticator) verify(tok string) (Principal, error) {
	if a.parser == nil {
		return Principal{}, errNoJWT
	}
	claims := jwt.MapClaims{}
	_, err := a.parser.ParseWithClaims(tok, claims, a.keyFor)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return Principal{}, errExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return Principal{}, errNotYet
	default:
		return Principal{}, errInvalid
	}
	sub, _ := claims.GetSubject()
	return Principal{Subject: sub, Method: MethodJWT, Scopes: scopes(claims), Claims: claims}, nil
}

func scopes(c jwt.MapClaims) []string {
	if s, ok := c["scope"].(string); ok {
		return strings.Fields(s)
	}
	switch v := c["scp"].(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Require returns middleware that rejects calls without valid credentials
// with errs.Unauthenticated, before the handler, except calls to endpoints
// named by WithPublic, which it treats as Optional does.
func (a *Authenticator) Require() middleware.Middleware { return a.middleware(true) }

// Optional returns middleware that lets calls without credentials through
// without a Principal, and rejects calls whose credentials are wrong.
func (a *Authenticator) Optional() middleware.Middleware { return a.middleware(false) }

func (a *Authenticator) middleware(required bool) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			call, _ := transport.CallFromContext(ctx)
			if call != nil && call.Client {
				return next(ctx, req) // credentials are checked where calls arrive
			}
			var md transport.Header
			if call != nil {
				md = call.Request
			}
			p, ok, err := a.Authenticate(md)
			if err == nil && !ok && required && !a.isPublic(call) {
				err = errMissing
			}
			if err != nil {
				if call != nil && call.Kind == transport.HTTP && call.Reply != nil {
					call.Reply.Set("www-authenticate", `Bearer error="invalid_token"`)
				}
				return nil, err
			}
			if ok {
				ctx = NewContext(ctx, p)
			}
			return next(ctx, req)
		}
	}
}

func (a *Authenticator) isPublic(call *transport.Call) bool {
	if call == nil || len(a.cfg.public) == 0 {
		return false
	}
	return a.cfg.public[call.Endpoint] || a.cfg.public[call.Service+"/"+call.Endpoint]
}

// RequireScopes returns middleware that lets a call through only when its
// Principal (set by Require or Optional, which must run before it) has
// every one of scopes: errs.Unauthenticated without a Principal,
// errs.PermissionDenied when a scope is missing.
func RequireScopes(scopes ...string) middleware.Middleware {
	scopes = slices.Clone(scopes)
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			p, ok := PrincipalFromContext(ctx)
			if !ok {
				return nil, errMissing
			}
			for _, s := range scopes {
				if !p.HasScope(s) {
					return nil, errs.Newf(errs.PermissionDenied, "missing scope %q", s)
				}
			}
			return next(ctx, req)
		}
	}
}

// Bearer returns client middleware that sends "authorization: Bearer
// token" on every call it wraps.
func Bearer(token string) middleware.Middleware {
	return BearerFunc(func(context.Context) (string, error) { return token, nil })
}

// BearerFunc is Bearer with the token fetched per call (a refreshing
// token source). An error from source fails the call with it.
func BearerFunc(source func(context.Context) (string, error)) middleware.Middleware {
	return outgoing(func(ctx context.Context, call *transport.Call) error {
		tok, err := source(ctx)
		if err != nil {
			return err
		}
		call.Request.Set(AuthorizationKey, "Bearer "+tok)
		return nil
	})
}

// APIKey returns client middleware that sends "x-api-key: key" on every
// call it wraps.
func APIKey(key string) middleware.Middleware {
	return outgoing(func(_ context.Context, call *transport.Call) error {
		call.Request.Set(APIKeyKey, key)
		return nil
	})
}

func outgoing(set func(context.Context, *transport.Call) error) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			if call, ok := transport.CallFromContext(ctx); ok && call.Client && call.Request != nil {
				if err := set(ctx, call); err != nil {
					return nil, err
				}
			}
			return next(ctx, req)
		}
	}
}
