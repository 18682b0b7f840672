package protostruct

import (
	"fmt"
	"reflect"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// sliceHeader is the memory layout of every Go slice.
type sliceHeader struct {
	data unsafe.Pointer
	len  int
	cap  int
}

const ptrSize = unsafe.Sizeof(unsafe.Pointer(nil))

// setFuncs picks f's codec functions once, at plan time, so encoding and
// decoding never inspect types.
func setFuncs(f *field) {
	wt := protowire.BytesType
	v := f.val
	switch f.card {
	case cardSingular:
		if v.sc != nil {
			if v.kind == kindBytes {
				f.val.sc = bytesCodec(true)
			}
			wt = v.sc.wt
			f.size, f.marshal, f.unmarshal = sizeScalar, marshalScalar, unmarshalScalar
		} else {
			f.size, f.marshal, f.unmarshal = sizeMessage, marshalMessage, unmarshalMessage
		}
	case cardPointer:
		if v.sc != nil {
			wt = v.sc.wt
			f.size, f.marshal, f.unmarshal = sizeOptional, marshalOptional, unmarshalOptional
		} else {
			f.size, f.marshal, f.unmarshal = sizeMessagePtr, marshalMessagePtr, unmarshalMessagePtr
		}
	case cardRepeated:
		if v.sc != nil {
			f.appendElem, f.growElems, f.elemSize = v.sc.appendZero, v.sc.grow, v.sc.elemSize
			if v.sc.packable {
				f.size, f.marshal = sizePacked, marshalPacked
			} else {
				f.size, f.marshal = sizeRepeated, marshalRepeated
			}
			f.unmarshal = unmarshalRepeated
		} else {
			f.appendElem, f.elemSize = v.mc.appendZero, v.mc.elemSize
			f.size, f.marshal, f.unmarshal = sizeMessages, marshalMessages, unmarshalMessages
		}
	case cardRepeatedPtr:
		f.appendElem, f.elemSize = appendZeroOf[unsafe.Pointer], ptrSize
		f.size, f.marshal, f.unmarshal = sizeMessagePtrs, marshalMessagePtrs, unmarshalMessagePtrs
	case cardMap:
		f.size, f.marshal, f.unmarshal = sizeMap, marshalMap, unmarshalMap
	}
	f.tag = protowire.EncodeTag(f.num, wt)
	f.tagLen = protowire.SizeVarint(f.tag)
}

// Singular scalars: implicit presence, zero is not encoded.

func sizeScalar(p unsafe.Pointer, f *field, _ int) int {
	sc := f.val.sc
	if sc.isZero(p) {
		return 0
	}
	return f.tagLen + sc.size(p)
}

func marshalScalar(b []byte, p unsafe.Pointer, f *field, _ int) ([]byte, error) {
	sc := f.val.sc
	if sc.isZero(p) {
		return b, nil
	}
	b = protowire.AppendVarint(b, f.tag)
	return sc.append(b, p)
}

func unmarshalScalar(b []byte, wt protowire.Type, p unsafe.Pointer, f *field, _ int) (int, error) {
	sc := f.val.sc
	if wt != sc.wt {
		return 0, wireTypeError(wt, sc.wt)
	}
	return sc.decode(b, p)
}

// Pointers to scalars: proto3 optional, encoded whenever non-nil.

func sizeOptional(p unsafe.Pointer, f *field, _ int) int {
	q := *(*unsafe.Pointer)(p)
	if q == nil {
		return 0
	}
	return f.tagLen + f.val.sc.size(q)
}

func marshalOptional(b []byte, p unsafe.Pointer, f *field, _ int) ([]byte, error) {
	q := *(*unsafe.Pointer)(p)
	if q == nil {
		return b, nil
	}
	b = protowire.AppendVarint(b, f.tag)
	return f.val.sc.append(b, q)
}

func unmarshalOptional(b []byte, wt protowire.Type, p unsafe.Pointer, f *field, _ int) (int, error) {
	sc := f.val.sc
	if wt != sc.wt {
		return 0, wireTypeError(wt, sc.wt)
	}
	q := (*unsafe.Pointer)(p)
	if *q == nil {
		*q = sc.newValue()
	}
	return sc.decode(b, *q)
}

// Repeated scalars: numeric ones packed, strings and bytes one per tag.

func elemAt(s *sliceHeader, i int, size uintptr) unsafe.Pointer {
	return unsafe.Add(s.data, uintptr(i)*size)
}

func packedLen(s *sliceHeader, f *field) int {
	sc := f.val.sc
	if sc.fixed != 0 {
		return s.len * sc.fixed
	}
	n := 0
	for i := range s.len {
		n += sc.size(elemAt(s, i, f.elemSize))
	}
	return n
}

func sizePacked(p unsafe.Pointer, f *field, _ int) int {
	s := (*sliceHeader)(p)
	if s.len == 0 {
		return 0
	}
	return f.tagLen + protowire.SizeBytes(packedLen(s, f))
}

func marshalPacked(b []byte, p unsafe.Pointer, f *field, _ int) ([]byte, error) {
	s := (*sliceHeader)(p)
	if s.len == 0 {
		return b, nil
	}
	b = protowire.AppendVarint(b, f.tag)
	b = protowire.AppendVarint(b, uint64(packedLen(s, f)))
	sc := f.val.sc
	var err error
	for i := range s.len {
		if b, err = sc.append(b, elemAt(s, i, f.elemSize)); err != nil {
			return b, err
		}
	}
	return b, nil
}

func sizeRepeated(p unsafe.Pointer, f *field, _ int) int {
	s := (*sliceHeader)(p)
	n := s.len * f.tagLen
	for i := range s.len {
		n += f.val.sc.size(elemAt(s, i, f.elemSize))
	}
	return n
}

func marshalRepeated(b []byte, p unsafe.Pointer, f *field, _ int) ([]byte, error) {
	s := (*sliceHeader)(p)
	sc := f.val.sc
	var err error
	for i := range s.len {
		b = protowire.AppendVarint(b, f.tag)
		if b, err = sc.append(b, elemAt(s, i, f.elemSize)); err != nil {
			return b, err
		}
	}
	return b, nil
}

// errTooMany is the error of a repeated field or map past MaxElements.
var errTooMany = fmt.Errorf("more than %d elements", MaxElements)

// full reports whether the slice at p holds MaxElements, or would with n
// more.
func full(p unsafe.Pointer, n int) bool { return (*sliceHeader)(p).len+n > MaxElements }

func unmarshalRepeated(b []byte, wt protowire.Type, p unsafe.Pointer, f *field, _ int) (int, error) {
	sc := f.val.sc
	if wt == protowire.BytesType && sc.packable {
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		count := 0
		if sc.fixed > 1 {
			count = len(v) / sc.fixed
		} else {
			for _, c := range v {
				if c < 0x80 {
					count++
				}
			}
		}
		if full(p, count) {
			return 0, errTooMany
		}
		f.growElems(p, count)
		for len(v) > 0 {
			m, err := sc.decode(v, f.appendElem(p))
			if err != nil {
				return 0, err
			}
			v = v[m:]
		}
		return n, nil
	}
	if wt != sc.wt {
		return 0, wireTypeError(wt, sc.wt)
	}
	if full(p, 1) {
		return 0, errTooMany
	}
	return sc.decode(b, f.appendElem(p))
}

// Message-like values: a struct value is always present.

func sizeMessage(p unsafe.Pointer, f *field, depth int) int {
	return f.tagLen + protowire.SizeBytes(f.val.mc.size(p, depth))
}

func marshalMessage(b []byte, p unsafe.Pointer, f *field, depth int) ([]byte, error) {
	mc := f.val.mc
	b = protowire.AppendVarint(b, f.tag)
	b = protowire.AppendVarint(b, uint64(mc.size(p, depth)))
	return mc.append(b, p, depth)
}

func unmarshalMessage(b []byte, wt protowire.Type, p unsafe.Pointer, f *field, depth int) (int, error) {
	if wt != protowire.BytesType {
		return 0, wireTypeError(wt, protowire.BytesType)
	}
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, protowire.ParseError(n)
	}
	return n, f.val.mc.decode(v, p, depth)
}

