package broker_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ferry-go/ferry/broker"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/transport"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, topic string
		want           bool
	}{
		{"a.b", "a.b", true},
		{"a.b", "a.c", false},
		{"a.*", "a.b", true},
		{"a.*", "a.b.c", false},
		{"a.*", "a", false},
		{"*.b", "a.b", true},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{">", "a.b", true},
		{"*", "a", true},
		{"*", "a.b", false},
		{"a.b", "a.b.c", false},
		{"a.b.c", "a.b", false},
	}
	for _, tt := range tests {
		if got := broker.Match(tt.pattern, tt.topic); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.topic, got, tt.want)
		}
	}
}

func TestValidTopic(t *testing.T) {
	tests := []struct {
		topic     string
		wildcards bool
		want      string // "" for valid
	}{
		{"orders.placed", false, ""},
		{"orders.*", true, ""},
		{"orders.>", true, ""},
		{"orders.*", false, "wildcards are only for subscribing"},
		{"", false, "empty"},
		{"a..b", true, "empty token"},
		{".a", true, "empty token"},
		{"a.", true, "empty token"},
		{"a b", true, "spaces"},
		{"a.\tb", true, "spaces"},
		{"a.>.b", true, `">" must be the last token`},
		{"a.b*", true, "whole tokens"},
		{strings.Repeat("a", 600), false, "longer than"},
	}
	for _, tt := range tests {
		err := broker.ValidTopic(tt.topic, tt.wildcards)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ValidTopic(%q, %v) = %v, want nil", tt.topic, tt.wildcards, err)
		case tt.want != "" && (errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ValidTopic(%q, %v) = %v, want invalid_argument containing %q", tt.topic, tt.wildcards, err, tt.want)
		}
	}
}

func TestSubscribeConfigDefaults(t *testing.T) {
	c, err := broker.NewSubscribeConfig("orders.*")
	if err != nil {
		t.Fatal(err)
	}
	if c.Concurrency != broker.DefaultConcurrency || c.MaxDeliver != broker.DefaultMaxDeliver || c.AckWait != broker.DefaultAckWait ||
		c.DeadLetter != "dlq.orders.all" || c.Logger == nil || c.Name("orders.*") != "orders.*" {
		t.Errorf("defaults = %+v", c)
	}
	c, err = broker.NewSubscribeConfig("orders.placed", broker.Ordered(), broker.Concurrency(8), broker.Queue("billing"), broker.DeadLetter(""),
		broker.Backoff(time.Second, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if c.Concurrency != 1 || c.DeadLetter != "" || c.Name("orders.placed") != "billing" {
		t.Errorf("Ordered + Queue + DeadLetter(\"\") = %+v", c)
	}
	for attempt, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 9: 2 * time.Second} {
		if got := c.Delay(attempt); got != want {
			t.Errorf("Delay(%d) = %v, want %v", attempt, got, want)
		}
	}
	_, err = broker.NewSubscribeConfig("a..b", broker.Concurrency(0), broker.Queue("x y"), broker.DeadLetter("dlq.*"))
	for _, want := range []string{`invalid topic "a..b"`, "concurrency 0", `queue "x y"`, "dead letter"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewSubscribeConfig(bad) = %v, want it to name %q", err, want)
		}
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("boom")
	if broker.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{base, false},
		{broker.Permanent(base), true},
		{fmt.Errorf("wrapped: %w", broker.Permanent(base)), true},
		{errs.New(errs.InvalidArgument, "bad"), true},
		{errs.New(errs.Unavailable, "later"), false},
	} {
		if got := broker.IsPermanent(tt.err); got != tt.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if !errors.Is(broker.Permanent(base), base) {
		t.Error("Permanent(err) does not unwrap to err")
	}
}

func TestDeadLetterMessage(t *testing.T) {
	d := &broker.Delivery{
		Message:      broker.Message{Topic: "orders.placed", ID: "o-1", Header: transport.Pairs("x-a", "1"), Data: []byte(`{}`)},
		Attempt:      5,
		Sequence:     42,
		Subscription: "billing",
	}
	m := broker.DeadLetterMessage(d, "dlq.orders.placed", errors.New(strings.Repeat("x", 5000)))
	if m.Topic != "dlq.orders.placed" || m.ID != "dlq-billing-42" || string(m.Data) != "{}" || m.Header.Get("x-a") != "1" ||
		m.Header.Get(broker.DeadLetterDeliveriesKey) != "5" || m.Header.Get(broker.DeadLetterSequenceKey) != "42" ||
		len(m.Header.Get(broker.DeadLetterErrorKey)) != 1024 {
		t.Errorf("DeadLetterMessage = %+v", m)
	}
	if d.Header.Get(broker.DeadLetterTopicKey) != "" {
		t.Error("DeadLetterMessage changed the original's headers")
	}
	// The cut falls inside a two-byte character: the header keeps whole
	// characters only. Line breaks (errors.Join) cannot go into a header.
	long := errors.Join(errors.New("first"), errors.New(strings.Repeat("é", 600)))
	got := broker.DeadLetterMessage(d, "dlq.orders.placed", long).Header.Get(broker.DeadLetterErrorKey)
	if !utf8.ValidString(got) || len(got) > 1024 || len(got) < 1020 || !strings.HasPrefix(got, "first; éé") || strings.ContainsAny(got, "\r\n") {
		t.Errorf("error header = %q (%d bytes), want valid UTF-8, one line, at most 1024 bytes", got, len(got))
	}
}

// FuzzTopic: ValidTopic and Match never panic, a valid publish topic
// matches itself and ">" and, token for token, "*".
func FuzzTopic(f *testing.F) {
	for _, s := range []string{"orders.placed", "a", "a.b.c", "a..b", "a.*", "a.>", " ", "\x00", "é.ü", ">"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		if broker.ValidTopic(topic, false) != nil {
			_ = broker.ValidTopic(topic, true)
			_ = broker.Match(topic, topic)
			return
		}
		if broker.ValidTopic(topic, true) != nil {
			t.Fatalf("ValidTopic(%q) passes without wildcards and fails with them", topic)
		}
		stars := strings.Repeat("*.", strings.Count(topic, ".")) + "*"
		if !broker.Match(topic, topic) || !broker.Match(">", topic) || !broker.Match(stars, topic) {
			t.Fatalf("Match(%q, itself / > / %s) = false", topic, stars)
		}
		if broker.Match(topic+".x", topic) {
			t.Fatalf("Match(%q.x, %q) = true", topic, topic)
		}
	})
}
