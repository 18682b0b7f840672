package protostruct

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/ferry-go/ferry/errs"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxDepth is the deepest nesting of messages that Marshal and Unmarshal
// accept; the outermost message counts as one level. It bounds the stack a
// hostile payload or a cyclic value can use.
const MaxDepth = 100

// MaxElements is the most elements Unmarshal puts in one repeated field or
// map. With a 4 MiB message a hostile sender could otherwise ask for two
// million empty strings — 16 bytes of memory for every 2 bytes sent, more
// as the slice grows; the admission limit of the service bounds the bytes
// decoded at once, this bounds what one message can become.
const MaxElements = 1 << 20

var (
	timeType         = reflect.TypeFor[time.Time]()
	protoMessageType = reflect.TypeFor[proto.Message]()
)

// plans caches the immutable per-type plan (or the reason a type cannot be
// mapped), like encoding/json's field cache: built once per type, then read
// lock-free on every call.
var plans sync.Map // reflect.Type → *plan

// kind is the protobuf type a Go value maps to.
type kind uint8

const (
	kindBool kind = iota + 1
	kindInt32
	kindInt64
	kindUint32
	kindUint64
	kindFloat
	kindDouble
	kindString
	kindBytes
	kindMessage   // a plain Go struct, described by its own plan
	kindTimestamp // time.Time as google.protobuf.Timestamp
	kindGenerated // a generated protobuf message type
)

func (k kind) isMessage() bool { return k >= kindMessage }

// card is how a field holds its values.
type card uint8

const (
	cardSingular    card = iota + 1 // T
	cardPointer                     // *T: proto3 optional scalar, or message field
	cardRepeated                    // []T
	cardRepeatedPtr                 // []*T, T message-like
	cardMap                         // map[K]V or map[K]*V
)

// valueType describes one non-repeated value: a field's type, a slice's
// element, a map's key or value. Exactly one of sc and mc is set.
type valueType struct {
	kind kind
	typ  reflect.Type // the Go type, never a pointer
	sub  *plan        // kindMessage
	desc protoreflect.MessageDescriptor
	sc   *scalarCodec
	mc   *messageCodec
}

// field is one mapped struct field with its codec functions.
type field struct {
	goName   string
	name     string // proto field name
	jsonName string
	num      protowire.Number
	offset   uintptr
	typ      reflect.Type // the Go field type
	card     card
	val      valueType // value, element, or map value
	key      valueType // map key
	valPtr   bool      // map value is *V
	tagged   bool      // the number comes from a pb tag, not the position
	isRes    bool      // a reserved number (blank field pb:"N,reserved"), no value
	tag      uint64    // encoded tag, with the wire type used on output
	tagLen   int

	size      func(p unsafe.Pointer, f *field, depth int) int
	marshal   func(b []byte, p unsafe.Pointer, f *field, depth int) ([]byte, error)
	unmarshal func(b []byte, wt protowire.Type, p unsafe.Pointer, f *field, depth int) (int, error)
	// appendElem grows a repeated field by one zero element, returning a
	// pointer to it; set for cardRepeated and cardRepeatedPtr.
	appendElem func(s unsafe.Pointer) unsafe.Pointer
	growElems  func(s unsafe.Pointer, n int)
	elemSize   uintptr
}

// plan is how to encode and decode one struct type.
type plan struct {
	typ       reflect.Type
	generated bool          // typ is a generated protobuf message: use the proto runtime
	body      *messageCodec // set for time.Time, encoded as a Timestamp
	fields    []*field      // sorted by number
	reserved  []*field      // blank fields tagged pb:"reserved": a number only
	dense     []*field      // indexed by number, when numbers are small
	sparse    map[protowire.Number]*field
	err       *fieldError // why typ cannot be mapped; path relative to typ
}

func (pl *plan) lookup(num protowire.Number) *field {
	if pl.dense != nil {
		if int(num) < len(pl.dense) {
			return pl.dense[num]
		}
		return nil
	}
	return pl.sparse[num]
}