func sizeMessagePtr(p unsafe.Pointer, f *field, depth int) int {
	q := *(*unsafe.Pointer)(p)
	if q == nil {
		return 0
	}
	return sizeMessage(q, f, depth)
}

func marshalMessagePtr(b []byte, p unsafe.Pointer, f *field, depth int) ([]byte, error) {
	q := *(*unsafe.Pointer)(p)
	if q == nil {
		return b, nil
	}
	return marshalMessage(b, q, f, depth)
}

func unmarshalMessagePtr(b []byte, wt protowire.Type, p unsafe.Pointer, f *field, depth int) (int, error) {
	q := (*unsafe.Pointer)(p)
	if wt == protowire.BytesType && *q == nil {
		*q = f.val.mc.newValue()
	}
	return unmarshalMessage(b, wt, *q, f, depth)
}

func sizeMessages(p unsafe.Pointer, f *field, depth int) int {
	s := (*sliceHeader)(p)
	n := 0
	for i := range s.len {
		n += sizeMessage(elemAt(s, i, f.elemSize), f, depth)
	}
	return n
}

func marshalMessages(b []byte, p unsafe.Pointer, f *field, depth int) ([]byte, error) {
	s := (*sliceHeader)(p)
	var err error
	for i := range s.len {
		if b, err = marshalMessage(b, elemAt(s, i, f.elemSize), f, depth); err != nil {
			return b, err
		}
	}
	return b, nil
}

