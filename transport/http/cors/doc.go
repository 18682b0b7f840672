// Package cors is an HTTP-tier filter that answers CORS preflight requests
// and adds the CORS headers to actual requests, so browsers on other
// origins can call a Ferry service over HTTP.
//
// It is a filter, not a Ferry middleware: it wraps the HTTP server's
// http.Handler and sees raw HTTP requests before routing and decoding.
// Plug it with fhttp.WithFilter; gRPC and NATS are unaffected (browsers
// reach them through other means, and CORS means nothing to them).
//
//	filter, err := cors.New(cors.Options{
//		AllowedOrigins:   []string{"https://app.example.com", "https://*.example.org"},
//		AllowedHeaders:   []string{"Authorization", "Content-Type", "X-Request-Id"},
//		ExposedHeaders:   []string{"X-Request-Id", "Retry-After"},
//		AllowCredentials: true,
//		MaxAge:           10 * time.Minute,
//	})
//	if err != nil { ... }
//	h := fhttp.NewServer(":8080", fhttp.WithFilter(filter))
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
// answered by the filter itself with 204: with the Access-Control-Allow-*
// headers when origin, method and requested headers are all allowed, and
// without them otherwise, which makes the browser refuse the call. Other
// requests go on to the service; when their Origin is allowed the reply
// carries Access-Control-Allow-Origin (and -Credentials, -Expose-Headers).
// Every reply that depends on Origin says "Vary: Origin", so caches keep
// the answers apart.
//
// Defaults: methods GET, HEAD, POST, PUT, PATCH, DELETE; headers
// Content-Type, Authorization, X-Request-Id, X-Api-Key, Ferry-Timeout-Ms
// (the deadline header Ferry's clients send) and Ferry-Transport (the
// gateway's transport pin); no
// credentials; no max age (the browser's default).
package cors
