package nats

// Fuzz tests of the stream protocol's parsers: frames come from any NATS
// client that may publish to a stream inbox, so parsing must never panic
// and must keep its contracts. Seeds live in testdata/fuzz; run with e.g.
// go test -fuzz=FuzzParseFrame ./transport/nats/

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/nats-io/nats.go"
)

// checkProtocolError checks the contract of a parse error: InvalidArgument,
// naming the header at fault.
func checkProtocolError(t *testing.T, what string, err error) {
	t.Helper()
	if errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("%s: error %v, want invalid_argument", what, err)
	}
	if !strings.Contains(err.Error(), "Ferry-") {
		t.Fatalf("%s: error %q names no header", what, err)
	}
}

// frameHeader builds the header of a frame from its parsed form.
func (f frame) header() nats.Header {
	h := nats.Header{FrameHeader: {f.kind.String()}, SeqHeader: {strconv.FormatUint(f.seq, 10)}}
	if f.credit > 0 {
		h[CreditHeader] = []string{strconv.FormatInt(f.credit, 10)}
	}
	if f.size > 0 {
		h[SizeHeader] = []string{strconv.FormatInt(f.size, 10)}
	}
	if f.heartbeat > 0 {
		h[HeartbeatHeader] = []string{strconv.FormatInt(f.heartbeat.Milliseconds(), 10)}
	}
	return h
}

func FuzzParseFrame(f *testing.F) {
	f.Add("msg", "1", "", "", "", "", false)
	f.Add("accept", "1", "64", "", "5000", "", false)
	f.Add("credit", "7", "32", "", "", "", false)
	f.Add("chunk", "2", "", "1048600", "", "", false)
	f.Add("credit", "3", "-1", "", "", "", false)
	f.Add("bogus", "1", "", "", "", "", false)
	f.Add("end", "", "", "", "", "", false)
	f.Add("ping", "+1", "", "", "", "ferry-frame", true)
	f.Fuzz(func(t *testing.T, kind, seq, credit, size, heartbeat, lowerKey string, twice bool) {
		h := nats.Header{}
		set := func(k, v string) {
			if v != "" {
				h[k] = append(h[k], v)
			}
		}
		frameKey := FrameHeader
		if strings.EqualFold(lowerKey, FrameHeader) {
			frameKey = lowerKey // any spelling of the name is the header
		}
		set(frameKey, kind)
		if twice {
			set(FrameHeader, kind)
		}
		set(SeqHeader, seq)
		set(CreditHeader, credit)
		set(SizeHeader, size)
		set(HeartbeatHeader, heartbeat)
		got, err := parseFrame(h)
		if err != nil {
			checkProtocolError(t, "parseFrame", err)
			return
		}
		if kind == "" {
			if got.kind != frameNone {
				t.Fatalf("parseFrame(no %s) kind %v, want none", FrameHeader, got.kind)
			}
			return
		}
		if got.kind == frameNone || got.kind.String() != kind || len(header(h).Values(FrameHeader)) != 1 {
			t.Fatalf("parseFrame(%s %q) kind %v", FrameHeader, kind, got.kind)
		}
		if n, _ := strconv.ParseUint(seq, 10, 64); got.seq < 1 || got.seq != n {
			t.Fatalf("parseFrame(%s %q) seq %d", SeqHeader, seq, got.seq)
		}
		switch {
		case got.credit < 0 || got.credit > maxCredit,
			got.kind == frameCredit && got.credit < 1,
			got.kind != frameCredit && got.kind != frameAccept && got.credit != 0:
			t.Fatalf("parseFrame(%s, %s %q) credit %d", kind, CreditHeader, credit, got.credit)
		case got.size < 0 || (got.kind != frameChunk && got.size != 0):
			t.Fatalf("parseFrame(%s, %s %q) size %d", kind, SizeHeader, size, got.size)
		case got.heartbeat < 0 || got.heartbeat > maxHeartbeat || got.heartbeat%time.Millisecond != 0 ||
			(got.kind != frameAccept && got.heartbeat != 0):
			t.Fatalf("parseFrame(%s, %s %q) heartbeat %v", kind, HeartbeatHeader, heartbeat, got.heartbeat)
		}
		// What parses is what its canonical header says.
		again, err := parseFrame(got.header())
		if err != nil || again != got {
			t.Fatalf("parseFrame(header of %+v) = %+v, %v", got, again, err)
		}
	})
}

