package protostruct_test

import (
	"fmt"
	"reflect"
	"time"

	"github.com/ferry-go/ferry/codec/protostruct"
)

type HelloRequest struct {
	Name  string `json:"name"`
	Times int32  `json:"times,omitempty"`
	Lang  *string
}

type HelloReply struct {
	Message string            `json:"message"`
	At      time.Time         `json:"at"`
	Tags    map[string]string `json:"tags,omitempty"`
}

func Example() {
	b, err := protostruct.Marshal(&HelloRequest{Name: "ferry", Times: 2})
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", b)

	var req HelloRequest
	if err := protostruct.Unmarshal(b, &req); err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", req)
	// Output:
	// 0a 05 66 65 72 72 79 10 02
	// {Name:ferry Times:2 Lang:<nil>}
}

func ExampleFile() {
	fd, err := protostruct.File("ferry/greeter.proto", "greeter", "Greeter", []protostruct.Method{{
		Name:   "Hello",
		Input:  reflect.TypeFor[HelloRequest](),
		Output: reflect.TypeFor[HelloReply](),
	}})
	if err != nil {
		panic(err)
	}
	m := fd.Services().Get(0).Methods().Get(0)
	fmt.Printf("rpc %s(%s) returns (%s)\n", m.Name(), m.Input().FullName(), m.Output().FullName())
	for i := range fd.Messages().Len() {
		md := fd.Messages().Get(i)
		fmt.Printf("message %s\n", md.Name())
		for j := range md.Fields().Len() {
			f := md.Fields().Get(j)
			typ := f.Kind().String()
			if f.IsMap() {
				typ = fmt.Sprintf("map<%s, %s>", f.MapKey().Kind(), f.MapValue().Kind())
			} else if f.Message() != nil {
				typ = string(f.Message().FullName())
			}
			opt := ""
			if f.HasOptionalKeyword() {
				opt = "optional "
			}
			fmt.Printf("  %s%s %s = %d; // json: %s\n", opt, typ, f.Name(), f.Number(), f.JSONName())
		}
	}
	// Output:
	// rpc Hello(greeter.HelloRequest) returns (greeter.HelloReply)
	// message HelloRequest
	//   string name = 1; // json: name
	//   int32 times = 2; // json: times
	//   optional string lang = 3; // json: Lang
	// message HelloReply
	//   string message = 1; // json: message
	//   google.protobuf.Timestamp at = 2; // json: at
	//   map<string, string> tags = 3; // json: tags
}
