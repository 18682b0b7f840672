package protostruct_test

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type Status int32

type Celsius float64

type ID string

type Blob []byte

type Address struct {
	Street string `json:"street"`
	City   string `json:"city,omitempty"`
	Zip    uint16 `json:"zip,omitempty"`
}

type Node struct {
	Name string  `json:"name"`
	Kids []*Node `json:"kids,omitempty"`
}

// Rich covers every mapping whose JSON form encoding/json and protojson
// agree on, so it can be cross-checked through protojson.
type Rich struct {
	B       bool          `json:"b"`
	I8      int8          `json:"i8"`
	I16     int16         `json:"i16"`
	I32     int32         `json:"i32"`
	I       int           `json:"i"`
	I64     int64         `json:"i64"`
	U8      uint8         `json:"u8"`
	U16     uint16        `json:"u16"`
	U32     uint32        `json:"u32"`
	U       uint          `json:"u"`
	U64     uint64        `json:"u64"`
	F32     float32       `json:"f32"`
	F64     float64       `json:"f64"`
	S       string        `json:"s"`
	Bytes   []byte        `json:"bytes"`
	Blob    Blob          `json:"blob"`
	Status  Status        `json:"status"`
	Temp    Celsius       `json:"temp"`
	ID      ID            `json:"id"`
	When    time.Time     `json:"when"`
	WhenPtr *time.Time    `json:"whenPtr"`
	Took    time.Duration `json:"took"`
	NoTag   string
	UserID  string

	Addr    Address  `json:"addr"`
	AddrPtr *Address `json:"addrPtr"`
	Meta    struct {
		Note  string `json:"note"`
		Count int    `json:"count"`
	} `json:"meta"`
	Address `json:"home"`

	OptI     *int32   `json:"optI"`
	OptS     *string  `json:"optS"`
	OptB     *bool    `json:"optB"`
	OptF     *float64 `json:"optF"`
	OptBytes *[]byte  `json:"optBytes"`
	OptU     *uint64  `json:"optU"`

	Ints     []int32     `json:"ints"`
	Longs    []int64     `json:"longs"`
	Uints    []uint64    `json:"uints"`
	Smalls   []uint8s    `json:"smalls"`
	Floats   []float64   `json:"floats"`
	F32s     []float32   `json:"f32s"`
	Bools    []bool      `json:"bools"`
	Strs     []string    `json:"strs"`
	IDs      []ID        `json:"ids"`
	Blobs    [][]byte    `json:"blobs"`
	Addrs    []Address   `json:"addrs"`
	AddrPtrs []*Address  `json:"addrPtrs"`
	Times    []time.Time `json:"times"`
	Tree     *Node       `json:"tree"`

	ByName map[string]int64     `json:"byName"`
	ByID   map[int32]string     `json:"byId"`
	ByU    map[uint64]*Address  `json:"byU"`
	Places map[ID]Address       `json:"places"`
	Data   map[string][]byte    `json:"data"`
	Stamps map[string]time.Time `json:"stamps"`
	Small  map[int8]bool        `json:"small"`

	hidden int
	Skip   string `json:"-"`
	Skip2  string `pb:"-"`
	Pinned string `pb:"200" json:"pinned"`
}

// uint8s is a named uint16 so []uint8s is a repeated number, not bytes.
type uint8s uint16

// Extra adds mappings that have no common JSON form: bool map keys and
// generated messages.
type Extra struct {
	Rich  Rich                             `json:"rich"`
	Flags map[bool]string                  `json:"flags"`
	TS    *timestamppb.Timestamp           `json:"ts"`
	Wrap  *wrapperspb.StringValue          `json:"wrap"`
	Ints  []*wrapperspb.Int64Value         `json:"intsW"`
	ByKey map[string]*wrapperspb.BoolValue `json:"byKey"`
}

func ptr[T any](v T) *T { return &v }

func fullRich() *Rich {
	when := time.Date(2024, 2, 29, 13, 14, 15, 123456789, time.UTC)
	r := &Rich{
		B: true, I8: -8, I16: -1600, I32: -32, I: -1 << 40, I64: 1 << 62,
		U8: 255, U16: 65535, U32: 1 << 31, U: 1 << 50, U64: 1<<64 - 1,
		F32: 1.5, F64: -2.25e100, S: "héllo ✓", Bytes: []byte{0, 1, 2, 255}, Blob: Blob("blob"),
		Status: 7, Temp: 21.5, ID: "id-1",
		When: when, WhenPtr: ptr(when.Add(-48 * time.Hour)), Took: 1500 * time.Millisecond,
		NoTag: "no tag", UserID: "u-1",
		Addr:    Address{Street: "Main St 1", City: "Springfield", Zip: 12345},
		AddrPtr: &Address{Street: "Elm St"},
		Address: Address{City: "Home"},
		OptI:    ptr(int32(0)), OptS: ptr(""), OptB: ptr(false), OptF: ptr(0.0), OptBytes: ptr([]byte{}), OptU: ptr(uint64(9)),
		Ints:     []int32{1, -1, 0, 1 << 30, -1 << 31},
		Longs:    []int64{-1 << 63, 1<<63 - 1, 0},
		Uints:    []uint64{0, 1, 1<<64 - 1},
		Smalls:   []uint8s{1, 2, 65535},
		Floats:   []float64{0, -1.5, 3.25},
		F32s:     []float32{1, -2},
		Bools:    []bool{true, false, true},
		Strs:     []string{"a", "", "ü"},
		IDs:      []ID{"x", "y"},
		Blobs:    [][]byte{{1}, {}, {2, 3}},
		Addrs:    []Address{{Street: "a"}, {}, {City: "c"}},
		AddrPtrs: []*Address{{Street: "p"}, {}},
		Times:    []time.Time{when, {}, time.Unix(0, 0).UTC()},
		Tree: &Node{Name: "root", Kids: []*Node{
			{Name: "a", Kids: []*Node{{Name: "a1"}, {Name: "a2"}}},
			{Name: "b"},
		}},
		ByName: map[string]int64{"one": 1, "minus": -1, "zero": 0, "": 7},
		ByID:   map[int32]string{1: "one", -2: "minus two", 0: ""},
		ByU:    map[uint64]*Address{1: {Street: "s"}, 2: {}},
		Places: map[ID]Address{"p": {City: "x"}},
		Data:   map[string][]byte{"k": {9, 8}, "empty": {}},
		Stamps: map[string]time.Time{"t": when},
		Small:  map[int8]bool{-128: true, 127: false},
		Pinned: "pinned",
	}
	r.Meta.Note, r.Meta.Count = "anon", 3
	return r
}
