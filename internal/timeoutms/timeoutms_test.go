package timeoutms

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	const limit = 5 * time.Minute
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"250", 250 * time.Millisecond, true},
		{"+250", 250 * time.Millisecond, true},
		{"999999999", limit, true},
		{"99999999999999999999", limit, true}, // too long for int64: as long as allowed
		{"99999999999999999999x", 0, false},   // the range is reported before the letter
		{"18700000000000000000A", 0, false},
		{"0", 0, false},
		{"-5", 0, false},
		{"-99999999999999999999", 0, false},
		{"", 0, false},
		{"1.5", 0, false},
	} {
		d, ok := Parse(tc.in, limit)
		if d != tc.want || ok != tc.ok {
			t.Errorf("Parse(%q) = %v, %v; want %v, %v", tc.in, d, ok, tc.want, tc.ok)
		}
	}
}
