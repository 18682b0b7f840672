package scaffold

import (
	"fmt"
	"regexp"
	"strings"
)

// serviceName is the rule Ferry applies to service names everywhere
// (server.New, the registries, NATS subjects).
var serviceName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// ValidateName reports whether name is a valid Ferry service name: a
// letter, then letters, digits, '-' or '_'.
func ValidateName(name string) error {
	if !serviceName.MatchString(name) {
		return fmt.Errorf("invalid service name %q: a service name starts with a letter, followed by letters, digits, '-' or '_'", name)
	}
	return nil
}

// ValidateModule reports whether path is a module path the go command
// accepts for a new module (as `go mod init` does): slash-separated
// elements of letters, digits and "-._~+", none empty, starting or ending
// with a dot, or a reserved Windows file name.
func ValidateModule(path string) error {
	if msg := checkModule(path); msg != "" {
		return fmt.Errorf("invalid module path %q: %s", path, msg)
	}
	return nil
}

func checkModule(path string) string {
	switch {
	case path == "":
		return "empty"
	case path[0] == '/':
		return "leading slash"
	case path[0] == '-':
		return "leading dash"
	case path[len(path)-1] == '/':
		return "trailing slash"
	case strings.Contains(path, "//"):
		return "double slash"
	}
	for _, elem := range strings.Split(path, "/") {
		if msg := checkElem(elem); msg != "" {
			return fmt.Sprintf("element %q: %s", elem, msg)
		}
	}
	return ""
}

func checkElem(elem string) string {
	if strings.Count(elem, ".") == len(elem) {
		return "only dots"
	}
	if elem[0] == '.' {
		return "leading dot"
	}
	if elem[len(elem)-1] == '.' {
		return "trailing dot"
	}
	for _, r := range elem {
		ok := r == '-' || r == '.' || r == '_' || r == '~' || r == '+' ||
			'0' <= r && r <= '9' || 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z'
		if !ok {
			return fmt.Sprintf("invalid character %q: want letters, digits or one of -._~+", r)
		}
	}
	short, _, _ := strings.Cut(elem, ".")
	for _, bad := range windowsReserved {
		if strings.EqualFold(short, bad) {
			return "reserved file name on Windows"
		}
	}
	if i := strings.LastIndexByte(short, '~'); i >= 0 && i < len(short)-1 && strings.Trim(short[i+1:], "0123456789") == "" {
		return "a tilde followed by digits looks like a Windows short name"
	}
	return ""
}

var windowsReserved = []string{
	"CON", "PRN", "AUX", "NUL",
	"COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
	"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
}

// kubeName turns a service name into a Kubernetes object name and image
// name: lower case, '_' as '-', at most 63 characters, ending in a letter
// or digit.
func kubeName(name string) string {
	s := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimRight(s, "-")
}
