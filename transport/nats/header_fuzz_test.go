package nats

// White-box fuzz tests of the wire parsers: they see untrusted input from
// any NATS client, so they must never panic and must keep their contracts.
// Seeds live in testdata/fuzz; run with e.g.
// go test -fuzz=FuzzParseTimeout ./transport/nats/

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

func FuzzParseTimeout(f *testing.F) {
	for _, s := range []string{"1", "250", "30000", "0", "-1", "", " 5", "1e3", "+7", "9223372036854", "9223372036855", "99999999999999999999", "0x10", "١٢"} {
		f.Add(s)
	}
	const limit = 5 * time.Minute
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseTimeout(s, limit)
		if err != nil {
			if errs.CodeOf(err) != errs.InvalidArgument {
				t.Fatalf("parseTimeout(%q) error = %v, want invalid_argument", s, err)
			}
			if !strings.Contains(err.Error(), TimeoutHeader) {
				t.Fatalf("parseTimeout(%q) error = %v, want it to name %s", s, err, TimeoutHeader)
			}
			return
		}
		if d <= 0 || d%time.Millisecond != 0 || d > limit {
			t.Fatalf("parseTimeout(%q) = %v, want a positive whole number of ms, at most %v", s, d, limit)
		}
		back, err := parseTimeout(formatTimeout(d), limit)
		if err != nil || back != d {
			t.Fatalf("parseTimeout(formatTimeout(%v)) = %v, %v, want %v", d, back, err, d)
		}
	})
}

func FuzzFormatTimeout(f *testing.F) {
	for _, d := range []int64{-5, 0, 1, int64(time.Millisecond) - 1, int64(time.Millisecond), int64(time.Millisecond) + 1, int64(30 * time.Second), 1<<63 - 1} {
		f.Add(d)
	}
	limit := time.Duration(maxTimeoutMs) * time.Millisecond
	f.Fuzz(func(t *testing.T, n int64) {
		d := time.Duration(n)
		got, err := parseTimeout(formatTimeout(d), limit)
		if err != nil {
			t.Fatalf("parseTimeout(formatTimeout(%v)) = %v, want nil error", d, err)
		}
		if got <= 0 || (d <= limit && got < d) || (d > 0 && got-d >= time.Millisecond) {
			t.Fatalf("formatTimeout(%v) round trips to %v, want d rounded up to whole ms, at least 1ms", d, got)
		}
	})
}

func FuzzReplyError(f *testing.F) {
	f.Add("not_found", "404", "no user", []byte(`{"code":"not_found","message":"no user 42","details":[{"field":"id","reason":"unknown"}]}`))
	f.Add("", "404", "gone", []byte(nil))
	f.Add("", "abc", "", []byte(nil))
	f.Add("NOT_FOUND", "", "", []byte(`{"code":"internal"}`))
	f.Add("bogus", "503", "down", []byte(`{`))
	f.Add("", "", "", []byte(`{"message":"success"}`))
	f.Fuzz(func(t *testing.T, code, status, msg string, body []byte) {
		h := nats.Header{}
		if code != "" {
			h[ErrorCodeHeader] = []string{code}
		}
		if status != "" {
			h[micro.ErrorCodeHeader] = []string{status}
		}
		if msg != "" {
			h[micro.ErrorHeader] = []string{msg}
		}
		e := replyError(h, body)
		if code == "" && status == "" && msg == "" {
			if e != nil {
				t.Fatalf("replyError(no error headers) = %v, want nil", e)
			}
			return
		}
		want, isFerry := errs.ParseCode(code)
		if !isFerry && status == "" && msg == "" {
			if e != nil {
				t.Fatalf("replyError(only an unknown %s %q) = %v, want nil", ErrorCodeHeader, code, e)
			}
			return
		}
		if e == nil {
			t.Fatalf("replyError(%q, %q, %q) = nil, want an error", code, status, msg)
		}
		if !e.Code().Valid() {
			t.Fatalf("replyError(%q, %q, %q) code = %v, want a canonical code", code, status, msg, e.Code())
		}
		if isFerry && e.Code() != want {
			t.Fatalf("replyError(%s %q) code = %v, want %v", ErrorCodeHeader, code, e.Code(), want)
		}
	})
}

func FuzzHeader(f *testing.F) {
	f.Add("X-User", "x-user", "bob")
	f.Add("content-type", "Content-Type", "application/json")
	f.Add("Ferry-Timeout-Ms", "FERRY-TIMEOUT-MS", "100")
	f.Fuzz(func(t *testing.T, key, other, value string) {
		up, low := strings.ToUpper(key), strings.ToLower(key)
		if !strings.EqualFold(key, up) || !strings.EqualFold(key, low) {
			t.Skip("case mapping leaves the fold class; NATS header keys are ASCII")
		}
		h := header(nats.Header{other: {"first"}})
		h.Set(key, value)
		if got := h.Get(up); got != value {
			t.Fatalf("after Set(%q, %q): Get(%q) = %q, want %q", key, value, up, got, value)
		}
		if vs := h.Values(key); len(vs) != 1 || vs[0] != value {
			t.Fatalf("after Set(%q, %q): Values = %q, want [%q]", key, value, vs, value)
		}
		for _, k := range h.Keys() {
			if k != strings.ToLower(k) {
				t.Fatalf("Keys() has %q, want lower-case keys", k)
			}
		}
		h.Add(low, "more")
		if vs := h.Values(up); len(vs) != 2 {
			t.Fatalf("after Set(%q) and Add(%q): Values(%q) = %q, want 2 values", key, low, up, vs)
		}
		h.Del(up)
		if vs := h.Values(key); len(vs) != 0 {
			t.Fatalf("after Del(%q): Values(%q) = %q, want none", up, key, vs)
		}
	})
}
