package schema_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/ferry-go/ferry/schema"
)

type CreateUser struct {
	Name  string   `json:"name" validate:"required,max=40"`
	Email string   `json:"email" validate:"required,email"`
	Role  string   `json:"role,omitempty" validate:"omitempty,oneof=admin member"`
	Tags  []string `json:"tags,omitempty"`
}

type User struct {
	ID      int64  `json:"id"`
	Manager *User  `json:"manager,omitempty"`
	Name    string `json:"name"`
}

func ExampleDocument() {
	b, err := schema.Document(reflect.TypeFor[*CreateUser]())
	if err != nil {
		panic(err)
	}
	var out bytes.Buffer
	json.Indent(&out, b, "", "  ")
	fmt.Println(out.String())
	// Output:
	// {
	//   "$schema": "https://json-schema.org/draft/2020-12/schema",
	//   "$ref": "#/$defs/CreateUser",
	//   "$defs": {
	//     "CreateUser": {
	//       "type": "object",
	//       "properties": {
	//         "name": {
	//           "type": "string",
	//           "minLength": 1,
	//           "maxLength": 40,
	//           "x-validate": "required,max=40"
	//         },
	//         "email": {
	//           "type": "string",
	//           "format": "email",
	//           "minLength": 1,
	//           "x-validate": "required,email"
	//         },
	//         "role": {
	//           "type": "string",
	//           "anyOf": [
	//             {
	//               "const": ""
	//             },
	//             {
	//               "enum": [
	//                 "admin",
	//                 "member"
	//               ]
	//             }
	//           ],
	//           "x-validate": "omitempty,oneof=admin member"
	//         },
	//         "tags": {
	//           "type": [
	//             "array",
	//             "null"
	//           ],
	//           "items": {
	//             "type": "string"
	//           }
	//         }
	//       },
	//       "required": [
	//         "name",
	//         "email"
	//       ],
	//       "additionalProperties": false
	//     }
	//   }
	// }
}

// The API explorer pre-fills a request body from the schema.
func ExampleExample() {
	doc, err := schema.For(reflect.TypeFor[CreateUser]())
	if err != nil {
		panic(err)
	}
	body, err := schema.Example(doc)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(body))
	// Output:
	// {"name":"a","email":"user@example.com","role":"","tags":[""]}
}

// One generator for several types shares their definitions, here as the
// components of an OpenAPI 3.1 document; a recursive type refers to
// itself.
func ExampleGenerator() {
	g := schema.NewGenerator(schema.WithRefPrefix("#/components/schemas/"))
	req, _ := g.Ref(reflect.TypeFor[CreateUser]())
	resp, _ := g.Ref(reflect.TypeFor[User]())
	fmt.Println(req.Ref)
	fmt.Println(resp.Ref)
	defs := g.Defs()
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		fmt.Println(name)
	}
	manager, _ := json.Marshal(defs["User"].Property("manager"))
	fmt.Println(string(manager))
	// Output:
	// #/components/schemas/CreateUser
	// #/components/schemas/User
	// CreateUser
	// User
	// {"anyOf":[{"$ref":"#/components/schemas/User"},{"type":"null"}]}
}

// The metadata a service registers for the dashboard.
func ExampleForEndpoint() {
	e, err := schema.ForEndpoint(reflect.TypeFor[*CreateUser](), reflect.TypeFor[*User]())
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(map[string]schema.Endpoint{"CreateUser": e})
	fmt.Println(len(b) > 0, e.Request.Ref, e.Response.Ref)
	// Output:
	// true #/$defs/CreateUser #/$defs/User
}
