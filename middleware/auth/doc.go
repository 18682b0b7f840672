// Package auth is Ferry middleware that authenticates calls by bearer JWT
// (github.com/golang-jwt/jwt/v5) or API key, on every transport, and puts
// the caller's Principal in the handler's context.
//
// Credentials come from the call's request metadata (transport.Call.Request),
// which is the HTTP request headers, gRPC metadata or NATS message headers:
//
//	authorization: Bearer <JWT>
//	x-api-key: <key>
//
// Build an Authenticator once with the keys it trusts, then use its
// middleware:
//
//	a, err := auth.New(
//		auth.WithHMACKey(secret),                 // HS256, HS384, HS512
//		auth.WithIssuer("https://id.example.com"),
//		auth.WithAudience("orders"),
//		auth.WithAPIKeys(map[string]string{os.Getenv("OPS_KEY"): "ops"}),
//		auth.WithPublic("Health"),                // exempt from Require
//	)
//	if err != nil { ... }
//	srv := server.New("orders", server.WithMiddleware(a.Require())) // deny by default
//	server.Handle(srv, "Place", place, server.WithEndpointMiddleware(auth.RequireScopes("orders:write")))
//
//	func place(ctx context.Context, req *PlaceOrder) (*Placed, error) {
//		p, _ := auth.PrincipalFromContext(ctx)
//		... p.Subject ...
//	}
//
// Require rejects a call without credentials, except on endpoints named by
// WithPublic; Optional lets it through without a Principal. Both reject
// credentials that are present but wrong. Use Optional server-wide and
// Require per endpoint (server.WithEndpointMiddleware) for the opposite
// default.
//
// Security properties:
//   - Allowed signing algorithms are explicit: each key option allows only
//     its own family (HMAC keys HS*, RSA keys RS* and PS*, an ECDSA key the
//     one ES* that matches its curve), narrowed further by WithAlgorithms,
//     and enforced with jwt.WithValidMethods. "alg": "none" is always
//     rejected, and a token whose algorithm does not match the key's type
//     (the HS256-signed-with-the-RSA-public-key confusion) is rejected.
//   - exp is required and checked, as is nbf when present, with a small
//     leeway (30 s by default, WithLeeway).
//   - Every failure is errs.Unauthenticated with a fixed message ("missing
//     credentials", "invalid token", "token expired", "invalid API key");
//     no message ever contains the presented token or key, and the package
//     logs nothing. On HTTP a WWW-Authenticate: Bearer reply header is set.
//   - API keys are looked up by their SHA-256 digest, so the key table holds
//     no plaintext keys and the look-up does not compare secrets byte by
//     byte.
//
// Deliveries of broker subscriptions run the same middleware with the
// message headers as request metadata, so events carrying an authorization
// header are authenticated the same way.
//
// Require and Optional check calls where they arrive: on a client call
// (Call.Client) they do nothing. Client side, Bearer, BearerFunc and APIKey
// add the credentials to outgoing calls.
package auth