func FuzzParseOpen(f *testing.F) {
	f.Add("server_streaming", "64", "5000", "30000")
	f.Add("bidi_streaming", "1", "", "")
	f.Add("client_streaming", "2147483647", "0", "1")
	f.Add("unary", "1", "", "")
	f.Add("server_streaming", "0", "", "")
	f.Add("server_streaming", "1", "-5", "")
	f.Add("server_streaming", "1", "", "99999999999999999999")
	f.Fuzz(func(t *testing.T, kind, credit, heartbeat, timeout string) {
		h := nats.Header{}
		for k, v := range map[string]string{StreamHeader: kind, CreditHeader: credit, HeartbeatHeader: heartbeat, TimeoutHeader: timeout} {
			if v != "" {
				h[k] = []string{v}
			}
		}
		const limit = 5 * time.Minute
		o, err := parseOpen(h, limit)
		if err != nil {
			checkProtocolError(t, "parseOpen", err)
			return
		}
		if o.kind.String() != kind || !o.kind.ServerSends() && !o.kind.ClientSends() {
			t.Fatalf("parseOpen(%s %q) kind %v", StreamHeader, kind, o.kind)
		}
		if n, _ := strconv.ParseInt(credit, 10, 64); o.credit < 1 || o.credit > maxCredit || o.credit != n {
			t.Fatalf("parseOpen(%s %q) credit %d", CreditHeader, credit, o.credit)
		}
		if o.heartbeat < 0 || o.heartbeat > maxHeartbeat || (heartbeat == "" || heartbeat == "0") != (o.heartbeat == 0) {
			t.Fatalf("parseOpen(%s %q) heartbeat %v", HeartbeatHeader, heartbeat, o.heartbeat)
		}
		if o.timeout < 0 || o.timeout > limit || (timeout == "") != (o.timeout == 0) {
			t.Fatalf("parseOpen(%s %q) timeout %v", TimeoutHeader, timeout, o.timeout)
		}
	})
}

// FuzzReassembly feeds msg and chunk frames and pops, as ops encodes them,
// to a receive queue: it must refuse what breaks the protocol or the
// limit, and never hold more than its window or lose or change a byte.
func FuzzReassembly(f *testing.F) {
	f.Add([]byte{0, 5, 0, 3, 2, 2}, uint8(2), uint16(100))
	f.Add([]byte{1, 2, 9, 1, 3, 0, 0, 4, 2}, uint8(1), uint16(16))
	f.Add([]byte{0, 5, 0, 5, 0, 5}, uint8(2), uint16(100))
	f.Add([]byte{1, 4, 200, 2}, uint8(3), uint16(50))
	f.Fuzz(func(t *testing.T, ops []byte, window uint8, limit uint16) {
		w := int(window%8) + 1
		q := newInq(w)
		var want [][]byte // whole messages added, in order
		var partial []byte
		var next byte
		fill := func(n int) []byte {
			b := make([]byte, n)
			for i := range b {
				next++
				b[i] = next
			}
			return b
		}
		for i := 0; i+1 < len(ops); i += 2 {
			op, n := ops[i]%4, int(ops[i+1])
			var fr frame
			var data []byte
			switch op {
			case 0: // msg
				fr, data = frame{kind: frameMsg}, fill(n%32)
			case 1: // chunk, its size in the next byte when it starts a message
				fr, data = frame{kind: frameChunk}, fill(n%16)
				if !q.chunked && i+2 < len(ops) {
					fr.size = int64(ops[i+2])
					i++
				}
			case 2, 3: // the application takes a message
				got, _, ok := q.pop()
				if ok != (len(want) > 0) {
					t.Fatalf("pop ok %v with %d messages put in", ok, len(want))
				}
				if ok {
					if string(got) != string(want[0]) {
						t.Fatalf("popped %v, want %v", got, want[0])
					}
					want = want[1:]
				}
				continue
			}
			before, continues := q.avail, q.chunked
			if e := q.add(fr, data, int(limit)); e != nil {
				if c := e.Code(); c != errs.InvalidArgument && c != errs.ResourceExhausted {
					t.Fatalf("add: %v, want invalid_argument or resource_exhausted", e)
				}
				return // the stream ends
			}
			if used := before - q.avail; (continues && used != 0) || (!continues && used != 1) {
				t.Fatalf("a %s frame took %d credits (continuing a message: %v), want one per message", fr.kind, used, continues)
			}
			partial = append(partial, data...)
			if fr.kind == frameMsg {
				if len(partial) > int(limit) {
					t.Fatalf("a message of %d bytes passed a limit of %d", len(partial), limit)
				}
				want = append(want, partial)
				partial = nil
			}
			inFlight := 0
			if q.chunked {
				inFlight = 1 // begun, its credit used, not yet held
			}
			if held := len(q.msgs) - q.head; q.avail < 0 || held > w || q.avail+held+q.taken+inFlight != w {
				t.Fatalf("window %d: credit %d, %d held, %d taken, %d begun", w, q.avail, held, q.taken, inFlight)
			}
		}
	})
}
