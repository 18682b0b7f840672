package protostruct

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// fieldError is a failure at a field path. The path is built while the
// error travels up through the enclosing messages, so the happy path never
// pays for it.
type fieldError struct {
	path   string
	reason string
}

func (e *fieldError) Error() string {
	if e.path == "" {
		return e.reason
	}
	return e.path + ": " + e.reason
}

// atField returns err with its path prefixed by the field name. It copies:
// a plan's error is shared through the cache.
func atField(err error, name string) *fieldError {
	fe, ok := err.(*fieldError)
	if !ok {
		return &fieldError{path: name, reason: err.Error()}
	}
	if fe.path == "" {
		return &fieldError{path: name, reason: fe.reason}
	}
	return &fieldError{path: name + "." + fe.path, reason: fe.reason}
}

var errFieldNumber = errors.New("invalid field number")

func wireTypeError(got, want protowire.Type) error {
	return &fieldError{reason: wireTypeReason(got, want)}
}

func wireTypeReason(got, want protowire.Type) string {
	return "wrong wire type " + wireTypeName(got) + ", want " + wireTypeName(want)
}

func wireTypeName(t protowire.Type) string {
	switch t {
	case protowire.VarintType:
		return "varint"
	case protowire.Fixed32Type:
		return "fixed32"
	case protowire.Fixed64Type:
		return "fixed64"
	case protowire.BytesType:
		return "length-delimited"
	case protowire.StartGroupType:
		return "start-group"
	case protowire.EndGroupType:
		return "end-group"
	}
	return "reserved"
}
