package http

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

type sseEvent struct{ event, data string }

func readSSE(input []byte, limit int64) ([]sseEvent, error) {
	r := &sseReader{br: bufio.NewReaderSize(bytes.NewReader(input), 16), limit: limit}
	var evs []sseEvent
	for {
		ev, data, err := r.next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, sseEvent{ev, string(data)})
	}
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name, in string
		want     []sseEvent
	}{
		{"one event", "data: {}\n\n", []sseEvent{{"message", "{}"}}},
		{"typed", "event: end\ndata: x\n\n", []sseEvent{{"end", "x"}}},
		{"multi-line data", "data: a\ndata: b\ndata:\n\n", []sseEvent{{"message", "a\nb\n"}}},
		{"CRLF", "data: a\r\ndata: b\r\n\r\n", []sseEvent{{"message", "a\nb"}}},
		{"CR", "data: a\rdata: b\r\rdata: c\r\r", []sseEvent{{"message", "a\nb"}, {"message", "c"}}},
		{"mixed", "data: a\r\n\ndata: b\n\r\n", []sseEvent{{"message", "a"}, {"message", "b"}}},
		{"comments", ": hello\ndata: a\n: more\n\n:\n\n", []sseEvent{{"message", "a"}}},
		{"no space", "data:a\nevent:e\n\n", []sseEvent{{"e", "a"}}},
		{"two spaces", "data:  a\n\n", []sseEvent{{"message", " a"}}},
		{"field without colon", "data\n\n", []sseEvent{{"message", ""}}},
		{"no data is no event", "event: end\n\ndata: x\n\n", []sseEvent{{"message", "x"}}},
		{"unknown fields", "id: 7\nretry: 10\nfoo: bar\ndata: x\n\n", []sseEvent{{"message", "x"}}},
		{"byte order mark", "\xef\xbb\xbfdata: x\n\n", []sseEvent{{"message", "x"}}},
		{"unfinished event dropped", "data: x\n\ndata: y\n", []sseEvent{{"message", "x"}}},
		{"colon in value", "data: {\"a\":1}\n\n", []sseEvent{{"message", `{"a":1}`}}},
	}
	for _, tt := range tests {
		got, err := readSSE([]byte(tt.in), 1<<10)
		if err != io.EOF || !equalEvents(got, tt.want) {
			t.Errorf("%s: %q = %q, %v; want %q, io.EOF", tt.name, tt.in, got, err, tt.want)
		}
	}
	if _, err := readSSE([]byte("data: "+strings.Repeat("x", 2000)+"\n\n"), 1000); !errors.Is(err, errTooLarge) {
		t.Errorf("2000-byte data, 1000-byte limit: %v, want errTooLarge", err)
	}
	if _, err := readSSE([]byte(strings.Repeat("data: xxxxxxxx\n", 200)+"\n"), 1000); !errors.Is(err, errTooLarge) {
		t.Errorf("data lines adding up past the limit: %v, want errTooLarge", err)
	}
}

func equalEvents(a, b []sseEvent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzSSE reads arbitrary input as an event stream — never a panic, and
// no event over the limit — and checks that what the server writes
// (appendSSE) reads back as the data it wrote, line breaks made "\n".
func FuzzSSE(f *testing.F) {
	for _, s := range []string{
		"data: {}\n\n", "event: end\ndata: {\"trailer\":{}}\n\n", "data: a\r\ndata: b\r\n\r\n",
		"data: a\rdata: b\r\r", ": comment\n\n", "\xef\xbb\xbfdata: x\n\n", "data\n\n", "data: x\n",
		"event: error\ndata: {\"code\":\"aborted\"}\n\n", "\r\n\r\n\n\r", "id: \x00\ndata: 1\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 256
		evs, err := readSSE(in, limit)
		if err != io.EOF && !errors.Is(err, errTooLarge) {
			t.Fatalf("%q: %v", in, err)
		}
		for _, ev := range evs {
			if len(ev.data) > limit {
				t.Fatalf("%q: event of %d bytes past the %d-byte limit", in, len(ev.data), limit)
			}
		}
		frame := appendSSE(nil, "x", in)
		evs, err = readSSE(frame, int64(len(frame)))
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(in))
		if err != io.EOF || len(evs) != 1 || evs[0].event != "x" || evs[0].data != want {
			t.Fatalf("appendSSE(%q) = %q reads back as %q, %v; want one x event of %q", in, frame, evs, err, want)
		}
	})
}

func readNDJSON(in []byte, limit int64) ([]string, error) {
	r := &ndjsonReader{br: bufio.NewReaderSize(bytes.NewReader(in), 16), limit: limit}
	var lines []string
	for {
		line, err := r.next()
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(line))
	}
}

// FuzzNDJSON reads arbitrary input as NDJSON: its lines are the input's
// non-blank lines, without their "\n" or "\r\n", none over the limit.
func FuzzNDJSON(f *testing.F) {
	for _, s := range []string{"{}\n{\"a\":1}\n", "{}\r\n\r\n{}", "\n\n\n", "{\"a\":\"" + strings.Repeat("x", 40) + "\"}\n", "x\ry\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 32
		lines, err := readNDJSON(in, limit)
		if errors.Is(err, errTooLarge) {
			return
		}
		if err != io.EOF {
			t.Fatalf("%q: %v", in, err)
		}
		var want []string
		for l := range strings.Lines(string(in)) {
			l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
			if strings.TrimSpace(l) != "" {
				want = append(want, l)
			}
		}
		if strings.Join(lines, "\x00") != strings.Join(want, "\x00") || len(lines) != len(want) {
			t.Fatalf("%q: lines %q, want %q", in, lines, want)
		}
		for _, l := range lines {
			if len(l) > limit {
				t.Fatalf("%q: line of %d bytes past the %d-byte limit", in, len(l), limit)
			}
		}
	})
}