func unmarshalMessages(b []byte, wt protowire.Type, p unsafe.Pointer, f *field, depth int) (int, error) {
	if wt != protowire.BytesType {
		return 0, wireTypeError(wt, protowire.BytesType)
	}
	if full(p, 1) {
		return 0, errTooMany
	}
	return unmarshalMessage(b, wt, f.appendElem(p), f, depth)
}

// Slices of pointers: a nil element is encoded as an empty message.

func sizeMessagePtrs(p unsafe.Pointer, f *field, depth int) int {
	s := (*sliceHeader)(p)
	n := 0
	for i := range s.len {
		q := *(*unsafe.Pointer)(elemAt(s, i, ptrSize))
		if q == nil {
			n += f.tagLen + 1
			continue
		}
		n += sizeMessage(q, f, depth)
	}
	return n
}

func marshalMessagePtrs(b []byte, p unsafe.Pointer, f *field, depth int) ([]byte, error) {
	s := (*sliceHeader)(p)
	var err error
	for i := range s.len {
		q := *(*unsafe.Pointer)(elemAt(s, i, ptrSize))
		if q == nil {
			b = protowire.AppendVarint(b, f.tag)
			b = append(b, 0)
			continue
		}
		if b, err = marshalMessage(b, q, f, depth); err != nil {
			return b, err
		}
	}
	return b, nil
}

func unmarshalMessagePtrs(b []byte, wt protowire.Type, p unsafe.Pointer, f *field, depth int) (int, error) {
	if wt != protowire.BytesType {
		return 0, wireTypeError(wt, protowire.BytesType)
	}
	if full(p, 1) {
		return 0, errTooMany
	}
	q := f.val.mc.newValue()
	n, err := unmarshalMessage(b, wt, q, f, depth)
	if err != nil {
		return 0, err
	}
	*(*unsafe.Pointer)(f.appendElem(p)) = q
	return n, nil
}

// Maps: one entry message {key = 1; value = 2} per pair, both always written.
// Maps go through reflect; Go offers no other way to iterate them.

const (
	mapEntryKey = 1
	mapEntryVal = 2
)

// mapIter holds addressable copies of a map's key and value, so the scalar
// and message codecs can work on them through unsafe pointers.
type mapIter struct {
	m      reflect.Value
	k, v   reflect.Value
	kp, vp unsafe.Pointer
}

func newMapIter(p unsafe.Pointer, f *field) mapIter {
	m := reflect.NewAt(f.typ, p).Elem()
	kp := reflect.New(f.typ.Key())
	vp := reflect.New(f.typ.Elem())
	return mapIter{m: m, k: kp.Elem(), v: vp.Elem(), kp: kp.UnsafePointer(), vp: vp.UnsafePointer()}
}

// entrySize returns the size of the entry body for the key and value at kp
// and vp, and for message values the value's body size.
func entrySize(f *field, kp, vp unsafe.Pointer, depth int) (entry, body int) {
	entry = 1 + f.key.sc.size(kp)
	if f.val.sc != nil {
		if nilBytes(f, vp) {
			return entry, 0
		}
		return entry + 1 + f.val.sc.size(vp), 0
	}
	if f.valPtr {
		vp = *(*unsafe.Pointer)(vp)
	}
	if vp != nil {
		body = f.val.mc.size(vp, depth)
	}
	return entry + 1 + protowire.SizeBytes(body), body
}

// nilBytes reports whether the map value at vp is a nil []byte. It is left
// out of its entry, so it decodes as nil again while an empty non-nil value
// is written and decodes as empty.
func nilBytes(f *field, vp unsafe.Pointer) bool {
	return f.val.kind == kindBytes && (*sliceHeader)(vp).data == nil
}

