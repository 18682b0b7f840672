package rabbitmq

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
	amqp "github.com/rabbitmq/amqp091-go"
)

// maxName is how long a derived queue name may get before it is shortened:
// AMQP names hold 255 bytes, and a retry queue adds a suffix.
const maxName = 200

// GroupQueue returns the name of the durable queue shared by the queue
// group queue on topic: "<exchange>.<queue>.<topic>", e.g.
// "ferry.billing.orders.placed". Names longer than 200 bytes keep their
// first 180 bytes and end in "~" and a hash of the whole name.
func GroupQueue(exchange, queue, topic string) string {
	return shorten(exchange + "." + queue + "." + topic)
}

// RetryQueue returns the name of the retry queue of queue for one back-off
// delay: "<queue>.retry.<delay>", e.g. "ferry.billing.orders.placed.retry.1s".
func RetryQueue(queue string, delay time.Duration) string {
	return queue + ".retry." + delay.String()
}

// DurableQueues returns the durable queues a subscription with cfg on
// topic declares on exchange, which stay on the server after it drained:
// none for a fan-out subscription (its queue expires by itself), else its
// group queue (GroupQueue) and, unless Ordered (which retries in place),
// one retry queue per distinct back-off delay (RetryQueue). Delete them
// to tear a queue group down for good.
func DurableQueues(exchange, topic string, cfg broker.SubscribeConfig) []string {
	if cfg.Queue == "" {
		return nil
	}
	q := GroupQueue(exchange, cfg.Queue, topic)
	queues := []string{q}
	for _, d := range retryDelays(cfg) {
		queues = append(queues, RetryQueue(q, d))
	}
	return queues
}

// retryDelays are the distinct positive back-off delays of a queue-group
// subscription that retries through retry queues, in order; none for an
// ordered one.
func retryDelays(cfg broker.SubscribeConfig) []time.Duration {
	if cfg.Queue == "" || cfg.Ordered {
		return nil
	}
	var delays []time.Duration
	for _, d := range cfg.Backoff {
		if d > 0 && !slices.Contains(delays, d) {
			delays = append(delays, d)
		}
	}
	return delays
}

// fanoutQueue names a fan-out subscription's own queue.
func fanoutQueue(exchange, topic, unique string) string {
	return shorten(exchange + ".fanout." + topic + "." + unique)
}

func shorten(name string) string {
	if len(name) <= maxName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return strings.ToValidUTF8(name[:180], "") + "~" + hex.EncodeToString(sum[:8])
}

// BindingKey translates a Ferry topic pattern into an AMQP topic-exchange
// binding key: "*" stays "*" (one word); a final ">" (one or more tokens)
// becomes "*.#", since AMQP's "#" alone also matches no word at all.
func BindingKey(topic string) string {
	if topic == ">" {
		return "*.#"
	}
	if rest, ok := strings.CutSuffix(topic, ".>"); ok {
		return rest + ".*.#"
	}
	return topic
}

// checkSubscribeTopic rejects what ValidTopic lets through and AMQP cannot
// bind: a "#" token (a wildcard in AMQP, a plain token in Ferry) and keys
// longer than a routing key holds.
func checkSubscribeTopic(topic string) error {
	for tok := range strings.SplitSeq(topic, ".") {
		if tok == "#" {
			return errs.Newf(errs.InvalidArgument, `broker/rabbitmq: invalid topic %q: a "#" token is an AMQP wildcard; use ">"`, topic)
		}
	}
	if k := BindingKey(topic); len(k) > maxRoutingKey {
		return errs.Newf(errs.InvalidArgument, "broker/rabbitmq: invalid topic %q: longer than %d bytes, the most an AMQP binding key holds", topic, maxRoutingKey)
	}
	return nil
}

// Internal headers: the attempt a retried message is on, and the topic it
// was published to (a retried message comes back with the queue's name as
// its routing key).
const (
	attemptHeader = "ferry-attempt"
	topicHeader   = "ferry-topic"
)

// serverHeaders are headers RabbitMQ adds; they are not the message's
// metadata.
var serverHeaders = map[string]bool{
	"x-death":                true,
	"x-delivery-count":       true,
	"x-first-death-exchange": true,
	"x-first-death-queue":    true,
	"x-first-death-reason":   true,
	"x-last-death-exchange":  true,
	"x-last-death-queue":     true,
	"x-last-death-reason":    true,
	attemptHeader:            true,
	topicHeader:              true,
}

// toTable turns metadata into AMQP headers: one value as a string, more as
// an array of strings. Keys are lower-case.
func toTable(h transport.Metadata) amqp.Table {
	if len(h) == 0 {
		return nil
	}
	t := make(amqp.Table, len(h))
	for k, vs := range h {
		switch len(vs) {
		case 0:
		case 1:
			t[strings.ToLower(k)] = vs[0]
		default:
			arr := make([]any, len(vs))
			for i, v := range vs {
				arr[i] = v
			}
			t[strings.ToLower(k)] = arr
		}
	}
	return t
}

// fromTable turns AMQP headers into metadata, leaving out the server's and
// Ferry's internal ones. Values that are no strings (a header set by
// another AMQP client) are formatted.
func fromTable(t amqp.Table) transport.Metadata {
	h := make(transport.Metadata, len(t))
	for k, v := range t {
		k = strings.ToLower(k)
		if serverHeaders[k] {
			continue
		}
		switch v := v.(type) {
		case string:
			h[k] = []string{v}
		case []byte:
			h[k] = []string{string(v)}
		case []any:
			vs := make([]string, 0, len(v))
			for _, e := range v {
				vs = append(vs, headerString(e))
			}
			h[k] = vs
		case nil:
		default:
			h[k] = []string{headerString(v)}
		}
	}
	return h
}

func headerString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	default:
		return fmt.Sprint(v)
	}
}

// intHeader reads an integer header of any AMQP integer type.
func intHeader(t amqp.Table, key string) (int64, bool) {
	switch v := t[key].(type) {
	case int64:
		return v, true
	case int32:
		return int64(v), true
	case int16:
		return int64(v), true
	case int8:
		return int64(v), true
	case int:
		return int64(v), true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}
