package nats

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzReplyTimeout: a reply subject yields a deadline only when its last
// token is "ferry-t" and a positive whole number of milliseconds, and the
// deadline is that number, cut to the limit.
func FuzzReplyTimeout(f *testing.F) {
	for _, s := range []string{"_INBOX.a.1.ferry-t250", "_INBOX.a.ferry-t", "ferry-t-1", "x.ferry-t+1", "x.ferry-t99999999999999999999", "_INBOX.abc.XyZ", ""} {
		f.Add(s)
	}
	const limit = time.Minute
	f.Fuzz(func(t *testing.T, reply string) {
		d, ok := replyTimeout(reply, limit)
		tok := reply[strings.LastIndexByte(reply, '.')+1:]
		v, marked := strings.CutPrefix(tok, replyTimeoutPrefix)
		digits := v != "" && strings.Trim(v, "0123456789") == ""
		want := marked && digits && strings.Trim(v, "0") != ""
		ms, err := strconv.ParseUint(v, 10, 64) // err: too many digits, cut to the limit
		if ok != want {
			t.Fatalf("replyTimeout(%q) ok = %v, want %v", reply, ok, want)
		}
		if ok && (d <= 0 || d > limit || (err == nil && ms < uint64(limit/time.Millisecond) && d != time.Duration(ms)*time.Millisecond)) {
			t.Fatalf("replyTimeout(%q) = %v", reply, d)
		}
	})
}

// What the client writes, the server reads.
func TestReplyTimeoutRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{time.Nanosecond, time.Millisecond, 1500 * time.Microsecond, 30 * time.Second} {
		reply := "_INBOX.x.1." + replyTimeoutPrefix + strconv.FormatInt(timeoutMillis(d), 10)
		got, ok := replyTimeout(reply, time.Hour)
		if want := time.Duration(timeoutMillis(d)) * time.Millisecond; !ok || got != want {
			t.Errorf("replyTimeout(%q) = %v, %v; want %v", reply, got, ok, want)
		}
	}
}