func sizeMap(p unsafe.Pointer, f *field, depth int) int {
	if *(*unsafe.Pointer)(p) == nil {
		return 0
	}
	it := newMapIter(p, f)
	if it.m.Len() == 0 {
		return 0
	}
	n := 0
	for r := it.m.MapRange(); r.Next(); {
		it.k.SetIterKey(r)
		it.v.SetIterValue(r)
		e, _ := entrySize(f, it.kp, it.vp, depth)
		n += f.tagLen + protowire.SizeBytes(e)
	}
	return n
}

func marshalMap(b []byte, p unsafe.Pointer, f *field, depth int) ([]byte, error) {
	if *(*unsafe.Pointer)(p) == nil {
		return b, nil
	}
	it := newMapIter(p, f)
	if it.m.Len() == 0 {
		return b, nil
	}
	keyTag := protowire.EncodeTag(mapEntryKey, f.key.sc.wt)
	var err error
	for r := it.m.MapRange(); r.Next(); {
		it.k.SetIterKey(r)
		it.v.SetIterValue(r)
		e, body := entrySize(f, it.kp, it.vp, depth)
		b = protowire.AppendVarint(b, f.tag)
		b = protowire.AppendVarint(b, uint64(e))
		b = protowire.AppendVarint(b, keyTag)
		if b, err = f.key.sc.append(b, it.kp); err != nil {
			return b, atField(err, "key")
		}
		if sc := f.val.sc; sc != nil {
			if nilBytes(f, it.vp) {
				continue
			}
			b = protowire.AppendVarint(b, protowire.EncodeTag(mapEntryVal, sc.wt))
			if b, err = sc.append(b, it.vp); err != nil {
				return b, atField(err, "value")
			}
			continue
		}
		b = protowire.AppendVarint(b, protowire.EncodeTag(mapEntryVal, protowire.BytesType))
		b = protowire.AppendVarint(b, uint64(body))
		vp := it.vp
		if f.valPtr {
			vp = *(*unsafe.Pointer)(vp)
		}
		if vp != nil {
			if b, err = f.val.mc.append(b, vp, depth); err != nil {
				return b, atField(err, "value")
			}
		}
	}
	return b, nil
}

func unmarshalMap(b []byte, wt protowire.Type, p unsafe.Pointer, f *field, depth int) (int, error) {
	if wt != protowire.BytesType {
		return 0, wireTypeError(wt, protowire.BytesType)
	}
	e, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, protowire.ParseError(n)
	}
	it := newMapIter(p, f)
	if it.m.IsNil() {
		it.m.Set(reflect.MakeMap(f.typ))
	} else if it.m.Len() >= MaxElements {
		return 0, errTooMany
	}
	vp := it.vp // where a message value's body is decoded
	for len(e) > 0 {
		num, wt, m := protowire.ConsumeTag(e)
		if m < 0 {
			return 0, protowire.ParseError(m)
		}
		e = e[m:]
		switch num {
		case mapEntryKey:
			sc := f.key.sc
			if wt != sc.wt {
				return 0, atField(wireTypeError(wt, sc.wt), "key")
			}
			m, err := sc.decode(e, it.kp)
			if err != nil {
				return 0, atField(err, "key")
			}
			e = e[m:]
		case mapEntryVal:
			if sc := f.val.sc; sc != nil {
				if wt != sc.wt {
					return 0, atField(wireTypeError(wt, sc.wt), "value")
				}
				m, err := sc.decode(e, it.vp)
				if err != nil {
					return 0, atField(err, "value")
				}
				e = e[m:]
				continue
			}
			if wt != protowire.BytesType {
				return 0, atField(wireTypeError(wt, protowire.BytesType), "value")
			}
			body, m := protowire.ConsumeBytes(e)
			if m < 0 {
				return 0, atField(protowire.ParseError(m), "value")
			}
			if f.valPtr {
				q := (*unsafe.Pointer)(it.vp)
				if *q == nil {
					*q = f.val.mc.newValue()
				}
				vp = *q
			}
			if err := f.val.mc.decode(body, vp, depth); err != nil {
				return 0, atField(err, "value")
			}
			e = e[m:]
		default:
			m := protowire.ConsumeFieldValue(num, wt, e)
			if m < 0 {
				return 0, protowire.ParseError(m)
			}
			e = e[m:]
		}
	}
	if f.valPtr && *(*unsafe.Pointer)(it.vp) == nil {
		*(*unsafe.Pointer)(it.vp) = f.val.mc.newValue() // a map's message value is never nil
	}
	it.m.SetMapIndex(it.k, it.v)
	return n, nil
}
