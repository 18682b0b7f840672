// Package protostruct derives a protobuf schema from plain Go struct types
// and encodes and decodes them in the protobuf wire format, so a handler
// written with ordinary structs can be served over gRPC and called by
// standard tools (grpcurl via server reflection) with no .proto file.
//
// [File] describes a service as a proto3 file descriptor; [Marshal] and
// [Unmarshal] produce and read exactly the bytes the protobuf runtime
// produces and reads for that descriptor. The JSON field names in the
// descriptor are the encoding/json names, so protojson with the descriptor
// and encoding/json with the struct agree on field names (see the JSON notes
// below for where they cannot agree).
//
// # Mapping
//
// This mapping is a wire contract: changing a field's number or type breaks
// clients that were built against the old schema.
//
// Field numbers: a field's number is its 1-based position in the struct
// declaration, counting every field, exported or not, skipped or not. A tag
// `pb:"N"` overrides it. Add new fields at the end, or pin numbers with pb
// tags, so existing numbers never move. Duplicate numbers, numbers outside
// 1..536870911 and numbers in 19000..19999 (reserved by protobuf) are
// errors.
//
// Skipped fields: unexported fields, and fields tagged `json:"-"` or
// `pb:"-"`.
//
// Reserved numbers: a blank field tagged `pb:"reserved"` reserves its
// position's number, `pb:"N,reserved"` reserves N, in the message's
// reserved ranges; no field may use it. Replace a removed field with one to
// keep the numbers after it and retire its own:
//
//	type User struct {
//		Name  string   `json:"name"`
//		_     struct{} `pb:"reserved"` // was Email, number 2
//		Phone string   `json:"phone"`  // still 3
//	}
//
// Names: the protobuf field name is the json tag name when that is a valid
// protobuf identifier, else the snake_case form of the Go name (UserID →
// user_id). The descriptor's json_name is the json tag name, or the Go name
// when there is none, as encoding/json would use. Two fields with the same
// protobuf or JSON name are an error.
//
// Types:
//
//	bool                         bool
//	int8, int16, int32           int32
//	int, int64                   int64
//	uint8, uint16, uint32        uint32
//	uint, uint64                 uint64
//	float32, float64             float, double
//	string                       string (must be valid UTF-8)
//	[]byte                       bytes
//	time.Time                    google.protobuf.Timestamp
//	time.Duration                int64, in nanoseconds
//	struct, *struct              message named after the Go type
//	*scalar (e.g. *int32)        proto3 optional scalar (explicit presence)
//	[]T                          repeated T (numeric types packed)
//	[][]byte                     repeated bytes
//	[]struct, []*struct          repeated message
//	map[K]V, map[K]*V            map<K, V>; K a string, integer or bool type
//	generated message, *message  that message, by its own descriptor
//
// Named types map by their underlying kind (type Celsius float64 is a
// double). time.Duration is an int64 of nanoseconds, not
// google.protobuf.Duration, so its JSON stays what encoding/json writes (a
// number). Recursive types (type Node struct{ Kids []*Node }) are fine.
//
// Message names: a message is named after its Go type, with package paths
// and generic punctuation removed (Page[app.User] → Page_User). An
// anonymous struct is named after its use: <Method>Request or
// <Method>Response for a method's input or output, else
// <Message>_<Field>. A name taken by another type gets a numeric suffix
// (User2) in the order [File] first reaches the types, which is
// deterministic.
//
// Not supported, reported by [Check] and [File] with the field path: interface,
// chan, func, complex, uintptr and unsafe.Pointer types; arrays; slices of
// slices other than [][]byte; slices of maps; pointers to pointers, slices or
// maps; slices of pointers to scalars; map values that are slices, maps or
// pointers to scalars; map keys that are not strings, integers or bools;
// and embedded (anonymous) struct fields without a json tag name (with one,
// the field is an ordinary message field, not flattened).
//
// # .proto files and compatibility
//
// [Print] turns a file descriptor — one from [File], or any other, such as
// the well-known types' — into .proto source that compiles back to the
// same descriptor; transport/grpc's ProtoFile and `ferry proto export`
// use it, so clients in any language can be generated from a service
// written with plain structs.
//
// Because numbers follow declaration order, reordering, inserting or
// removing untagged fields renumbers the ones after them: the code still
// compiles, and clients built against the old schema misread every moved
// field. Two guards catch this:
//
//   - [Compare] reports the changes between two schemas, breaking or
//     compatible, message and field by field; [MarshalLock] and
//     [UnmarshalLock] keep a schema in a lock file (a FileDescriptorSet in
//     indented protojson) to compare against. `ferry schema check` and
//     ferrytest.SchemaLock fail on breaking changes.
//   - [CheckTagged], and transport/grpc's WithStrictFieldNumbers, refuse a
//     type unless every field reached carries an explicit `pb:"N"` tag, so
//     no number depends on the order of declaration.
//
// # Encoding
//
// Proto3 semantics apply. A scalar field holding its zero value is not
// written (implicit presence); a non-nil pointer to a scalar is written even
// when the value is zero. A struct-valued field is always written, like a
// set message field, and a time.Time field too (the zero time is written as
// 0001-01-01T00:00:00Z, as encoding/json writes it). Fields are written in
// field-number order; map entries in Go's map iteration order, so the output
// for maps is not deterministic. A nil element of a []*struct or a nil value
// in a map[K]*V is written as an empty message and so decodes as a pointer to
// a zero struct; a nil element of a [][]byte decodes as an empty slice. A
// nil []byte value in a map[K][]byte is written without its value, so it
// decodes as nil, and an empty one as empty.
//
// Decoding resets the target, skips unknown fields, accepts packed and
// unpacked encodings of repeated numbers, keeps the last value of a scalar
// seen twice, appends repeated values, merges messages, and replaces map
// entries with the same key. It rejects truncated data, a wrong wire type for
// a known field, strings that are not valid UTF-8, integers that do not fit
// the Go type (300 for an int8 field), and nesting deeper than [MaxDepth].
// Decoded strings and bytes never alias the input.
//
// # JSON
//
// For the same value, protojson with the descriptor from [File] and
// encoding/json agree on field names, nested objects, base64 bytes,
// RFC 3339 timestamps and map keys, with these exceptions, all accepted by
// protojson on input: protojson writes 64-bit integers as JSON strings, omits
// zero scalars and empty lists, and writes float specials as strings.
// Types with custom JSON methods (MarshalJSON, MarshalText) are mapped by
// their Go structure, which may not match their JSON form.
//
// # Performance
//
// The per-type plan (field offsets and encoder functions) is built once,
// on first use, and cached for the life of the process; encoding and
// decoding do no reflection except for maps, and Marshal allocates its
// output once, at its final size.
package protostruct
