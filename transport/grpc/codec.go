package grpc

import (
	"encoding/json"

	"github.com/ferry-go/ferry/codec"
	"google.golang.org/grpc/encoding"
	// Registers grpc-go's gzip compressor in grpc-go's compressor table (its
	// one way to offer one), so the server accepts gzip requests and answers
	// them compressed, and the client can send them (WithCompression).
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// wireCodec is the "proto" codec forced on both sides: generated messages
// go through proto (as grpc-go's own codec does, pooling large buffers), and
// plain structs through codec.Proto, so health, reflection and Ferry
// endpoints share one server.
type wireCodec struct{}

var _ encoding.CodecV2 = wireCodec{}

// Name is the content-subtype; "proto" keeps us compatible with every gRPC
// client.
func (wireCodec) Name() string { return "proto" }

var cachedSize = proto.MarshalOptions{UseCachedSize: true}

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		if e, ok := v.(encoded); ok {
			return mem.BufferSlice{mem.SliceBuffer(e)}, nil
		}
		b, err := codec.Proto.Marshal(v)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	// Size first so that UseCachedSize is safe and the pooled buffer fits.
	size := proto.Size(m)
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := cachedSize.MarshalAppend(make([]byte, 0, size), m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	b, err := cachedSize.MarshalAppend((*buf)[:0], m)
	if err != nil {
		pool.Put(buf)
		return nil, err
	}
	*buf = b
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if f, ok := v.(*frame); ok {
		// Keep the bytes past this call; the server handler decodes them
		// itself so a bad body can be told apart from a transport error.
		data.Ref()
		f.data = data
		return nil
	}
	return unmarshal(data, v)
}

// unmarshal decodes data into v without copying when data is one buffer,
// the common case for small messages.
func unmarshal(data mem.BufferSlice, v any) error {
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		defer buf.Free()
		b = buf.ReadOnlyData()
	}
	if m, ok := v.(proto.Message); ok {
		return proto.Unmarshal(b, m)
	}
	return codec.Proto.Unmarshal(b, v)
}

// frame receives a request's undecoded bytes on the server.
type frame struct {
	data mem.BufferSlice
}

// encoded is a reply the server handler has encoded already: the JSON of a
// grpc+json call. wireCodec sends its bytes as they are.
type encoded []byte

// jsonSubtype is the content-subtype of JSON calls: application/grpc+json.
const jsonSubtype = "json"

// jsonCodec is the codec Client forces for a call whose request is a
// json.RawMessage: the content-subtype is "json", the raw request goes out
// byte for byte, a *json.RawMessage reply receives the server's bytes, and
// other values go through codec.JSON.
type jsonCodec struct{}

var _ encoding.CodecV2 = jsonCodec{}

func (jsonCodec) Name() string { return jsonSubtype }

func (jsonCodec) Marshal(v any) (mem.BufferSlice, error) {
	var b []byte
	switch v := v.(type) {
	// A copy: grpc-go may still hold the message once Invoke has
	// returned (a canceled call's queued frames), and the caller may reuse
	// its bytes by then (the gateway does).
	case json.RawMessage:
		b = append([]byte(nil), v...)
	case *json.RawMessage:
		b = append([]byte(nil), *v...)
	default:
		var err error
		if b, err = codec.JSON.Marshal(v); err != nil {
			return nil, err
		}
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (jsonCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*json.RawMessage); ok {
		*r = data.Materialize() // a copy: data goes back to its pool
		return nil
	}
	return decodeJSON(codec.JSON, data, v)
}

// decodeJSON decodes data into v with c. An empty message leaves v zero,
// as an empty body does over HTTP. codec.JSON copies what it keeps, so it
// reads a received buffer in place; any other codec (server.WithJSON's)
// gets its own copy, as on the HTTP transport.
func decodeJSON(c codec.Codec, data mem.BufferSlice, v any) error {
	if data.Len() == 0 {
		return nil
	}
	if len(data) == 1 && c == codec.JSON {
		return c.Unmarshal(data[0].ReadOnlyData(), v)
	}
	return c.Unmarshal(data.Materialize(), v)
}
