package protostruct

import (
	"strings"
	"unicode/utf8"
)

// validIdent reports whether s is a protobuf identifier: an ASCII letter or
// underscore followed by letters, digits and underscores.
func validIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
func isLower(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// snakeCase turns a Go name into lower_snake_case, keeping initialisms
// together: UserID → user_id, HTTPServer → http_server.
func snakeCase(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUpper(c) {
			if i > 0 && (isLower(s[i-1]) || isUpper(s[i-1]) && i+1 < len(s) && 'a' <= s[i+1] && s[i+1] <= 'z') {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// messageName turns a Go type name into a protobuf message name: package
// paths are dropped and other punctuation (from generic instantiations such
// as Page[example.com/app.User]) becomes underscores, giving Page_User.
func messageName(goName string) string {
	var out []byte
	word := 0 // start of the current path-qualified word in goName
	flush := func(end int) {
		w := goName[word:end]
		if i := strings.LastIndexByte(w, '.'); i >= 0 {
			w = w[i+1:]
		}
		out = append(out, w...)
	}
	for i := 0; i < len(goName); {
		r, size := utf8.DecodeRuneInString(goName[i:])
		if r < utf8.RuneSelf && (validIdent(string(rune(r))) || '0' <= r && r <= '9' || r == '.' || r == '/' || r == '-') {
			i += size
			continue
		}
		flush(i)
		out = append(out, '_')
		i += size
		word = i
	}
	flush(len(goName))
	// Collapse and trim underscores introduced by punctuation.
	var b []byte
	for i, c := range out {
		if c == '_' && (len(b) == 0 || b[len(b)-1] == '_' || i == len(out)-1) {
			continue
		}
		if c == '-' || c == '/' {
			c = '_'
		}
		b = append(b, c)
	}
	s := strings.TrimRight(string(b), "_")
	if s == "" || !validIdent(s) {
		return "Message" + s
	}
	return s
}
