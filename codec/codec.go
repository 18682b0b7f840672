// Package codec encodes and decodes request and reply values.
//
// Two codecs are built in, chosen by content type:
//
//   - JSON ("application/json"): protobuf messages go through protojson,
//     everything else through encoding/json and its struct tags. HTML
//     characters are not escaped ("a>b" stays "a>b", not "a\u003eb"): the
//     bytes are for APIs, not for inlining into HTML pages. Invalid UTF-8 is
//     refused, and an error quotes at most a short prefix of a bad value.
//     Unknown fields are ignored and keys match field names whatever their
//     case, as encoding/json does; NewJSON makes a codec that refuses both
//     (server.WithJSON puts it on every transport of a server).
//   - Proto ("application/protobuf"): protobuf messages through
//     proto.Marshal, plain Go structs through the schema derived from their
//     fields by package protostruct, so the same bytes are valid protobuf for
//     any standard tool.
//
// Codecs are stateless and safe for concurrent use.
package codec

import (
	"bytes"
	"encoding/json"
	"mime"
	"strings"
	"sync"

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
	return MarshalJSON(v)
}

// MarshalJSON is json.Marshal without HTML escaping: <, > and & are
// written as themselves. Transports use it for every JSON body they build.
func MarshalJSON(v any) ([]byte, error) {
	jb := jsonBufs.Get().(*jsonBuf)
	jb.buf.Reset()
	err := jb.enc.Encode(v)
	var out []byte
	if err == nil {
		b := jb.buf.Bytes()
		out = append([]byte(nil), b[:len(b)-1]...) // without Encode's newline
	}
	if jb.buf.Cap() <= maxPooledJSON {
		jsonBufs.Put(jb)
	}
	return out, err
}

// maxPooledJSON bounds the buffers kept for reuse, so one huge reply does
// not pin its memory.
const maxPooledJSON = 64 << 10

type jsonBuf struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonBufs = sync.Pool{New: func() any {
	jb := new(jsonBuf)
	jb.enc = json.NewEncoder(&jb.buf)
	jb.enc.SetEscapeHTML(false)
	return jb
}}

func (jsonCodec) Unmarshal(data []byte, v any) error {
	if err := checkUTF8(data); err != nil {
		return err
	}
	if m, ok := v.(proto.Message); ok {
		return jsonError(protojsonUnmarshal.Unmarshal(data, m))
	}
	return jsonError(json.Unmarshal(data, v))
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
