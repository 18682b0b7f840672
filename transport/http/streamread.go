package http

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/ferry-go/ferry/errs"
)

// ndjsonReader reads the lines of an NDJSON stream. A line ends at "\n"
// (a "\r" before it is dropped); blank lines are skipped; the last line
// may lack its "\n".
type ndjsonReader struct {
	br    *bufio.Reader
	limit int64 // the longest line, without its end
	buf   []byte
}

// next returns the next non-blank line, valid until the following call;
// io.EOF at the end of the input, errTooLarge for a line over the limit.
func (r *ndjsonReader) next() ([]byte, error) {
	for {
		line, err := r.line()
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(line)) > 0 {
			return line, nil
		}
	}
}

func (r *ndjsonReader) line() ([]byte, error) {
	r.buf = r.buf[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		if int64(len(r.buf)+len(chunk)) > r.limit+2 { // +2: "\r\n"
			return nil, errTooLarge
		}
		switch err {
		case nil:
			line := chunk
			if len(r.buf) > 0 {
				r.buf = append(r.buf, chunk...)
				line = r.buf
			}
			line = line[:len(line)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if int64(len(line)) > r.limit {
				return nil, errTooLarge
			}
			return line, nil
		case bufio.ErrBufferFull:
			r.buf = append(r.buf, chunk...)
		case io.EOF:
			line := append(r.buf, chunk...)
			r.buf = line
			if len(line) == 0 {
				return nil, io.EOF
			}
			if n := len(line); line[n-1] == '\r' {
				line = line[:n-1]
			}
			if int64(len(line)) > r.limit {
				return nil, errTooLarge
			}
			return line, nil
		default:
			return nil, err
		}
	}
}

// sseReader reads the events of a Server-Sent Events stream as the WHATWG
// HTML standard says an EventSource does: lines end at "\r\n", "\n" or
// "\r"; a line starting with ':' is a comment; "data" lines add to the
// event's data (joined with "\n"), "event" sets its type, a blank line
// dispatches it (an event without data is dropped); a leading byte order
// mark is skipped; at the end of the input an unfinished event is dropped.
type sseReader struct {
	br     *bufio.Reader
	limit  int64 // the largest event data, and the longest line
	skipLF bool  // the last line ended at "\r": a "\n" right after it is part of it
	first  bool  // the first line is read
	line   []byte
	data   []byte
	event  string
	lastID string
}

// next returns the type ("message" when none was given) and data of the
// next event, the data valid until the following call; io.EOF at the end of
// the input, errTooLarge for data or a line over the limit.
func (r *sseReader) next() (event string, data []byte, err error) {
	for {
		line, err := r.readLine()
		if err != nil {
			return "", nil, err
		}
		if len(line) == 0 {
			if len(r.data) == 0 {
				r.event = ""
				continue
			}
			event, data = r.event, r.data[:len(r.data)-1]
			if event == "" {
				event = "message"
			}
			r.event, r.data = "", r.data[:0]
			return event, data, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if int64(len(r.data)+len(value)) > r.limit {
				return "", nil, errTooLarge
			}
			r.data = append(append(r.data, value...), '\n')
		case "event":
			r.event = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.lastID = string(value)
			}
		}
	}
}

// readLine returns the next line without its end.
func (r *sseReader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		// Peek what is buffered, waiting for input only when nothing is:
		// an event must be dispatched as soon as its blank line arrived.
		buf, err := r.br.Peek(max(1, r.br.Buffered()))
		if len(buf) == 0 {
			if err == nil {
				err = io.ErrNoProgress
			}
			return nil, err
		}
		if r.skipLF {
			r.skipLF = false
			if buf[0] == '\n' {
				_, _ = r.br.Discard(1)
				continue
			}
		}
		i := bytes.IndexAny(buf, "\r\n")
		end := i
		if i < 0 {
			end = len(buf)
		}
		if int64(len(r.line)+end) > r.limit+64 { // room for "data: " and the like
			return nil, errTooLarge
		}
		r.line = append(r.line, buf[:end]...)
		if i < 0 {
			_, _ = r.br.Discard(len(buf))
			continue
		}
		r.skipLF = buf[i] == '\r'
		_, _ = r.br.Discard(i + 1)
		if !r.first {
			r.first = true
			r.line = bytes.TrimPrefix(r.line, []byte("\xef\xbb\xbf"))
		}
		return r.line, nil
	}
}

// decodeServerEnvelope decodes a frame the server sent on a WebSocket: its
// one member ("header", "msg", "end", "error" or "credit") and that
// member's value.
func decodeServerEnvelope(frame []byte) (member string, value json.RawMessage, err error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(frame, &env); err != nil {
		return "", nil, errs.Newf(errs.Internal, "http: a stream frame is not a JSON envelope: %v", err)
	}
	if len(env) != 1 {
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, errs.Clip(k))
		}
		slices.Sort(keys)
		return "", nil, errs.Newf(errs.Internal, "http: a stream envelope holds one member, this one %d %q", len(env), keys)
	}
	for k, v := range env {
		switch k {
		case "header", "msg", "end", "error", "credit":
			return k, v, nil
		}
		return "", nil, errs.New(errs.Internal, fmt.Sprintf("http: unknown stream envelope member %q", errs.Clip(k)))
	}
	return "", nil, nil // not reached
}
