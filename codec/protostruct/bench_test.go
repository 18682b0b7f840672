package protostruct_test

import (
	"testing"

	"github.com/ferry-go/ferry/codec/protostruct"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/apipb"
	"google.golang.org/protobuf/types/known/typepb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Method, Option and Any mirror google.protobuf.Method and friends
// field for field, to compare with generated code.
type Method struct {
	Name              string    `json:"name"`
	RequestTypeURL    string    `json:"requestTypeUrl"`
	RequestStreaming  bool      `json:"requestStreaming"`
	ResponseTypeURL   string    `json:"responseTypeUrl"`
	ResponseStreaming bool      `json:"responseStreaming"`
	Options           []*Option `json:"options"`
	Syntax            int32     `json:"syntax"`
}

type Option struct {
	Name  string `json:"name"`
	Value *Any   `json:"value"`
}

type Any struct {
	TypeURL string `json:"typeUrl"`
	Value   []byte `json:"value"`
}

type StringValue struct {
	Value string `json:"value"`
}

func plainMethod() *Method {
	return &Method{
		Name: "Hello", RequestTypeURL: "type.googleapis.com/greeter.HelloRequest", RequestStreaming: true,
		ResponseTypeURL: "type.googleapis.com/greeter.HelloReply",
		Options: []*Option{
			{Name: "deprecated", Value: &Any{TypeURL: "type.googleapis.com/google.protobuf.BoolValue", Value: []byte{8, 1}}},
			{Name: "idempotency_level", Value: &Any{TypeURL: "t", Value: []byte{8, 2}}},
		},
		Syntax: 1,
	}
}

func generatedMethod() *apipb.Method {
	return &apipb.Method{
		Name: "Hello", RequestTypeUrl: "type.googleapis.com/greeter.HelloRequest", RequestStreaming: true,
		ResponseTypeUrl: "type.googleapis.com/greeter.HelloReply",
		Options: []*typepb.Option{
			{Name: "deprecated", Value: &anypb.Any{TypeUrl: "type.googleapis.com/google.protobuf.BoolValue", Value: []byte{8, 1}}},
			{Name: "idempotency_level", Value: &anypb.Any{TypeUrl: "t", Value: []byte{8, 2}}},
		},
		Syntax: typepb.Syntax_SYNTAX_PROTO3,
	}
}

// TestMatchesGenerated checks byte-for-byte equality with generated code
// for the same schema.
func TestMatchesGenerated(t *testing.T) {
	tests := []struct {
		name  string
		plain any
		gen   proto.Message
	}{
		{"method", plainMethod(), generatedMethod()},
		{"empty method", &Method{}, &apipb.Method{}},
		{"string value", &StringValue{Value: "hello"}, wrapperspb.String("hello")},
	}
	for _, tt := range tests {
		got, err := protostruct.Marshal(tt.plain)
		if err != nil {
			t.Fatal(err)
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(tt.gen)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("Marshal(%s) = % x, want % x", tt.name, got, want)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	b.Run("small/protostruct", func(b *testing.B) { benchMarshal(b, &StringValue{Value: "hello"}) })
	b.Run("small/proto", func(b *testing.B) { benchMarshal(b, wrapperspb.String("hello")) })
	b.Run("method/protostruct", func(b *testing.B) { benchMarshal(b, plainMethod()) })
	b.Run("method/proto", func(b *testing.B) { benchMarshal(b, generatedMethod()) })
	b.Run("rich/protostruct", func(b *testing.B) { benchMarshal(b, fullRich()) })
}

func benchMarshal(b *testing.B, v any) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := protostruct.Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	small, _ := protostruct.Marshal(&StringValue{Value: "hello"})
	method, _ := protostruct.Marshal(plainMethod())
	rich, _ := protostruct.Marshal(fullRich())
	b.Run("small/protostruct", func(b *testing.B) { benchUnmarshal(b, small, new(StringValue)) })
	b.Run("small/proto", func(b *testing.B) { benchUnmarshal(b, small, new(wrapperspb.StringValue)) })
	b.Run("method/protostruct", func(b *testing.B) { benchUnmarshal(b, method, new(Method)) })
	b.Run("method/proto", func(b *testing.B) { benchUnmarshal(b, method, new(apipb.Method)) })
	b.Run("rich/protostruct", func(b *testing.B) { benchUnmarshal(b, rich, new(Rich)) })
}

func benchUnmarshal(b *testing.B, data []byte, v any) {
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := protostruct.Unmarshal(data, v); err != nil {
			b.Fatal(err)
		}
	}
}
