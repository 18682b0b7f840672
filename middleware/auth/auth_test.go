package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/middleware/auth"
	"github.com/ferry-go/ferry/server"
	"github.com/ferry-go/ferry/transport"
	fhttp "github.com/ferry-go/ferry/transport/http"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

const apiKey = "k-0123456789abcdef"

type WhoRequest struct {
	Note string `json:"note"`
}

type WhoReply struct {
	Subject string   `json:"subject"`
	Method  string   `json:"method"`
	Scopes  []string `json:"scopes"`
}

func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(sub string, exp time.Duration) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": sub, "iss": "ferry-test", "aud": "shop", "iat": now.Unix(),
		"exp": now.Add(exp).Unix(), "scope": "orders:read orders:write"}
}

// TestPerTransport is the per-transport test: missing, invalid,
// expired and alg-none credentials are Unauthenticated on HTTP, gRPC and
// NATS without running the handler or echoing the token; valid ones reach
// the handler with the Principal in its context.
func TestPerTransport(t *testing.T) {
	a, err := auth.New(auth.WithHMACKey(secret), auth.WithIssuer("ferry-test"), auth.WithAudience("shop"),
		auth.WithAPIKeys(map[string]string{apiKey: "ops"}), auth.WithPublic("shop/Health"))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	srv := server.New("shop", server.WithMiddleware(a.Require()))
	who := func(ctx context.Context, req *WhoRequest) (*WhoReply, error) {
		calls.Add(1)
		p, ok := auth.PrincipalFromContext(ctx)
		if !ok {
			return &WhoReply{Subject: "anonymous"}, nil
		}
		return &WhoReply{Subject: p.Subject, Method: p.Method, Scopes: p.Scopes}, nil
	}
	server.Handle(srv, "Who", who)
	server.Handle(srv, "Health", who)
	inst := ferrytest.Start(t, srv)

	good := sign(t, jwt.SigningMethodHS256, secret, claims("ada", time.Minute))
	expired := sign(t, jwt.SigningMethodHS256, secret, claims("ada", -2*time.Minute))
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("ada", time.Minute))
	forged := sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), claims("ada", time.Minute))
	wrongAud := claims("ada", time.Minute)
	wrongAud["aud"] = "billing"
	otherAud := sign(t, jwt.SigningMethodHS512, secret, wrongAud)
	noExp := claims("ada", time.Minute)
	delete(noExp, "exp")
	unbounded := sign(t, jwt.SigningMethodHS256, secret, noExp)

	bad := []struct {
		name, key, value, msg string
	}{
		{"missing", "", "", "missing credentials"},
		{"garbage", "authorization", "Bearer not.a.jwt", "invalid token"},
		{"expired", "authorization", "Bearer " + expired, "token expired"},
		{"alg none", "authorization", "Bearer " + none, "invalid token"},
		{"forged", "authorization", "Bearer " + forged, "invalid token"},
		{"wrong audience", "authorization", "Bearer " + otherAud, "invalid token"},
		{"no exp", "authorization", "Bearer " + unbounded, "invalid token"},
		{"basic scheme", "authorization", "Basic YWRhOnNlY3JldA==", "unsupported authorization scheme: want Bearer"},
		{"bad api key", "x-api-key", "k-not-the-right-key", "invalid API key"},
	}
	for _, tc := range []struct {
		name string
		c    transport.Client
	}{{"http", inst.HTTP}, {"grpc", inst.GRPC}, {"nats", inst.NATS}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			before := calls.Load()
			for _, b := range bad {
				cctx := ctx
				if b.key != "" {
					cctx = transport.WithMetadata(ctx, transport.Pairs(b.key, b.value))
				}
				_, err := transport.Invoke[WhoRequest, WhoReply](cctx, tc.c, "shop", "Who", &WhoRequest{})
				var e *errs.Error
				if !errors.As(err, &e) || e.Code() != errs.Unauthenticated {
					t.Errorf("%s: err = %v, want unauthenticated", b.name, err)
					continue
				}
				if e.Message() != b.msg {
					t.Errorf("%s: message = %q, want %q", b.name, e.Message(), b.msg)
				}
				if _, secretPart, _ := strings.Cut(b.value, " "); secretPart != "" && strings.Contains(err.Error(), secretPart) {
					t.Errorf("%s: error echoes the credentials: %v", b.name, err)
				}
			}
			if n := calls.Load() - before; n != 0 {
				t.Errorf("handler ran %d times for rejected calls", n)
			}

			// Happy paths: the principal is visible in the handler.
			bctx := transport.WithMetadata(ctx, transport.Pairs("Authorization", "Bearer "+good))
			r, err := transport.Invoke[WhoRequest, WhoReply](bctx, tc.c, "shop", "Who", &WhoRequest{})
			if err != nil || r.Subject != "ada" || r.Method != auth.MethodJWT || len(r.Scopes) != 2 {
				t.Errorf("bearer: %+v, %v", r, err)
			}
			kctx := transport.WithMetadata(ctx, transport.Pairs("X-Api-Key", apiKey))
			r, err = transport.Invoke[WhoRequest, WhoReply](kctx, tc.c, "shop", "Who", &WhoRequest{})
			if err != nil || r.Subject != "ops" || r.Method != auth.MethodAPIKey {
				t.Errorf("api key: %+v, %v", r, err)
			}
			r, err = transport.Invoke[WhoRequest, WhoReply](ctx, tc.c, "shop", "Health", &WhoRequest{})
			if err != nil || r.Subject != "anonymous" {
				t.Errorf("public endpoint: %+v, %v", r, err)
			}
			if n := calls.Load() - before; n != 3 {
				t.Errorf("handler ran %d times, want 3", n)
			}
		})
	}
}

