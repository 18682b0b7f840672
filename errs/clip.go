package errs

import (
	"strings"
	"unicode/utf8"
)

// ClipLen is how many bytes of a caller's value Clip keeps.
const ClipLen = 64

// Clip readies a value the caller sent for quoting in an error message: at
// most ClipLen bytes, cut on a character boundary and marked "…" when cut,
// invalid UTF-8 replaced by U+FFFD. An error never echoes a megabyte back
// to whoever sent it.
func Clip(s string) string {
	if len(s) <= ClipLen && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= ClipLen {
		return s
	}
	n := ClipLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
