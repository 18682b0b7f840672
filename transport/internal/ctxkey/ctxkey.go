// Package ctxkey holds the context keys the transport package shares with
// callkit, so that the user-facing half (transport.CaptureReply) and the
// implementer-facing half (callkit.ReplySink) meet without exporting a key.
package ctxkey

// ReplySink is the context key of the *transport.Metadata that
// transport.CaptureReply asks reply metadata to be stored in.
type ReplySink struct{}
