// Package codec encodes and decodes request and reply values.
//
// Two codecs are built in, chosen by content type:
//
//   - JSON ("application/json"): protobuf messages go through protojson,
//     everything else through encoding/json and its struct tags.
//   - Proto ("application/protobuf"): protobuf messages through
//     proto.Marshal, plain Go structs through the schema derived from their
//     fields by package protostruct, so the same bytes are valid protobuf for
//     any standard tool.
//
// Codecs are stateless and safe for concurrent use.
package codec

import (
	"encoding/json"
	"mime"
	"strings"

	"github.com/ferry-go/ferry/codec/protostruct"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Codec marshals values to bytes and back.
type Codec interface {
	// Name is the codec's short name ("json", "proto"); the gRPC transport
	// uses it as the content-subtype.
	Name() string
	// ContentType is the MIME type the codec writes.
	ContentType() string
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, a pointer.
	Unmarshal(data []byte, v any) error
}

// JSON is the JSON codec.
var JSON Codec = jsonCodec{}

// Proto is the protobuf codec.
var Proto Codec = protoCodec{}

// ForContentType returns the codec for a Content-Type header value
// (parameters such as charset are ignored). "application/x-protobuf" and
// "application/proto" are accepted for protobuf.
func ForContentType(ct string) (Codec, bool) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(ct))
	}
	switch mt {
	case "application/json":
		return JSON, true
	case "application/protobuf", "application/x-protobuf", "application/proto", "application/vnd.google.protobuf":
		return Proto, true
	}
	return nil, false
}

type jsonCodec struct{}

var protojsonUnmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}

func (jsonCodec) Name() string        { return "json" }
func (jsonCodec) ContentType() string { return "application/json" }

func (jsonCodec) Marshal(v any) ([]byte, error) {
	if m, ok := v.(proto.Message); ok {
		return protojson.Marshal(m)
	}
	return json.Marshal(v)
}

func (jsonCodec) Unmarshal(data []byte, v any) error {
	if m, ok := v.(proto.Message); ok {
		return protojsonUnmarshal.Unmarshal(data, m)
	}
	return json.Unmarshal(data, v)
}

type protoCodec struct{}

func (protoCodec) Name() string        { return "proto" }
func (protoCodec) ContentType() string { return "application/protobuf" }

func (protoCodec) Marshal(v any) ([]byte, error) {
	if m, ok := v.(proto.Message); ok {
		return proto.Marshal(m)
	}
	return protostruct.Marshal(v)
}

func (protoCodec) Unmarshal(data []byte, v any) error {
	if m, ok := v.(proto.Message); ok {
		return proto.Unmarshal(data, m)
	}
	return protostruct.Unmarshal(data, v)
}
