package schema_test

import (
	"encoding/json"
	"math/big"
	"net/netip"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// Types the tests describe; each exercises a part of encoding/json's rules
// or of the validate tag mapping.

type Address struct {
	Street string `json:"street" validate:"required,max=80"`
	City   string `json:"city" validate:"required"`
	Zip    string `json:"zip,omitempty" validate:"omitempty,numeric,len=5"`
}

type Audit struct {
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
	Version   int       `json:"version" validate:"gte=0"`
}

type Node struct {
	Name     string           `json:"name" validate:"required"`
	Children []*Node          `json:"children,omitempty" validate:"omitempty,max=10,dive"`
	Parent   *Node            `json:"parent,omitempty"`
	Attrs    map[string]*Node `json:"attrs,omitempty"`
}

// Tree is a named map that refers to itself.
type Tree map[string]Tree

type Status string

type Level int

type Order struct {
	Audit
	*Extra
	ID        string                 `json:"id" validate:"required,uuid4"`
	Email     string                 `json:"email" validate:"required,email"`
	Website   string                 `json:"website,omitempty" validate:"omitempty,url"`
	Status    Status                 `json:"status" validate:"oneof=new paid 'on hold'"`
	Level     Level                  `json:"level" validate:"oneof=1 2 3"`
	Priority  uint8                  `json:"priority" validate:"min=1,max=5"`
	Quantity  int32                  `json:"quantity" validate:"gt=0,lt=1000"`
	Price     float64                `json:"price" validate:"gte=0.01"`
	Discount  *float32               `json:"discount,omitempty" validate:"omitempty,gte=0,lte=1"`
	Tags      []string               `json:"tags" validate:"max=5,dive,alphanum,min=2"`
	Labels    map[string]string      `json:"labels,omitempty" validate:"omitempty,dive,keys,alpha,endkeys,max=20"`
	Items     []Item                 `json:"items" validate:"required,min=1,dive"`
	Ship      *Address               `json:"ship,omitempty"`
	Bill      Address                `json:"bill"`
	Notes     *string                `json:"notes" validate:"required"`
	Attach    []byte                 `json:"attach,omitempty"`
	Timeout   time.Duration          `json:"timeout" validate:"omitempty,min=1s,max=1m"`
	Count     int64                  `json:"count,string"`
	Flag      bool                   `json:"flag,string"`
	Meta      json.RawMessage        `json:"meta,omitempty"`
	Any       any                    `json:"any"`
	Addr      netip.Addr             `json:"addr"`
	Big       *big.Int               `json:"big,omitempty"`
	Num       json.Number            `json:"num"`
	Seen      *time.Time             `json:"seen"`
	Grid      [2][2]int              `json:"grid"`
	Hash      [4]byte                `json:"hash"`
	Host      string                 `json:"host" validate:"omitempty,hostname|ip"`
	Code      string                 `json:"code" validate:"omitempty,startswith=AB,endswith=Z,len=5"`
	Hex       string                 `json:"hex" validate:"omitempty,hexadecimal"`
	Day       string                 `json:"day" validate:"omitempty,datetime=2006-01-02"`
	Sizes     map[int]int            `json:"sizes,omitempty" validate:"omitempty,min=1"`
	Confirmed bool                   `json:"confirmed" validate:"required"`
	Unique    []int                  `json:"unique" validate:"unique"`
	Proto     *timestamppb.Timestamp `json:"proto,omitempty"`
	Skipped   string                 `json:"-"`
	Dash      string                 `json:"-,"`
	private   string
}

type Item struct {
	SKU string `json:"sku" validate:"required,alphanum,min=3,max=12"`
	Qty int    `json:"qty" validate:"required,min=1"`
}

type Extra struct {
	Note string `json:"note,omitempty"`
	// Version clashes with Audit.Version: same depth, both tagged, so
	// encoding/json writes neither.
	Version int `json:"version"`
}

// Clash exercises name resolution across embedded structs.
type Clash struct {
	A
	B
	Name  string `json:"name"`
	Title string
}

type A struct {
	Name   string // written as "Name": names are case-sensitive, so Clash.Name ("name") does not hide it
	Shared string
	OnlyA  int
}

type B struct {
	Shared string // clashes with A.Shared: same depth, both untagged, both dropped
	Tagged string `json:"OnlyA"` // tagged beats A's untagged OnlyA at the same depth
}

type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

type Empty struct{}

type Unsupported struct {
	C chan int `json:"c"`
}

type BadKey struct {
	M map[Address]int `json:"m"`
}

// OddTags has tags the validator itself would refuse (it panics on an
// unknown rule); the schema keeps them in x-validate and maps what it can.
type OddTags struct {
	Odd  string `json:"odd" validate:"omitempty,lowercase,iscolor,frobnicate=3,min=abc"`
	Bad  int    `json:"bad" validate:"min=1.5,oneof=x 2,len="`
	Dive string `json:"dive" validate:"dive,keys,endkeys,|,=,,"`
}

// Rules has one field per mapped rule, none of them exempt when zero, so
// that Example has to satisfy each.
type Rules struct {
	Min      string            `json:"min" validate:"min=3"`
	Max      string            `json:"max" validate:"max=3"`
	Len      string            `json:"len" validate:"len=4"`
	Gt       int               `json:"gt" validate:"gt=5"`
	Lt       int               `json:"lt" validate:"lt=-2"`
	Ne       int               `json:"ne" validate:"ne=0"`
	Eq       string            `json:"eq" validate:"eq=hello"`
	OneofS   string            `json:"oneofS" validate:"oneof=red green"`
	OneofU   uint              `json:"oneofU" validate:"oneof=7 9"`
	Email    string            `json:"email" validate:"email"`
	URL      string            `json:"url" validate:"url"`
	URI      string            `json:"uri" validate:"uri"`
	UUID     string            `json:"uuid" validate:"uuid"`
	UUID4    string            `json:"uuid4" validate:"uuid4"`
	Hostname string            `json:"hostname" validate:"hostname"`
	IPv4     string            `json:"ipv4" validate:"ipv4"`
	IPv6     string            `json:"ipv6" validate:"ipv6"`
	IP       string            `json:"ip" validate:"ip"`
	DateTime string            `json:"dateTime" validate:"datetime=2006-01-02T15:04:05Z07:00"`
	Alpha    string            `json:"alpha" validate:"alpha,min=2"`
	Alphanum string            `json:"alphanum" validate:"alphanum"`
	Numeric  string            `json:"numeric" validate:"numeric"`
	Number   string            `json:"number" validate:"number"`
	Hex      string            `json:"hex" validate:"hexadecimal"`
	Starts   string            `json:"starts" validate:"startswith=ab,min=4"`
	Ends     string            `json:"ends" validate:"endswith=yz"`
	Contains string            `json:"contains" validate:"contains=mid"`
	ASCII    string            `json:"ascii" validate:"ascii,min=1"`
	E164     string            `json:"e164" validate:"e164"`
	HexColor string            `json:"hexColor" validate:"hexcolor"`
	Duration time.Duration     `json:"duration" validate:"min=1s"`
	F32      float32           `json:"f32" validate:"gt=0.5"`
	Ptr      *int              `json:"ptr" validate:"required,min=3"`
	Slice    []string          `json:"slice" validate:"required,min=2,dive,oneof=a b"`
	Map      map[string]int    `json:"map" validate:"min=1,dive,keys,len=2,endkeys,gte=10"`
	Unique   []string          `json:"unique" validate:"unique,min=2"`
	Bool     bool              `json:"bool" validate:"required"`
	NeS      string            `json:"neS" validate:"ne="`
	Array    [3]int            `json:"array" validate:"dive,min=1"`
	Alt      string            `json:"alt" validate:"email|len=3"`
	Nested   map[string][]Item `json:"nested" validate:"dive,max=1,dive"`
	Named    Level             `json:"named" validate:"oneof=2 4"`
	Required Address           `json:"required" validate:"required"`
}

type inner struct {
	Promoted string `json:"promoted"`
	hidden   string
}

type Left struct{ Twice, OnlyLeft string }

type Right struct{ Twice string }

type Both struct {
	Left
	Right
}

// Embeds covers the other embedding rules of encoding/json.
type Embeds struct {
	Status                          // a named non-struct: a field called Status
	inner                           // unexported struct: its exported fields are promoted
	*Audit `json:"audit,omitempty"` // a tag name makes it one member
	Both                            // Twice reaches Embeds from Left and Right at one depth: dropped
	Level  `json:"-"`               // left out
}
