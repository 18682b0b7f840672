package workspace

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Stream says where a log line came from.
type Stream int

const (
	// Stdout is the service's standard output.
	Stdout Stream = iota + 1
	// Stderr is the service's standard error.
	Stderr
	// System is the supervisor writing about the service: builds, build
	// errors, starts, exits.
	System
)

func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	case System:
		return "system"
	}
	return "unknown"
}

// Line is one line of a service's output.
type Line struct {
	Time   time.Time
	Stream Stream
	// Text is the line without its newline or prefix.
	Text string
}

// ColorMode says whether prefixes are coloured.
type ColorMode int

const (
	// ColorAuto colours when the output is a terminal (an *os.File that is
	// a character device) and NO_COLOR is unset.
	ColorAuto ColorMode = iota + 1
	// ColorAlways always colours.
	ColorAlways
	// ColorNever never colours.
	ColorNever
)

// maxLine is the longest line kept whole; a longer one is cut into pieces
// of this length, so a service printing without newlines cannot grow memory.
const maxLine = 64 << 10

var palette = []string{"36", "33", "32", "35", "34", "31", "96", "93", "92", "95", "94", "91"}

// output writes the prefixed lines of every service to one writer, a whole
// line per Write under one lock so that lines of different services never
// mix, and keeps each service's recent lines.
type output struct {
	mu    sync.Mutex
	w     io.Writer
	width int
	color bool
}

func newOutput(w io.Writer, mode ColorMode, names []string) *output {
	if w == nil {
		w = io.Discard
	}
	o := &output{w: w}
	for _, n := range names {
		o.width = max(o.width, len(n))
	}
	switch mode {
	case ColorAlways:
		o.color = true
	case ColorNever:
	default:
		o.color = isTerminal(w) && os.Getenv("NO_COLOR") == ""
	}
	return o
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// prefix returns the prefix of service number i called name.
func (o *output) prefix(i int, name string) string {
	p := name + strings.Repeat(" ", o.width-len(name)) + " | "
	if o.color {
		p = "\x1b[" + palette[i%len(palette)] + "m" + p + "\x1b[0m"
	}
	return p
}

// write keeps l in r and writes b, under one lock so that Logs and the
// output agree on the order of lines.
func (o *output) write(r *ring, l Line, b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r.add(l)
	_, _ = o.w.Write(b) // a failing terminal must not stop the services
}

// ring is a bounded buffer of a service's recent lines.
type ring struct {
	mu    sync.Mutex
	lines []Line
	next  int // where the next line goes once full
	max   int
}

func (r *ring) add(l Line) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lines) < r.max {
		r.lines = append(r.lines, l)
		return
	}
	r.lines[r.next] = l
	r.next = (r.next + 1) % r.max
}

func (r *ring) snapshot() []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Line, 0, len(r.lines))
	out = append(out, r.lines[r.next:]...)
	return append(out, r.lines[:r.next]...)
}

// lineWriter splits what one stream of a process writes into lines, and
// writes each with the service's prefix. It is an io.Writer for
// exec.Cmd.Stdout, which os/exec calls from one goroutine; Close writes a
// last line without its newline.
type lineWriter struct {
	out    *output
	ring   *ring
	prefix string
	stream Stream
	buf    []byte
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			lw.buf = append(lw.buf, p...)
			for len(lw.buf) >= maxLine {
				lw.emit(lw.buf[:maxLine])
				lw.buf = append(lw.buf[:0], lw.buf[maxLine:]...)
			}
			break
		}
		if len(lw.buf) > 0 {
			lw.buf = append(lw.buf, p[:i]...)
			lw.emit(lw.buf)
			lw.buf = lw.buf[:0]
		} else {
			lw.emit(p[:i])
		}
		p = p[i+1:]
	}
	return n, nil
}

// Close writes what is left of a last line without a newline.
func (lw *lineWriter) Close() error {
	if len(lw.buf) > 0 {
		lw.emit(lw.buf)
		lw.buf = lw.buf[:0]
	}
	return nil
}

func (lw *lineWriter) emit(line []byte) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	for len(line) > maxLine {
		lw.emit(line[:maxLine])
		line = line[maxLine:]
	}
	b := make([]byte, 0, len(lw.prefix)+len(line)+1)
	b = append(b, lw.prefix...)
	b = append(b, line...)
	lw.out.write(lw.ring, Line{Time: time.Now(), Stream: lw.stream, Text: string(line)}, append(b, '\n'))
}