// Check reports whether struct type t (or a pointer to one) can be mapped to
// a protobuf message. The error, an *errs.Error with code InvalidArgument,
// names the offending field by its Go path and says why. Generated protobuf
// message types always pass.
func Check(t reflect.Type) error {
	if t == nil {
		return errs.New(errs.InvalidArgument, "protostruct: nil type")
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	_, err := planFor(t)
	return err
}

// planFor returns the cached plan for struct type t, building it on first use.
func planFor(t reflect.Type) (*plan, error) {
	if v, ok := plans.Load(t); ok {
		pl := v.(*plan)
		if pl.err != nil {
			return nil, schemaErr(t, pl.err)
		}
		return pl, nil
	}
	if t.Kind() != reflect.Struct {
		return nil, errs.Newf(errs.InvalidArgument, "protostruct: %s is not a struct type", t)
	}
	b := builder{plans: map[reflect.Type]*plan{}}
	pl, ferr := b.build(t)
	if ferr != nil {
		v, _ := plans.LoadOrStore(t, &plan{typ: t, err: ferr})
		return nil, schemaErr(t, v.(*plan).err)
	}
	// Every plan of this build is complete now; publish them all.
	for bt, bp := range b.plans {
		if bt != t {
			plans.LoadOrStore(bt, bp)
		}
	}
	v, _ := plans.LoadOrStore(t, pl)
	return v.(*plan), nil
}

func schemaErr(t reflect.Type, fe *fieldError) error {
	where := t.String()
	if fe.path != "" {
		where += "." + fe.path
	}
	return errs.New(errs.InvalidArgument, "protostruct: "+where+": "+fe.reason).
		WithDetails(errs.Detail{Field: fe.path, Reason: fe.reason})
}

// builder builds the plans for one type and everything it reaches.
type builder struct {
	plans map[reflect.Type]*plan // including ones still being built (cycles)
}

func (b *builder) build(t reflect.Type) (*plan, *fieldError) {
	if pl, ok := b.plans[t]; ok {
		return pl, pl.err
	}
	if v, ok := plans.Load(t); ok {
		pl := v.(*plan)
		return pl, pl.err
	}
	pl := &plan{typ: t}
	b.plans[t] = pl
	if t == timeType {
		pl.body = timestampCodec()
		return pl, nil
	}
	if isGenerated(t) {
		pl.generated = true
		return pl, nil
	}
	if err := b.fillFields(pl); err != nil {
		pl.err = err
		return pl, err
	}
	return pl, nil
}

func isGenerated(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && reflect.PointerTo(t).Implements(protoMessageType)
}

func (b *builder) fillFields(pl *plan) *fieldError {
	t := pl.typ
	byNum := map[protowire.Number]*field{}
	resByNum := map[protowire.Number]*field{}
	byName := map[string]*field{}
	byJSON := map[string]*field{}
	for i := range t.NumField() {
		sf := t.Field(i)
		f, err := b.field(sf, i)
		if err != nil {
			return atField(err, sf.Name)
		}
		if f == nil {
			continue
		}
		if g := resByNum[f.num]; g != nil || f.isRes && byNum[f.num] != nil {
			if g == nil {
				g = byNum[f.num]
			}
			return &fieldError{path: sf.Name, reason: fmt.Sprintf("field number %d is reserved and used by %s", f.num, g.goName)}
		}
		if f.isRes {
			resByNum[f.num] = f
			pl.reserved = append(pl.reserved, f)
			continue
		}
		if g := byNum[f.num]; g != nil {
			return &fieldError{path: sf.Name, reason: fmt.Sprintf("field number %d already used by %s", f.num, g.goName)}
		}
		if g := byName[f.name]; g != nil {
			return &fieldError{path: sf.Name, reason: fmt.Sprintf("protobuf name %q already used by %s", f.name, g.goName)}
		}
		if g := byJSON[f.jsonName]; g != nil {
			return &fieldError{path: sf.Name, reason: fmt.Sprintf("JSON name %q already used by %s", f.jsonName, g.goName)}
		}
		byNum[f.num], byName[f.name], byJSON[f.jsonName] = f, f, f
		pl.fields = append(pl.fields, f)
	}
	slices.SortFunc(pl.fields, func(a, b *field) int { return int(a.num) - int(b.num) })
	slices.SortFunc(pl.reserved, func(a, b *field) int { return int(a.num) - int(b.num) })
	if n := len(pl.fields); n > 0 {
		if maxNum := int(pl.fields[n-1].num); maxNum <= 2*n+64 {
			pl.dense = make([]*field, maxNum+1)
			for _, f := range pl.fields {
				pl.dense[f.num] = f
			}
		} else {
			pl.sparse = byNum
		}
	} else {
		pl.dense = []*field{}
	}
	return nil
}

// field maps struct field sf at declaration index i; nil means skipped.
func (b *builder) field(sf reflect.StructField, i int) (*field, *fieldError) {
	jsonTag := sf.Tag.Get("json")
	if jsonTag == "-" || sf.Tag.Get("pb") == "-" {
		return nil, nil
	}
	jsonName, _, _ := strings.Cut(jsonTag, ",")
	if tag := sf.Tag.Get("pb"); strings.Contains(tag, "reserved") {
		if sf.Name != "_" {
			return nil, &fieldError{reason: fmt.Sprintf("pb tag %q: only a blank field (_) reserves a number", tag)}
		}
		return reservedField(tag, i)
	}
	ft := sf.Type
	if sf.Anonymous {
		st := ft
		if st.Kind() == reflect.Pointer {
			st = st.Elem()
		}
		if st.Kind() == reflect.Struct {
			if jsonName == "" {
				return nil, &fieldError{reason: "embedded struct fields need a json tag with a name (encoding/json would flatten them)"}
			}
		} else if !sf.IsExported() {
			return nil, nil
		}
	} else if !sf.IsExported() {
		return nil, nil
	}

	f := &field{goName: sf.Name, offset: sf.Offset, typ: ft}
	if err := f.setNumber(sf.Tag.Get("pb"), i); err != nil {
		return nil, err
	}
	f.jsonName = sf.Name
	if jsonName != "" {
		f.jsonName = jsonName
	}
	if validIdent(jsonName) {
		f.name = jsonName
	} else {
		f.name = snakeCase(sf.Name)
		if !validIdent(f.name) {
			f.name = "field_" + strconv.Itoa(int(f.num))
		}
	}
	if err := b.fieldType(f); err != nil {
		return nil, err
	}
	setFuncs(f)
	return f, nil
}

// setNumber sets f's number from pb tag value tag ("" for none) or from
// declaration index i.
func (f *field) setNumber(tag string, i int) *fieldError {
	f.num = protowire.Number(i + 1)
	if tag != "" {
		n, err := strconv.ParseInt(tag, 10, 64)
		if err != nil {
			return &fieldError{reason: fmt.Sprintf("pb tag %q is not a field number", tag)}
		}
		f.num, f.tagged = protowire.Number(n), true
		if n < 1 || n > int64(protowire.MaxValidNumber) {
			return &fieldError{reason: fmt.Sprintf("field number %d out of range 1 to %d", n, protowire.MaxValidNumber)}
		}
	}
	if f.num >= protowire.FirstReservedNumber && f.num <= protowire.LastReservedNumber {
		return &fieldError{reason: fmt.Sprintf("field number %d is in the range 19000 to 19999 reserved by protobuf", f.num)}
	}
	if f.num > protowire.MaxValidNumber {
		return &fieldError{reason: fmt.Sprintf("field number %d out of range 1 to %d", f.num, protowire.MaxValidNumber)}
	}
	return nil
}

// reservedField is the blank field at declaration index i tagged
// pb:"reserved" or pb:"N,reserved": its number is reserved in the message.
func reservedField(tag string, i int) (*field, *fieldError) {
	num, _, _ := strings.Cut(tag, ",")
	if num == "reserved" {
		num = ""
	} else if tag != num+",reserved" {
		return nil, &fieldError{reason: fmt.Sprintf("pb tag %q: want \"N,reserved\" or \"reserved\"", tag)}
	}
	f := &field{goName: "_", isRes: true}
	if err := f.setNumber(num, i); err != nil {
		return nil, err
	}
	return f, nil
}

// fieldType classifies f.typ into cardinality and value types.
func (b *builder) fieldType(f *field) *fieldError {
	t := f.typ
	switch t.Kind() {
	case reflect.Pointer:
		et := t.Elem()
		if notValue(et) {
			return unsupported(t, "pointer to "+kindWord(et))
		}
		vt, err := b.value(et)
		if err != nil {
			return err
		}
		f.card, f.val = cardPointer, vt
		return nil
	case reflect.Slice:
		et := t.Elem()
		if et.Kind() == reflect.Uint8 {
			break // bytes
		}
		switch {
		case et.Kind() == reflect.Pointer:
			pt := et.Elem()
			if notValue(pt) {
				return unsupported(t, "slice of pointers to "+kindWord(pt))
			}
			vt, err := b.value(pt)
			if err != nil {
				return err
			}
			if !vt.kind.isMessage() {
				return unsupported(t, "slice of pointers to scalars (use []"+pt.String()+")")
			}
			f.card, f.val = cardRepeatedPtr, vt
			return nil
		case et.Kind() == reflect.Slice && et.Elem().Kind() != reflect.Uint8:
			return unsupported(t, "nested slices (only [][]byte)")
		case et.Kind() == reflect.Map:
			return unsupported(t, "slice of maps")
		}
		vt, err := b.value(et)
		if err != nil {
			return err
		}
		f.card, f.val = cardRepeated, vt
		return nil
	case reflect.Map:
		kt, vt := t.Key(), t.Elem()
		switch kt.Kind() {
		case reflect.String, reflect.Bool,
			reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			return unsupported(t, "map key type "+kt.String()+" (want string, integer or bool)")
		}
		key, err := b.value(kt)
		if err != nil {
			return err
		}
		f.card, f.key = cardMap, key
		if vt.Kind() == reflect.Pointer {
			pt := vt.Elem()
			if notValue(pt) {
				return unsupported(t, "map value pointer to "+kindWord(pt))
			}
			val, err := b.value(pt)
			if err != nil {
				return err
			}
			if !val.kind.isMessage() {
				return unsupported(t, "map value pointer to a scalar")
			}
			f.val, f.valPtr = val, true
			return nil
		}
		if (vt.Kind() == reflect.Slice && vt.Elem().Kind() != reflect.Uint8) || vt.Kind() == reflect.Map {
			return unsupported(t, "map values that are slices or maps")
		}
		val, err := b.value(vt)
		if err != nil {
			return err
		}
		f.val = val
		return nil
	}
	vt, err := b.value(t)
	if err != nil {
		return err
	}
	f.card, f.val = cardSingular, vt
	return nil
}

// notValue reports whether t is a kind that cannot be a single value even
// behind a pointer.
func notValue(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Map:
		return true
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Uint8
	}
	return false
}

func kindWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return "pointers"
	case reflect.Map:
		return "maps"
	case reflect.Slice:
		return "slices"
	}
	return t.String()
}

func unsupported(t reflect.Type, what string) *fieldError {
	return &fieldError{reason: "unsupported type " + t.String() + ": " + what}
}

// value classifies a non-repeated Go type.
func (b *builder) value(t reflect.Type) (valueType, *fieldError) {
	vt := valueType{typ: t}
	switch {
	case t == timeType:
		vt.kind, vt.mc = kindTimestamp, timestampCodec()
		return vt, nil
	case isGenerated(t):
		md, err := descriptorOf(t)
		if err != nil {
			return vt, &fieldError{reason: err.Error()}
		}
		vt.kind, vt.desc, vt.mc = kindGenerated, md, generatedCodec(t)
		return vt, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		vt.kind, vt.sc = kindBool, boolCodec()
	case reflect.Int8:
		vt.kind, vt.sc = kindInt32, intCodec[int8](false)
	case reflect.Int16:
		vt.kind, vt.sc = kindInt32, intCodec[int16](false)
	case reflect.Int32:
		vt.kind, vt.sc = kindInt32, intCodec[int32](false)
	case reflect.Int:
		vt.kind, vt.sc = kindInt64, intCodec[int](true)
	case reflect.Int64:
		vt.kind, vt.sc = kindInt64, intCodec[int64](true)
	case reflect.Uint8:
		vt.kind, vt.sc = kindUint32, intCodec[uint8](false)
	case reflect.Uint16:
		vt.kind, vt.sc = kindUint32, intCodec[uint16](false)
	case reflect.Uint32:
		vt.kind, vt.sc = kindUint32, intCodec[uint32](false)
	case reflect.Uint:
		vt.kind, vt.sc = kindUint64, intCodec[uint](true)
	case reflect.Uint64:
		vt.kind, vt.sc = kindUint64, intCodec[uint64](true)
	case reflect.Float32:
		vt.kind, vt.sc = kindFloat, float32Codec()
	case reflect.Float64:
		vt.kind, vt.sc = kindDouble, float64Codec()
	case reflect.String:
		vt.kind, vt.sc = kindString, stringCodec()
	case reflect.Slice:
		if t.Elem().Kind() != reflect.Uint8 {
			return vt, unsupported(t, "slice here")
		}
		vt.kind, vt.sc = kindBytes, bytesCodec(false)
	case reflect.Struct:
		sub, err := b.build(t)
		if err != nil {
			return vt, err
		}
		vt.kind, vt.sub, vt.mc = kindMessage, sub, structCodec(sub)
	case reflect.Array:
		return vt, unsupported(t, "arrays (use a slice)")
	default:
		return vt, unsupported(t, t.Kind().String()+" has no protobuf equivalent")
	}
	return vt, nil
}

// descriptorOf returns the descriptor of generated message type t.
func descriptorOf(t reflect.Type) (md protoreflect.MessageDescriptor, err error) {
	// A zero value of a type that only looks generated (dynamicpb.Message)
	// may panic here; this runs once per type at registration.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot get the protobuf descriptor of %s: %v", t, r)
		}
	}()
	m := reflect.New(t).Interface().(proto.Message)
	return m.ProtoReflect().Descriptor(), nil
}
