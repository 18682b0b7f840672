// Package dashboard is Ferry's live development dashboard: the services a
// registry lists, their endpoints and schemas, live figures, an API
// explorer and the traces of dev/traces, in the browser.
//
// See the end of this comment for the full description; it is filled in
// below.
package dashboard