// TestClientMiddleware sends the token with auth.Bearer as client
// middleware instead of metadata set by hand.
func TestClientMiddleware(t *testing.T) {
	a, err := auth.New(auth.WithHMACKey(secret), auth.WithAPIKey(apiKey, auth.Principal{Subject: "ops"}))
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New("shop", server.WithMiddleware(a.Require()))
	server.Handle(srv, "Who", func(ctx context.Context, req *WhoRequest) (*WhoReply, error) {
		p, _ := auth.PrincipalFromContext(ctx)
		return &WhoReply{Subject: p.Subject}, nil
	})
	inst := ferrytest.Start(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct {
		mw   func() (transport.Client, error)
		want string
	}{
		{func() (transport.Client, error) {
			return fhttp.NewClient("http://"+inst.HTTPAddr, fhttp.WithClientMiddleware(auth.Bearer(sign(t, jwt.SigningMethodHS384, secret, claims("bob", time.Minute)))))
		}, "bob"},
		{func() (transport.Client, error) {
			return fhttp.NewClient("http://"+inst.HTTPAddr, fhttp.WithClientMiddleware(auth.APIKey(apiKey)))
		}, "ops"},
	} {
		c, err := tc.mw()
		if err != nil {
			t.Fatal(err)
		}
		r, err := transport.Invoke[WhoRequest, WhoReply](ctx, c, "shop", "Who", &WhoRequest{})
		_ = c.Close()
		if err != nil || r.Subject != tc.want {
			t.Errorf("got %+v, %v; want %s", r, err, tc.want)
		}
	}
}

func call(a *auth.Authenticator, required bool, md transport.Metadata) (auth.Principal, error) {
	var got auth.Principal
	h := func(ctx context.Context, req any) (any, error) {
		got, _ = auth.PrincipalFromContext(ctx)
		return nil, nil
	}
	mw := a.Optional()
	if required {
		mw = a.Require()
	}
	ctx := transport.NewCallContext(context.Background(), &transport.Call{Service: "s", Endpoint: "E",
		Kind: transport.HTTP, Request: md, Reply: transport.Metadata{}})
	_, err := mw(h)(ctx, nil)
	return got, err
}

// TestAlgorithmConfusion: an RS256 verifier must not accept an HS256
// token whose HMAC key is the RSA public key, nor tokens of other families.
func TestAlgorithmConfusion(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ek384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	a, err := auth.New(auth.WithRSAPublicKey(&rk.PublicKey), auth.WithECDSAPublicKey(&ek.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	c := claims("ada", time.Minute)
	for _, tc := range []struct {
		name string
		tok  string
		ok   bool
	}{
		{"RS256", sign(t, jwt.SigningMethodRS256, rk, c), true},
		{"PS512", sign(t, jwt.SigningMethodPS512, rk, c), true},
		{"ES256", sign(t, jwt.SigningMethodES256, ek, c), true},
		{"HS256 with the RSA public key", sign(t, jwt.SigningMethodHS256, pubPEM, c), false},
		{"HS256 with the DER key", sign(t, jwt.SigningMethodHS256, der, c), false},
		{"ES384 on a P-256 key", sign(t, jwt.SigningMethodES384, ek384, c), false},
		{"none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, c), false},
	} {
		p, err := call(a, true, transport.Pairs("authorization", "Bearer "+tc.tok))
		if tc.ok != (err == nil) || (tc.ok && p.Subject != "ada") {
			t.Errorf("%s: principal %+v, err %v", tc.name, p, err)
		}
		if err != nil && strings.Contains(err.Error(), tc.tok) {
			t.Errorf("%s: error echoes the token", tc.name)
		}
	}

	// Narrowed to RS256 only.
	a, err = auth.New(auth.WithRSAPublicKey(&rk.PublicKey), auth.WithAlgorithms("RS256"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call(a, true, transport.Pairs("authorization", "Bearer "+sign(t, jwt.SigningMethodRS512, rk, c))); errs.CodeOf(err) != errs.Unauthenticated {
		t.Errorf("RS512 with only RS256 allowed: %v", err)
	}
}

func TestLeewayAndNotBefore(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a, err := auth.New(auth.WithHMACKey(secret), auth.WithLeeway(10*time.Second), auth.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	tok := func(exp, nbf time.Duration) transport.Metadata {
		return transport.Pairs("authorization", "Bearer "+sign(t, jwt.SigningMethodHS256, secret,
			jwt.MapClaims{"sub": "ada", "exp": now.Add(exp).Unix(), "nbf": now.Add(nbf).Unix()}))
	}
	for _, tc := range []struct {
		name     string
		exp, nbf time.Duration
		msg      string
	}{
		{"valid", time.Minute, -time.Minute, ""},
		{"expired within leeway", -5 * time.Second, -time.Minute, ""},
		{"expired", -20 * time.Second, -time.Minute, "token expired"},
		{"nbf within leeway", time.Minute, 5 * time.Second, ""},
		{"not yet valid", time.Minute, 20 * time.Second, "token not valid yet"},
	} {
		_, err := call(a, true, tok(tc.exp, tc.nbf))
		var e *errs.Error
		switch {
		case tc.msg == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.msg != "" && (!errors.As(err, &e) || e.Code() != errs.Unauthenticated || e.Message() != tc.msg):
			t.Errorf("%s: %v, want %s", tc.name, err, tc.msg)
		}
	}
}

func TestOptionalAndScopes(t *testing.T) {
	a, err := auth.New(auth.WithHMACKey(secret))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := call(a, false, nil); err != nil || p.Subject != "" {
		t.Errorf("optional without credentials: %+v %v", p, err)
	}
	if _, err := call(a, false, transport.Pairs("authorization", "Bearer junk")); errs.CodeOf(err) != errs.Unauthenticated {
		t.Errorf("optional with a bad token: %v", err)
	}
	if _, err := call(a, false, transport.Pairs("x-api-key", apiKey)); errs.CodeOf(err) != errs.Unauthenticated {
		t.Errorf("api key with none configured: %v", err)
	}
	c := claims("ada", time.Minute)
	c["scope"] = nil
	c["scp"] = []any{"a", "b"}
	md := transport.Pairs("authorization", "bearer "+sign(t, jwt.SigningMethodHS256, secret, c))

	scoped := func(scopes ...string) error {
		h := a.Require()(auth.RequireScopes(scopes...)(func(ctx context.Context, req any) (any, error) { return nil, nil }))
		_, err := h(transport.NewCallContext(context.Background(), &transport.Call{Kind: transport.GRPC, Request: md}), nil)
		return err
	}
	if err := scoped("a", "b"); err != nil {
		t.Errorf("scopes a b: %v", err)
	}
	if err := scoped("c"); errs.CodeOf(err) != errs.PermissionDenied {
		t.Errorf("scope c: %v", err)
	}
	h := auth.RequireScopes("a")(func(ctx context.Context, req any) (any, error) { return nil, nil })
	if _, err := h(context.Background(), nil); errs.CodeOf(err) != errs.Unauthenticated {
		t.Errorf("no principal: %v", err)
	}
}

func TestWWWAuthenticate(t *testing.T) {
	a, _ := auth.New(auth.WithHMACKey(secret))
	reply := transport.Metadata{}
	ctx := transport.NewCallContext(context.Background(), &transport.Call{Kind: transport.HTTP, Reply: reply})
	_, err := a.Require()(func(ctx context.Context, req any) (any, error) { return nil, nil })(ctx, nil)
	if errs.CodeOf(err) != errs.Unauthenticated || !strings.HasPrefix(reply.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("err %v, reply %v", err, reply)
	}
}

func TestInvalidOptions(t *testing.T) {
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	for name, opts := range map[string][]auth.Option{
		"nothing":         nil,
		"short hmac":      {auth.WithHMACKey([]byte("short"))},
		"nil rsa":         {auth.WithRSAPublicKey(nil)},
		"small rsa":       {auth.WithRSAPublicKey(&smallRSA.PublicKey)},
		"nil ecdsa":       {auth.WithECDSAPublicKey(nil)},
		"p224":            {auth.WithECDSAPublicKey(&p224.PublicKey)},
		"alg none":        {auth.WithHMACKey(secret), auth.WithAlgorithms("none")},
		"unknown alg":     {auth.WithHMACKey(secret), auth.WithAlgorithms("HS1024")},
		"alg without key": {auth.WithHMACKey(secret), auth.WithAlgorithms("RS256")},
		"empty algs":      {auth.WithHMACKey(secret), auth.WithAlgorithms()},
		"keyfunc no algs": {auth.WithKeyfunc(func(*jwt.Token) (any, error) { return secret, nil })},
		"nil keyfunc":     {auth.WithKeyfunc(nil, "HS256")},
		"negative leeway": {auth.WithHMACKey(secret), auth.WithLeeway(-time.Second)},
		"empty issuer":    {auth.WithHMACKey(secret), auth.WithIssuer("")},
		"empty audience":  {auth.WithHMACKey(secret), auth.WithAudience()},
		"nil clock":       {auth.WithHMACKey(secret), auth.WithClock(nil)},
		"short api key":   {auth.WithAPIKeys(map[string]string{"abc": "x"})},
		"no subject":      {auth.WithAPIKey(apiKey, auth.Principal{})},
		"bad header":      {auth.WithHMACKey(secret), auth.WithAPIKeyHeader("Authorization")},
		"bad public":      {auth.WithHMACKey(secret), auth.WithPublic("svc/")},
	} {
		if a, err := auth.New(opts...); err == nil || a != nil {
			t.Errorf("%s: New = %v, %v; want an error", name, a, err)
		}
	}
	// A keyfunc with explicit algorithms is fine, and nil options are skipped.
	if _, err := auth.New(nil, auth.WithKeyfunc(func(*jwt.Token) (any, error) { return secret, nil }, "HS256")); err != nil {
		t.Error(err)
	}
}
