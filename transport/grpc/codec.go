package grpc

import (
	"github.com/ferry-go/ferry/codec"
	"google.golang.org/grpc/encoding"
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
