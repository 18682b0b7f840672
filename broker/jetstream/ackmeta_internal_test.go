package jetstream

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// ackSubjects are ack subjects in the forms servers send and malformed
// ones, for TestAckMetadata and as FuzzAckMetadata's seeds.
var ackSubjects = []string{
	"$JS.ACK.ORDERS.billing.1.42.7.1733200000000000000.0",                       // the old form
	"$JS.ACK._.ABCHASH.ORDERS.billing.3.42.7.1733200000000000000.12.rnd",        // the new one
	"$JS.ACK.hub.ABCHASH.ORDERS.billing.3.42.7.1733200000000000000.12",          // 11 tokens
	"$JS.ACK.hub.ABCHASH.ORDERS.billing.3.42.7.1733200000000000000.12.rnd.more", // more at the end
	"$JS.ACK.ORDERS.billing.x.42.7.1733200000000000000.0",                       // not a number
	"$JS.ACK.ORDERS.billing..42.7..0",                                           // empty numbers
	"$JS.ACK.ORDERS.billing.99999999999999999999999.1.1.1.1",                    // overflows
	"$JS.ACK.ORDERS.billing.1.42.7.1733200000000000000",                         // 8 tokens
	"$JS.ACK.d.h.ORDERS.billing.3.42.7.1733200000000000000",                     // 10 tokens
	"$JS.NAK.ORDERS.billing.1.42.7.1733200000000000000.0",                       // another prefix
	"_INBOX.abc",
	"",
}

// TestAckMetadata: ackMetadata reads what nats.go's Metadata reads, and
// fails where it fails.
func TestAckMetadata(t *testing.T) {
	for _, s := range ackSubjects {
		checkAckMetadata(t, s)
	}
}

func FuzzAckMetadata(f *testing.F) {
	for _, s := range ackSubjects {
		f.Add(s)
	}
	f.Fuzz(checkAckMetadata)
}

func checkAckMetadata(t *testing.T, reply string) {
	want, werr := (&nats.Msg{Reply: reply, Sub: &nats.Subscription{}}).Metadata()
	got, ok := ackMetadata(reply)
	switch {
	case ok != (werr == nil):
		t.Errorf("ackMetadata(%q) ok = %v, nats.go's Metadata error = %v", reply, ok, werr)
	case ok && (got.delivered != want.NumDelivered || got.streamSeq != want.Sequence.Stream || int64(got.timestamp) != want.Timestamp.UnixNano()):
		t.Errorf("ackMetadata(%q) = %+v, nats.go's Metadata = delivered %d, stream sequence %d, time %d",
			reply, got, want.NumDelivered, want.Sequence.Stream, want.Timestamp.UnixNano())
	}
}
