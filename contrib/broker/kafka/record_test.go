package kafka

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/transport"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRecordRoundTrip: what Publish writes is what a handler gets: the ID
// as key and ferry-msg-id header (generated when empty), the headers with
// lower-case keys and all their values, an ID header among the message's
// ignored; whether the ID and values fit in the record's own room or not.
func TestRecordRoundTrip(t *testing.T) {
	long := string(make([]byte, 200))
	for _, m := range []*broker.Message{
		{Topic: "a.b", Data: []byte("x")},
		{Topic: "a.b", ID: "order-7", Data: []byte("x")},
		{Topic: "a.b", ID: "order-8", Header: transport.Metadata{"traceparent": {"00-abc-def-01"}, "X-Multi": {"1", "2"}, IDHeader: {"not-this"}}},
		{Topic: "a.b", Header: transport.Metadata{"big": {long}, "k1": {"v"}, "k2": {"v"}, "k3": {"v"}}},
	} {
		o := newOutgoing(m)
		id := string(o.rec.Key)
		if m.ID != "" && id != m.ID || m.ID == "" && len(id) != idLen {
			t.Errorf("%v: key %q, want the message ID or a new one", m, id)
		}
		if o.id() != id {
			t.Errorf("%v: ferry-msg-id %q, key %q", m, o.id(), id)
		}
		s := &subscription{name: "q"}
		var d broker.Delivery
		s.fill(&d, &kgo.Record{Topic: m.Topic, Key: o.rec.Key, Value: o.rec.Value, Headers: o.rec.Headers, Offset: 3}, 2)
		if d.ID != id || d.Topic != m.Topic || string(d.Data) != string(m.Data) || d.Attempt != 2 || d.Sequence != 3 || d.Kind != Kind || d.Subscription != "q" {
			t.Errorf("%v: delivery %+v", m, d)
		}
		want := transport.Metadata{}
		for k, vs := range m.Header {
			if !strings.EqualFold(k, IDHeader) {
				want[strings.ToLower(k)] = vs
			}
		}
		if len(d.Header) != len(want) {
			t.Errorf("%v: headers %v, want %v", m, d.Header, want)
		}
		for k, vs := range want {
			if !slices.Equal(d.Header[k], vs) {
				t.Errorf("%v: header %s = %q, want %q", m, k, d.Header[k], vs)
			}
		}
		d.Header.Set("added", "by a handler") // the header is the handler's to change
	}
}

// TestRecordAllocations: the record of a message without headers, or
// with a W3C traceparent, is one allocation, its ID and headers included
// (Publish adds the promise's); a delivery of a message without headers
// costs two besides the delivery context: the header map and the ID
// string.
func TestRecordAllocations(t *testing.T) {
	for _, m := range []*broker.Message{
		{Topic: "a.b", Data: []byte("x")},
		{Topic: "a.b", Data: []byte("x"), Header: transport.Metadata{"traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}},
	} {
		if n := testing.AllocsPerRun(100, func() { sinkOutgoing = newOutgoing(m) }); n != 1 {
			t.Errorf("newOutgoing(%v): %v allocations, want 1", m.Header, n)
		}
	}
	o := newOutgoing(&broker.Message{Topic: "a.b", Data: []byte("x")})
	r := &kgo.Record{Topic: o.rec.Topic, Key: o.rec.Key, Value: o.rec.Value, Headers: o.rec.Headers}
	s := &subscription{name: "q"}
	var d broker.Delivery
	if n := testing.AllocsPerRun(100, func() { s.fill(&d, r, 1) }); n > 2 {
		t.Errorf("fill: %v allocations, want at most 2", n)
	}
}

var sinkOutgoing *outgoing
