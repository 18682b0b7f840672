package protostruct

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// scalarCodec encodes one scalar value held at p (never a pointer to it).
type scalarCodec struct {
	wt       protowire.Type
	packable bool
	fixed    int // encoded size when constant (fixed32/64, bool), else 0
	isZero   func(p unsafe.Pointer) bool
	size     func(p unsafe.Pointer) int // without tag; bytes include the length prefix
	append   func(b []byte, p unsafe.Pointer) ([]byte, error)
	decode   func(b []byte, p unsafe.Pointer) (int, error) // b starts at the value; wire type already checked
	newValue func() unsafe.Pointer
	// appendZero and grow work on a []T held at s.
	appendZero func(s unsafe.Pointer) unsafe.Pointer
	grow       func(s unsafe.Pointer, n int)
	elemSize   uintptr
}

// messageCodec encodes the body of a message-like value held at p.
type messageCodec struct {
	size       func(p unsafe.Pointer, depth int) int
	append     func(b []byte, p unsafe.Pointer, depth int) ([]byte, error)
	decode     func(b []byte, p unsafe.Pointer, depth int) error // merges the body b into *p
	newValue   func() unsafe.Pointer
	appendZero func(s unsafe.Pointer) unsafe.Pointer
	elemSize   uintptr
}

var (
	errInvalidUTF8 = errors.New("string is not valid UTF-8")
	errDepth       = fmt.Errorf("messages nested deeper than %d (cyclic value?)", MaxDepth)
)

func newOf[T any]() unsafe.Pointer { return unsafe.Pointer(new(T)) }

func appendZeroOf[T any](s unsafe.Pointer) unsafe.Pointer {
	sl := (*[]T)(s)
	var zero T
	*sl = append(*sl, zero)
	return unsafe.Pointer(&(*sl)[len(*sl)-1])
}

func growOf[T any](s unsafe.Pointer, n int) {
	sl := (*[]T)(s)
	*sl = slices.Grow(*sl, n)
}

// appendZeroReflect is appendZeroOf for element types only known at run time.
func appendZeroReflect(sliceType reflect.Type) func(s unsafe.Pointer) unsafe.Pointer {
	return func(s unsafe.Pointer) unsafe.Pointer {
		v := reflect.NewAt(sliceType, s).Elem()
		n := v.Len()
		if n == v.Cap() {
			v.Grow(1)
		}
		v.SetLen(n + 1)
		e := v.Index(n)
		e.SetZero()
		return e.Addr().UnsafePointer()
	}
}

type integer interface {
	int | int8 | int16 | int32 | int64 | uint | uint8 | uint16 | uint32 | uint64
}

// intCodec encodes integer type T as a varint; wide selects the 64-bit
// protobuf type (int64/uint64) over the 32-bit one.
func intCodec[T integer](wide bool) *scalarCodec {
	var zero T
	signed := zero-1 < zero
	name := reflect.TypeFor[T]().String()
	return &scalarCodec{
		wt:       protowire.VarintType,
		packable: true,
		isZero:   func(p unsafe.Pointer) bool { return *(*T)(p) == 0 },
		size:     func(p unsafe.Pointer) int { return protowire.SizeVarint(uint64(*(*T)(p))) },
		append: func(b []byte, p unsafe.Pointer) ([]byte, error) {
			return protowire.AppendVarint(b, uint64(*(*T)(p))), nil
		},
		decode: func(b []byte, p unsafe.Pointer) (int, error) {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, protowire.ParseError(n)
			}
			// A value that does not fit is an error, not truncated as
			// proto.Unmarshal would (a 32-bit field's wire value is 64 bits
			// wide, negative int32 values sign-extended): the JSON codec
			// refuses such a number too.
			var x T
			if signed {
				s := int64(v)
				x = T(s)
				if int64(x) != s || (!wide && s != int64(int32(s))) {
					return 0, fmt.Errorf("value %d overflows %s", s, name)
				}
			} else {
				x = T(v)
				if uint64(x) != v || (!wide && v > 1<<32-1) {
					return 0, fmt.Errorf("value %d overflows %s", v, name)
				}
			}
			*(*T)(p) = x
			return n, nil
		},
		newValue:   newOf[T],
		appendZero: appendZeroOf[T],
		grow:       growOf[T],
		elemSize:   unsafe.Sizeof(zero),
	}
}

