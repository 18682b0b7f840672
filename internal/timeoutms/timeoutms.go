// Package timeoutms parses the Ferry-Timeout-Ms header value the HTTP and
// NATS transports and the gateway share.
package timeoutms

import (
	"errors"
	"strconv"
	"time"
)

// Parse parses v, a whole number of milliseconds > 0, cut to limit; ok is
// false when v is not one. A number too long for int64 is as long as
// allowed.
func Parse(v string, limit time.Duration) (d time.Duration, ok bool) {
	ms, err := strconv.ParseInt(v, 10, 64)
	if errors.Is(err, strconv.ErrRange) && ms > 0 && allDigits(v) {
		// ParseInt reports the range before a bad byte further on:
		// "99999999999999999999x" is no number at all.
		return limit, true
	}
	if err != nil || ms <= 0 {
		return 0, false
	}
	if ms >= int64(limit/time.Millisecond) {
		return limit, true
	}
	return time.Duration(ms) * time.Millisecond, true
}

// allDigits reports whether v is decimal digits only (a leading '+' too,
// as ParseInt takes).
func allDigits(v string) bool {
	if len(v) > 0 && v[0] == '+' {
		v = v[1:]
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return v != ""
}
