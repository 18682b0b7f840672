// Package timeout is Ferry middleware that bounds how long a handler may
// run, on every transport and for events.
//
//	srv := server.New("orders", server.WithMiddleware(timeout.New(2*time.Second)))
//	server.Handle(srv, "Report", report, server.WithEndpointMiddleware(timeout.New(30*time.Second)))
//
// The handler's context gets a deadline d from now, or keeps the incoming
// one (grpc-timeout, Ferry-Timeout-Ms, the transport default) when that is
// earlier: a timeout never extends what the caller allows. The call's
// transport.Call.Deadline is moved earlier to match, so middleware after it
// and outgoing calls see the bound. A handler that honours its context then
// ends with errs.DeadlineExceeded. The middleware starts no goroutine, so a
// handler that ignores its context is not interrupted.
//
// As an endpoint middleware, the endpoint's own timeout applies inside a
// server-wide one; the earlier deadline wins.
package timeout
