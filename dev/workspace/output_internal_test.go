package workspace

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrefix(t *testing.T) {
	names := []string{"a", "greeter"}
	var buf bytes.Buffer
	for _, tc := range []struct {
		mode ColorMode
		want string
	}{
		{ColorNever, "a       | "},
		{0, "a       | "},         // auto: a bytes.Buffer is no terminal
		{ColorAuto, "a       | "}, // likewise
		{ColorAlways, "\x1b[36ma       | \x1b[0m"},
	} {
		if got := newOutput(&buf, tc.mode, names).prefix(0, "a"); got != tc.want {
			t.Errorf("mode %d: prefix = %q, want %q", tc.mode, got, tc.want)
		}
	}
}

func TestLineWriterLongLine(t *testing.T) {
	var buf bytes.Buffer
	lw := &lineWriter{out: newOutput(&buf, ColorNever, []string{"a"}), ring: &ring{max: 10}, prefix: "a | ", stream: Stdout}
	long := strings.Repeat("x", maxLine+10)
	lw.Write([]byte(long[:100]))
	lw.Write([]byte(long[100:] + "\r\nshort\npartial"))
	lw.Close()
	want := "a | " + long[:maxLine] + "\na | " + long[maxLine:] + "\na | short\na | partial\n"
	if buf.String() != want {
		t.Errorf("output has %d bytes, want %d: a line cut wrongly", buf.Len(), len(want))
	}
	if got := len(lw.ring.snapshot()); got != 4 {
		t.Errorf("ring holds %d lines, want 4", got)
	}
}
