package broker

import (
	"strconv"
	"strings"
)

// Headers a dead letter carries besides the original message's.
const (
	// DeadLetterTopicKey holds the topic the message was published to.
	DeadLetterTopicKey = "ferry-dead-letter-topic"
	// DeadLetterErrorKey holds the last handler error.
	DeadLetterErrorKey = "ferry-dead-letter-error"
	// DeadLetterDeliveriesKey holds how many times it was delivered.
	DeadLetterDeliveriesKey = "ferry-dead-letter-deliveries"
	// DeadLetterSubscriptionKey holds the subscription that gave up.
	DeadLetterSubscriptionKey = "ferry-dead-letter-subscription"
	// DeadLetterSequenceKey holds the message's stream sequence.
	DeadLetterSequenceKey = "ferry-dead-letter-sequence"
	// DeadLetterIDKey holds the original message ID.
	DeadLetterIDKey = "ferry-dead-letter-id"
)

// maxErrorHeader bounds the error text put in a header.
const maxErrorHeader = 1024

// DeadLetterMessage returns the dead letter of d, which failed with err,
// for subject: the original payload and headers, plus the
// ferry-dead-letter-* headers. Its ID is derived from the subscription and
// the original message, so that a broker that de-duplicates stores it once
// even if dead-lettering is retried.
func DeadLetterMessage(d *Delivery, subject string, err error) *Message {
	h := d.Header.Clone()
	if h == nil {
		h = map[string][]string{}
	}
	msg := "unknown error"
	if err != nil {
		msg = headerText(err.Error(), maxErrorHeader)
	}
	h.Set(DeadLetterTopicKey, d.Topic)
	h.Set(DeadLetterErrorKey, msg)
	h.Set(DeadLetterDeliveriesKey, strconv.Itoa(d.Attempt))
	h.Set(DeadLetterSubscriptionKey, d.Subscription)
	h.Set(DeadLetterIDKey, d.ID)
	key := d.ID
	if d.Sequence != 0 {
		h.Set(DeadLetterSequenceKey, strconv.FormatUint(d.Sequence, 10))
		key = strconv.FormatUint(d.Sequence, 10)
	}
	return &Message{Topic: subject, ID: "dlq-" + d.Subscription + "-" + key, Header: h, Data: d.Data}
}

// headerText makes s fit a header value: line breaks and other control
// characters (errors.Join puts newlines between errors; a NATS header line
// cannot hold one) become "; " or a space, invalid UTF-8 becomes U+FFFD, and
// the result is cut to at most limit bytes on a character boundary.
func headerText(s string, limit int) string {
	var b strings.Builder
	b.Grow(min(len(s), limit))
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		var piece string
		switch {
		case r == '\n':
			piece = "; "
		case r < 0x20 || r == 0x7f:
			piece = " "
		default:
			piece = string(r)
		}
		if b.Len()+len(piece) > limit {
			break
		}
		b.WriteString(piece)
	}
	return b.String()
}
