package broker

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ferry-go/ferry/errs"
)

// maxTopic bounds a topic's length; NATS subjects have no hard limit but
// long ones cost on every message.
const maxTopic = 512

// ValidTopic checks a topic: dot-separated non-empty tokens without
// spaces or control characters. With wildcards, a token may be "*" (any
// one token) and the last may be ">" (one or more tokens); without, they
// are rejected, as for publishing. The error is InvalidArgument and names
// the topic.
func ValidTopic(topic string, wildcards bool) error {
	if plainTopic(topic) {
		return nil // the common case, in one pass: no token to look at twice
	}
	if err := checkTopic(topic, wildcards); err != nil {
		return errs.Newf(errs.InvalidArgument, "invalid topic %q: %v", topic, err)
	}
	return nil
}

// plainTopic reports whether topic is valid without wildcards: at most
// maxTopic bytes of non-empty dot-separated tokens holding no space,
// control character, '*' or '>'. It looks at each byte once; whatever it
// refuses, checkTopic looks at again, to accept a wildcard or name the
// problem.
func plainTopic(topic string) bool {
	if topic == "" || len(topic) > maxTopic || topic[0] == '.' || topic[len(topic)-1] == '.' {
		return false
	}
	prev := byte(0)
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		if c <= ' ' || c == 0x7f || c == '*' || c == '>' || (c == '.' && prev == '.') {
			return false
		}
		prev = c
	}
	return true
}

func checkTopic(topic string, wildcards bool) error {
	if topic == "" {
		return errors.New("empty")
	}
	if len(topic) > maxTopic {
		return fmt.Errorf("longer than %d bytes", maxTopic)
	}
	for rest, more := topic, true; more; {
		var tok string
		tok, rest, more = strings.Cut(rest, ".")
		if tok == "" {
			return errors.New("empty token")
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c == 0x7f {
				return errors.New("spaces or control characters")
			}
		}
		switch {
		case tok == "*" || tok == ">":
			if !wildcards {
				return errors.New("wildcards are only for subscribing")
			}
			if tok == ">" && more {
				return errors.New(`">" must be the last token`)
			}
		case strings.ContainsAny(tok, "*>"):
			return errors.New(`"*" and ">" must be whole tokens`)
		}
	}
	return nil
}

// Match reports whether topic (without wildcards) matches pattern, NATS
// style: "*" matches one token, a final ">" one or more.
func Match(pattern, topic string) bool {
	for {
		p, prest, pmore := strings.Cut(pattern, ".")
		t, trest, tmore := strings.Cut(topic, ".")
		switch {
		case p == ">":
			return true
		case p != "*" && p != t:
			return false
		case !pmore || !tmore:
			return pmore == tmore
		}
		pattern, topic = prest, trest
	}
}

// wildcardFree turns a pattern into a subject usable for publishing, for
// default dead-letter subjects: "orders.*" → "orders.all", "a.>" →
// "a.all".
func wildcardFree(topic string) string {
	tokens := strings.Split(topic, ".")
	for i, t := range tokens {
		if t == "*" || t == ">" {
			tokens[i] = "all"
		}
	}
	return strings.Join(tokens, ".")
}

// checkName checks a queue or durable name: JetStream durable names may
// not hold '.', '*', '>' or white space.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if len(name) > 128 {
		return errors.New("longer than 128 bytes")
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '.' || r == '*' || r == '>' }) {
		return errors.New(`want no '.', '*', '>' or white space`)
	}
	return nil
}
