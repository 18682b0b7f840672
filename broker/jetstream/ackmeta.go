package jetstream

import "strings"

// ackMeta is what a delivery reads from a message's ack subject: nats.go's
// MsgMetadata fields NumDelivered, Sequence.Stream and Timestamp (in
// nanoseconds).
type ackMeta struct {
	delivered, streamSeq, timestamp uint64
}

// ackMetadata reads the ack subject reply as nats.go 1.55's
// Msg.Metadata does (internal/parser.GetMetadataFields and ParseNum), the
// same numbers, without allocating the MsgMetadata: the old form
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>
//
// and the new one, with <domain>.<account hash> after $JS.ACK. and
// possibly more tokens at the end. ok is false where Metadata fails.
func ackMetadata(reply string) (md ackMeta, ok bool) {
	const prefix = "$JS.ACK."
	tokens := strings.Count(reply, ".") + 1
	if tokens < 9 || (tokens > 9 && tokens < 11) || !strings.HasPrefix(reply, prefix) {
		return ackMeta{}, false
	}
	rest := reply[len(prefix):]
	skip := 2 // the stream and the consumer
	if tokens > 9 {
		skip += 2 // the domain and the account hash
	}
	for range skip {
		_, rest, _ = strings.Cut(rest, ".")
	}
	var delivered, sseq, tm string
	delivered, rest, _ = strings.Cut(rest, ".")
	sseq, rest, _ = strings.Cut(rest, ".")
	_, rest, _ = strings.Cut(rest, ".") // the consumer sequence
	tm, _, _ = strings.Cut(rest, ".")
	return ackMeta{delivered: parseNum(delivered), streamSeq: parseNum(sseq), timestamp: parseNum(tm)}, true
}

// parseNum is nats.go's parser.ParseNum: decimal digits only, else 0,
// overflow not detected.
func parseNum(d string) (n uint64) {
	for i := 0; i < len(d); i++ {
		c := d[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}