func boolCodec() *scalarCodec {
	return &scalarCodec{
		wt:       protowire.VarintType,
		packable: true,
		fixed:    1,
		isZero:   func(p unsafe.Pointer) bool { return !*(*bool)(p) },
		size:     func(unsafe.Pointer) int { return 1 },
		append: func(b []byte, p unsafe.Pointer) ([]byte, error) {
			return protowire.AppendVarint(b, protowire.EncodeBool(*(*bool)(p))), nil
		},
		decode: func(b []byte, p unsafe.Pointer) (int, error) {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, protowire.ParseError(n)
			}
			*(*bool)(p) = v != 0
			return n, nil
		},
		newValue:   newOf[bool],
		appendZero: appendZeroOf[bool],
		grow:       growOf[bool],
		elemSize:   1,
	}
}

func float32Codec() *scalarCodec {
	return &scalarCodec{
		wt:       protowire.Fixed32Type,
		packable: true,
		fixed:    4,
		isZero:   func(p unsafe.Pointer) bool { return *(*uint32)(p) == 0 }, // -0 is encoded
		size:     func(unsafe.Pointer) int { return 4 },
		append: func(b []byte, p unsafe.Pointer) ([]byte, error) {
			return protowire.AppendFixed32(b, *(*uint32)(p)), nil
		},
		decode: func(b []byte, p unsafe.Pointer) (int, error) {
			v, n := protowire.ConsumeFixed32(b)
			if n < 0 {
				return 0, protowire.ParseError(n)
			}
			*(*float32)(p) = math.Float32frombits(v)
			return n, nil
		},
		newValue:   newOf[float32],
		appendZero: appendZeroOf[float32],
		grow:       growOf[float32],
		elemSize:   4,
	}
}

func float64Codec() *scalarCodec {
	return &scalarCodec{
		wt:       protowire.Fixed64Type,
		packable: true,
		fixed:    8,
		isZero:   func(p unsafe.Pointer) bool { return *(*uint64)(p) == 0 },
		size:     func(unsafe.Pointer) int { return 8 },
		append: func(b []byte, p unsafe.Pointer) ([]byte, error) {
			return protowire.AppendFixed64(b, *(*uint64)(p)), nil
		},
		decode: func(b []byte, p unsafe.Pointer) (int, error) {
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return 0, protowire.ParseError(n)
			}
			*(*float64)(p) = math.Float64frombits(v)
			return n, nil
		},
		newValue:   newOf[float64],
		appendZero: appendZeroOf[float64],
		grow:       growOf[float64],
		elemSize:   8,
	}
}

func stringCodec() *scalarCodec {
	return &scalarCodec{
		wt:     protowire.BytesType,
		isZero: func(p unsafe.Pointer) bool { return len(*(*string)(p)) == 0 },
		size:   func(p unsafe.Pointer) int { return protowire.SizeBytes(len(*(*string)(p))) },
		append: func(b []byte, p unsafe.Pointer) ([]byte, error) {
			s := *(*string)(p)
			if !utf8.ValidString(s) {
				return b, errInvalidUTF8
			}
			return protowire.AppendString(b, s), nil
		},
		decode: func(b []byte, p unsafe.Pointer) (int, error) {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, protowire.ParseError(n)
			}
			if !utf8.Valid(v) {
				return 0, errInvalidUTF8
			}
			*(*string)(p) = string(v)
			return n, nil
		},
		newValue:   newOf[string],
		appendZero: appendZeroOf[string],
		grow:       growOf[string],
		elemSize:   unsafe.Sizeof(""),
	}
}

// bytesCodec encodes []byte. A decoded empty value is nil when emptyNil is
// set (implicit presence: empty means absent), else a non-nil empty slice.
func bytesCodec(emptyNil bool) *scalarCodec {
	return &scalarCodec{
		wt:     protowire.BytesType,
		isZero: func(p unsafe.Pointer) bool { return len(*(*[]byte)(p)) == 0 },
		size:   func(p unsafe.Pointer) int { return protowire.SizeBytes(len(*(*[]byte)(p))) },
		append: func(b []byte, p unsafe.Pointer) ([]byte, error) {
			return protowire.AppendBytes(b, *(*[]byte)(p)), nil
		},
		decode: func(b []byte, p unsafe.Pointer) (int, error) {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, protowire.ParseError(n)
			}
			if len(v) == 0 && emptyNil {
				*(*[]byte)(p) = nil
			} else {
				*(*[]byte)(p) = append(make([]byte, 0, len(v)), v...)
			}
			return n, nil
		},
		newValue:   newOf[[]byte],
		appendZero: appendZeroOf[[]byte],
		grow:       growOf[[]byte],
		elemSize:   unsafe.Sizeof([]byte(nil)),
	}
}