// FuzzEnvelope decodes arbitrary frames as the server decodes a caller's
// and the client a server's: never a panic, a message is valid JSON, a
// credit is within its bounds, and an envelope built around valid JSON
// always decodes to it.
func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"msg":{"seq":1}}`, `{"end":true}`, `{"end":false}`, `{"msg":1,"end":true}`, `{"mgs":{}}`,
		`hello`, ``, `null`, `[]`, `{"header":{"x":["1"]}}`, `{"error":{"code":"aborted"}}`, `{"msg":"\ud800"}`,
		`{"msg":{}} trailing`, `{"end":{"trailer":{}}}`, "{\"msg\":\"\xff\"}",
		`{"credit":32}`, `{"credit":0}`, `{"credit":-1}`, `{"credit":1.5}`, `{"credit":1e3}`, `{"credit":"32"}`,
		`{"credit":2147483648}`, `{"credit":99999999999999999999}`, `{"credit":-0}`, `{"credit":1,"msg":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		env, err := decodeEnvelope(frame)
		kinds := 0
		for _, is := range []bool{env.msg != nil, env.end, env.credit != 0} {
			if is {
				kinds++
			}
		}
		switch {
		case err != nil:
			if !strings.Contains(err.Error(), `want {"msg": <message>}, {"end": true} or {"credit": <messages>}`) {
				t.Fatalf("%q: error %q does not say what a frame should be", frame, err)
			}
			if kinds != 0 {
				t.Fatalf("%q: an error with an envelope %+v", frame, env)
			}
		case kinds != 1:
			t.Fatalf("%q: envelope %+v is not one of a message, the end and credit", frame, env)
		case env.credit != 0 && (env.credit < 1 || env.credit > maxCredit):
			t.Fatalf("%q: credit %d out of bounds", frame, env.credit)
		case env.msg != nil && !json.Valid(env.msg):
			t.Fatalf("%q: message %q is not JSON", frame, env.msg)
		}
		if _, _, err := decodeServerEnvelope(frame); err != nil && !strings.HasPrefix(err.Error(), "internal: http:") {
			t.Fatalf("%q: client error %q", frame, err)
		}
		if json.Valid(frame) {
			wrapped := append(append([]byte(`{"msg":`), frame...), '}')
			if env, err := decodeEnvelope(wrapped); err != nil || env.end || env.credit != 0 || !bytes.Equal(bytes.TrimSpace(env.msg), bytes.TrimSpace(frame)) {
				t.Fatalf("envelope %q = %+v, %v; want the message back", wrapped, env, err)
			}
		}
	})
}

// TestParseCredit: a credit is a JSON integer from 1 to 2^31-1; anything
// else is refused, naming what was wrong.
func TestParseCredit(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "32": 32, "2147483647": maxCredit} {
		if n, err := parseCredit([]byte(in)); n != want || err != nil {
			t.Errorf("parseCredit(%s) = %d, %v; want %d", in, n, err, want)
		}
	}
	for in, why := range map[string]string{
		"0": "(zero)", "-0": "(zero)", "-1": "(negative)", "-99999999999999999999": "(negative)",
		"2147483648": "(over 2147483647)", "99999999999999999999": "(over 2147483647)",
		"1.5": "(not an integer)", "1e3": "(not an integer)", `"32"`: "(not an integer)", "null": "(not an integer)",
		"true": "(not an integer)", "{}": "(not an integer)", "": "(not an integer)",
	} {
		n, err := parseCredit([]byte(in))
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "from 1 to 2147483647") {
			t.Errorf("parseCredit(%s) = %d, %v; want an error naming %s and the bounds", in, n, err, why)
		}
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		accept []string
		ct     string
	}{
		{nil, NDJSONContentType},
		{[]string{""}, NDJSONContentType},
		{[]string{"*/*"}, NDJSONContentType},
		{[]string{"text/event-stream"}, SSEContentType},
		{[]string{"text/event-stream; charset=utf-8"}, SSEContentType},
		{[]string{"TEXT/Event-Stream"}, SSEContentType},
		{[]string{"text/*"}, SSEContentType},
		{[]string{"application/jsonl"}, JSONLContentType},
		{[]string{"application/*"}, NDJSONContentType},
		{[]string{"text/event-stream;q=0.5, application/x-ndjson"}, NDJSONContentType},
		{[]string{"text/event-stream", "application/x-ndjson;q=0.1"}, SSEContentType},
		{[]string{"text/event-stream, */*;q=0.1"}, SSEContentType},
		{[]string{"text/html, */*;q=0.8"}, NDJSONContentType},
		{[]string{"application/json"}, ""},
		{[]string{"text/event-stream;q=0"}, ""},
		{[]string{"*/*;q=0"}, ""},
		{[]string{"garbage/"}, ""},
		{[]string{"text/event-stream;q=x"}, ""},
	}
	for _, tt := range tests {
		if _, ct := negotiate(tt.accept); ct != tt.ct {
			t.Errorf("negotiate(%q) = %q, want %q", tt.accept, ct, tt.ct)
		}
	}
}

func TestASCIIJSON(t *testing.T) {
	in := []byte(`{"detail":"héllo 😀 \u2028"}`)
	out := asciiJSON(in)
	for _, c := range out {
		if c >= 0x80 {
			t.Fatalf("asciiJSON(%s) = %s, want ASCII", in, out)
		}
	}
	var a, b map[string]string
	if json.Unmarshal(in, &a) != nil || json.Unmarshal(out, &b) != nil || a["detail"] != b["detail"] {
		t.Errorf("asciiJSON(%s) = %s: %q, want %q", in, out, b["detail"], a["detail"])
	}
}
