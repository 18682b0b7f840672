package protostruct

import (
	"reflect"
	"unsafe"

	"github.com/ferry-go/ferry/errs"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Marshal encodes v, a *T or a T with T a struct type, in the protobuf wire
// format of the message File derives for T. A nil *T encodes as an empty
// message. Generated protobuf messages are encoded with proto.Marshal. Pass a
// pointer: a T by value is copied first.
//
// Errors are *errs.Error: InvalidArgument when a value cannot be encoded (a
// string that is not valid UTF-8, nesting deeper than MaxDepth), with the
// field's JSON path in the details; Internal when T cannot be mapped.
func Marshal(v any) ([]byte, error) {
	if m, ok := v.(proto.Message); ok {
		b, err := proto.Marshal(m)
		if err != nil {
			return nil, errs.Wrap(errs.InvalidArgument, err)
		}
		return b, nil
	}
	rv := reflect.ValueOf(v)
	var p unsafe.Pointer
	switch {
	case rv.Kind() == reflect.Pointer && rv.Type().Elem().Kind() == reflect.Struct:
		p = rv.UnsafePointer()
	case rv.Kind() == reflect.Struct:
		cp := reflect.New(rv.Type())
		cp.Elem().Set(rv)
		rv, p = cp, cp.UnsafePointer()
	default:
		return nil, errs.Newf(errs.Internal, "protostruct: Marshal needs a struct or a pointer to one, got %T", v)
	}
	pl, err := planFor(rv.Type().Elem())
	if err != nil {
		return nil, asInternal(err)
	}
	if p == nil {
		return []byte{}, nil
	}
	if pl.generated {
		b, err := proto.Marshal(rv.Interface().(proto.Message))
		if err != nil {
			return nil, errs.Wrap(errs.InvalidArgument, err)
		}
		return b, nil
	}
	if pl.body != nil {
		b := make([]byte, 0, pl.body.size(p, -1))
		if b, err = pl.body.append(b, p, -1); err != nil {
			return nil, wireError("cannot encode", err)
		}
		return b, nil
	}
	b := make([]byte, 0, pl.size(p, 0))
	b, err = pl.marshal(b, p, 0)
	if err != nil {
		return nil, wireError("cannot encode", err)
	}
	return b, nil
}

// Unmarshal decodes protobuf wire data into v, a non-nil *T with T a struct
// type; *v is reset to its zero value first. Unknown fields are skipped; for a
// field seen more than once the last scalar wins, repeated fields and maps
// accumulate, and messages merge.
//
// Errors are *errs.Error: InvalidArgument for malformed data (truncated,
// wrong wire type for a known field, invalid UTF-8, an integer too large
// for its Go type, nesting deeper than MaxDepth), naming the field by its
// JSON path; Internal when v is not a pointer to a mappable struct.
func Unmarshal(data []byte, v any) error {
	if m, ok := v.(proto.Message); ok {
		if err := proto.Unmarshal(data, m); err != nil {
			return errs.Wrap(errs.InvalidArgument, err)
		}
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Type().Elem().Kind() != reflect.Struct {
		return errs.Newf(errs.Internal, "protostruct: Unmarshal needs a non-nil pointer to a struct, got %T", v)
	}
	pl, err := planFor(rv.Type().Elem())
	if err != nil {
		return asInternal(err)
	}
	if pl.generated {
		m := rv.Interface().(proto.Message)
		if err := proto.Unmarshal(data, m); err != nil {
			return errs.Wrap(errs.InvalidArgument, err)
		}
		return nil
	}
	rv.Elem().SetZero()
	if pl.body != nil {
		err = pl.body.decode(data, rv.UnsafePointer(), -1)
	} else {
		err = pl.unmarshal(data, rv.UnsafePointer(), 0)
	}
	if err != nil {
		return wireError("invalid protobuf data", err)
	}
	return nil
}

func wireError(what string, err error) error {
	fe, ok := err.(*fieldError)
	if !ok {
		return errs.New(errs.InvalidArgument, "protostruct: "+what+": "+err.Error())
	}
	msg := "protostruct: " + what
	if fe.path != "" {
		msg += " in field " + fe.path
	}
	return errs.New(errs.InvalidArgument, msg+": "+fe.reason).
		WithDetails(errs.Detail{Field: fe.path, Reason: fe.reason})
}

// size returns the encoded size of the struct at p.
func (pl *plan) size(p unsafe.Pointer, depth int) int {
	if depth >= MaxDepth {
		return 0 // marshal reports it
	}
	n := 0
	for _, f := range pl.fields {
		n += f.size(unsafe.Add(p, f.offset), f, depth)
	}
	return n
}

func (pl *plan) marshal(b []byte, p unsafe.Pointer, depth int) ([]byte, error) {
	if depth >= MaxDepth {
		return b, errDepth
	}
	var err error
	for _, f := range pl.fields {
		if b, err = f.marshal(b, unsafe.Add(p, f.offset), f, depth); err != nil {
			return b, atField(err, f.jsonName)
		}
	}
	return b, nil
}

func (pl *plan) unmarshal(b []byte, p unsafe.Pointer, depth int) error {
	if depth >= MaxDepth {
		return errDepth
	}
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if num > protowire.MaxValidNumber {
			return errFieldNumber
		}
		b = b[n:]
		f := pl.lookup(num)
		if f == nil {
			if n = protowire.ConsumeFieldValue(num, wt, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		n, err := f.unmarshal(b, wt, unsafe.Add(p, f.offset), f, depth)
		if err != nil {
			return atField(err, f.jsonName)
		}
		b = b[n:]
	}
	return nil
}

// asInternal turns a Check error into an Internal one: an unmappable type
// at encode time is a bug in the program, not in the caller's data.
func asInternal(err error) error {
	e, ok := err.(*errs.Error)
	if !ok {
		return errs.Wrap(errs.Internal, err)
	}
	return errs.New(errs.Internal, e.Message()).WithDetails(e.Details()...)
}