// structCodec encodes a plain struct by its plan.
func structCodec(pl *plan) *messageCodec {
	t := pl.typ
	return &messageCodec{
		size:       func(p unsafe.Pointer, depth int) int { return pl.size(p, depth+1) },
		append:     func(b []byte, p unsafe.Pointer, depth int) ([]byte, error) { return pl.marshal(b, p, depth+1) },
		decode:     func(b []byte, p unsafe.Pointer, depth int) error { return pl.unmarshal(b, p, depth+1) },
		newValue:   func() unsafe.Pointer { return reflect.New(t).UnsafePointer() },
		appendZero: appendZeroReflect(reflect.SliceOf(t)),
		elemSize:   t.Size(),
	}
}

// Field numbers of google.protobuf.Timestamp.
const (
	tsSeconds = 1
	tsNanos   = 2
)

// timestampCodec encodes time.Time as google.protobuf.Timestamp.
func timestampCodec() *messageCodec {
	return &messageCodec{
		size: func(p unsafe.Pointer, _ int) int {
			t := (*time.Time)(p)
			n := 0
			if s := t.Unix(); s != 0 {
				n += 1 + protowire.SizeVarint(uint64(s))
			}
			if ns := t.Nanosecond(); ns != 0 {
				n += 1 + protowire.SizeVarint(uint64(ns))
			}
			return n
		},
		append: func(b []byte, p unsafe.Pointer, depth int) ([]byte, error) {
			if depth+1 >= MaxDepth {
				return b, errDepth
			}
			t := (*time.Time)(p)
			if s := t.Unix(); s != 0 {
				b = protowire.AppendVarint(b, protowire.EncodeTag(tsSeconds, protowire.VarintType))
				b = protowire.AppendVarint(b, uint64(s))
			}
			if ns := t.Nanosecond(); ns != 0 {
				b = protowire.AppendVarint(b, protowire.EncodeTag(tsNanos, protowire.VarintType))
				b = protowire.AppendVarint(b, uint64(ns))
			}
			return b, nil
		},
		decode: func(b []byte, p unsafe.Pointer, depth int) error {
			if depth+1 >= MaxDepth {
				return errDepth
			}
			t := (*time.Time)(p)
			var s int64
			var ns int32
			if !t.IsZero() { // merging into a value set earlier in this message
				s, ns = t.Unix(), int32(t.Nanosecond())
			}
			for len(b) > 0 {
				num, wt, n := protowire.ConsumeTag(b)
				if n < 0 {
					return protowire.ParseError(n)
				}
				b = b[n:]
				switch {
				case num == tsSeconds && wt == protowire.VarintType:
					v, n := protowire.ConsumeVarint(b)
					if n < 0 {
						return protowire.ParseError(n)
					}
					s, b = int64(v), b[n:]
				case num == tsNanos && wt == protowire.VarintType:
					v, n := protowire.ConsumeVarint(b)
					if n < 0 {
						return protowire.ParseError(n)
					}
					ns, b = int32(v), b[n:]
				case num == tsSeconds || num == tsNanos:
					return &fieldError{path: timestampField(num), reason: wireTypeReason(wt, protowire.VarintType)}
				default:
					n := protowire.ConsumeFieldValue(num, wt, b)
					if n < 0 {
						return protowire.ParseError(n)
					}
					b = b[n:]
				}
			}
			*t = time.Unix(s, int64(ns)).UTC()
			return nil
		},
		newValue:   newOf[time.Time],
		appendZero: appendZeroOf[time.Time],
		elemSize:   unsafe.Sizeof(time.Time{}),
	}
}

func timestampField(num protowire.Number) string {
	if num == tsSeconds {
		return "seconds"
	}
	return "nanos"
}

// generatedCodec encodes a generated protobuf message type t with the
// protobuf runtime.
func generatedCodec(t reflect.Type) *messageCodec {
	at := func(p unsafe.Pointer) proto.Message {
		return reflect.NewAt(t, p).Interface().(proto.Message)
	}
	return &messageCodec{
		size: func(p unsafe.Pointer, _ int) int { return proto.Size(at(p)) },
		append: func(b []byte, p unsafe.Pointer, depth int) ([]byte, error) {
			if depth+1 >= MaxDepth {
				return b, errDepth
			}
			// Callers always size the message just before appending it.
			return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, at(p))
		},
		decode: func(b []byte, p unsafe.Pointer, depth int) error {
			limit := MaxDepth - depth - 1
			if limit <= 0 {
				return errDepth
			}
			return proto.UnmarshalOptions{Merge: true, RecursionLimit: limit}.Unmarshal(b, at(p))
		},
		newValue:   func() unsafe.Pointer { return reflect.New(t).UnsafePointer() },
		appendZero: appendZeroReflect(reflect.SliceOf(t)),
		elemSize:   t.Size(),
	}
}
