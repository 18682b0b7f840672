package protostruct_test

import (
	"fmt"
	"reflect"
	"time"

	"github.com/ferry-go/ferry/codec/protostruct"
	"google.golang.org/protobuf/reflect/protoreflect"
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

func ExamplePrint() {
	fd, err := protostruct.File("ferry/greeter.proto", "greeter", "Greeter", []protostruct.Method{
		{Name: "Hello", Input: reflect.TypeFor[HelloRequest](), Output: reflect.TypeFor[HelloReply]()},
		{Name: "Watch", Input: reflect.TypeFor[HelloRequest](), Output: reflect.TypeFor[HelloReply](), ServerStreaming: true},
	})
	if err != nil {
		panic(err)
	}
	src, err := protostruct.Print(fd)
	if err != nil {
		panic(err)
	}
	fmt.Print(string(src))
	// Output:
	// syntax = "proto3";
	//
	// package greeter;
	//
	// import "google/protobuf/timestamp.proto";
	//
	// message HelloRequest {
	//   string name = 1;
	//   int32 times = 2;
	//   optional string lang = 3 [json_name = "Lang"];
	// }
	//
	// message HelloReply {
	//   string message = 1;
	//   google.protobuf.Timestamp at = 2;
	//   map<string, string> tags = 3;
	// }
	//
	// service Greeter {
	//   rpc Hello(HelloRequest) returns (HelloReply);
	//   rpc Watch(HelloRequest) returns (stream HelloReply);
	// }
}

func ExampleCompare() {
	type v1 struct {
		Name  string `json:"name"`
		Times int32  `json:"times"`
	}
	type v2 struct { // fields swapped, one added
		Times int32  `json:"times"`
		Name  string `json:"name"`
		Lang  string `json:"lang"`
	}
	file := func(req reflect.Type) protoreflect.FileDescriptor {
		fd, err := protostruct.File("ferry/greeter.proto", "greeter", "Greeter", []protostruct.Method{
			{Name: "Hello", Input: req, Output: reflect.TypeFor[HelloReply]()},
		})
		if err != nil {
			panic(err)
		}
		return fd
	}
	for _, c := range protostruct.Compare(file(reflect.TypeFor[v1]()), file(reflect.TypeFor[v2]())) {
		fmt.Println(c)
	}
	// Output:
	// compatible: method greeter.Greeter.Hello input is now greeter.v2 (was greeter.v1); compared field by field
	// breaking: field name of message greeter.v2 (was greeter.v1) changed number 1 → 2
	// breaking: field times of message greeter.v2 (was greeter.v1) changed number 2 → 1
	// compatible: field string lang = 3 added to message greeter.v2 (was greeter.v1)
}
