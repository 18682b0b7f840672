// Package schema derives JSON Schema (draft 2020-12) documents from the Go
// types of endpoints' requests and replies: what the developer dashboard
// shows in its catalogue, what its API explorer pre-fills a body from
// (Example), and the components of an OpenAPI 3.1 export (Generator with
// WithRefPrefix).
//
// A schema describes the JSON Ferry's codec writes, and so reads:
//
//   - Plain Go types as encoding/json writes them: fields by json tag name
//     or Go name, `json:"-"` and unexported fields left out, embedded
//     structs promoted with encoding/json's rules for clashing names, the
//     ",string" option, pointers, slices and maps nullable (nil is null),
//     []byte a base64 string, time.Time a date-time string, time.Duration
//     an integer of nanoseconds, maps with string, integer or
//     TextMarshaler keys objects, any and json.RawMessage and other
//     json.Marshalers any value, other TextMarshalers strings. Named
//     struct types are definitions in "$defs", so recursive types work.
//     Marshal methods with pointer receivers count, as they do for values
//     reached through a pointer, which is how Ferry encodes replies.
//   - A protobuf message (at the top; Ferry's codec hands it to protojson)
//     from its descriptor, as protojson writes it: see Generator.Message.
//     A message inside a plain struct is written by encoding/json, field
//     by field, and described so.
//
// Objects are closed ("additionalProperties": false): encoding/json never
// writes other members. The codec ignores unknown members when it reads
// (and matches names case-insensitively), so a schema is stricter than
// the default decoder there; it is never stricter than the validator.
//
// # Validation rules
//
// A field's validate tag (go-playground/validator, which middleware/validate
// runs) is kept verbatim under "x-validate", and its common rules become
// keywords: required (the field is listed in "required"; a string must be
// non-empty, a number non-zero, a bool true, a pointer, slice, map or
// interface non-null), min, max, len, eq, ne, gt, gte, lt and lte (lengths
// of strings, arrays and objects; bounds of numbers, with durations such as
// "1s" read as the validator reads them), oneof (an enum, typed like the
// field), unique, email, url, uri, uuid, uuid4, hostname, ip, ipv4, ipv6,
// datetime (RFC 3339 and date-only layouts), alpha, alphanum, numeric,
// number, hexadecimal, ascii, printascii, e164, hexcolor, contains,
// startswith, endswith, json and base64. "dive" applies the rules after it
// to elements and map values, "keys…endkeys" to map keys; omitempty,
// omitnil and omitzero exempt the zero value (as an anyOf with it); "|"
// alternatives become anyOf when every alternative has a keyword, and
// nothing otherwise. Rules without an exact keyword (lowercase, the
// cross-field rules, custom validations) and unknown ones only stay in
// "x-validate"; no tag makes the package fail. The rules of a struct type
// are part of its definition, though the validator skips elements of a
// slice or map that has no "dive".
package schema
