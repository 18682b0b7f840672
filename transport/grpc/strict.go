package grpc

import (
	"fmt"

	"github.com/ferry-go/ferry/codec/protostruct"
	"github.com/ferry-go/ferry/server"
)

// WithStrictFieldNumbers makes Start refuse a service unless every field of
// every plain-struct request and reply type, and of every struct they
// reach, pins its protobuf number with a `pb:"N"` tag (a reserving blank
// field with `pb:"N,reserved"`). Without it a field's number is its
// position in the struct, and reordering or removing fields renumbers the
// ones after it: a wire break that compiles. Generated protobuf messages
// are not looked into. The error names the endpoint, the Go type and the
// field, and its details list every field lacking a tag.
func WithStrictFieldNumbers() ServerOption {
	return func(c *serverConfig) { c.strictNumbers = true }
}

// checkTagged is WithStrictFieldNumbers' check of s's endpoint types.
func checkTagged(s *server.Server) error {
	for _, ep := range s.Endpoints() {
		if !isMessage(ep.RequestType) {
			if err := protostruct.CheckTagged(ep.RequestType); err != nil {
				return fmt.Errorf("grpc: endpoint %q: request: %w", ep.Name, err)
			}
		}
		if !isMessage(ep.ResponseType) {
			if err := protostruct.CheckTagged(ep.ResponseType); err != nil {
				return fmt.Errorf("grpc: endpoint %q: response: %w", ep.Name, err)
			}
		}
	}
	return nil
}
