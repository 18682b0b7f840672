package nats_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/natsembed"
	fnats "github.com/ferry-go/ferry/transport/nats"
	"github.com/nats-io/nats.go"
)

// rawEnv serves the stream tests' service on its own connection, with a
// heartbeat of an hour so that no ping comes between the frames a test
// expects, and returns a second connection to speak the protocol on.
func rawEnv(t *testing.T, ns *natsembed.Server, opts ...fnats.ServerOption) (srv, cli *nats.Conn, p *probe) {
	t.Helper()
	srv, cli = connect(t, ns), connect(t, ns)
	s, p := streamServer(t)
	serve(t, srv, s, append([]fnats.ServerOption{fnats.WithHeartbeat(time.Hour), fnats.WithStreamWindow(2),
		fnats.WithMaxRequestBytes(64 << 10)}, opts...)...)
	return srv, cli, p
}

// TestStreamWireProtocol speaks the stream protocol of the package doc
// (Streams) by hand, frame by frame, against a Ferry server.
func TestStreamWireProtocol(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	srvConn, nc, p := rawEnv(t, ns)

	t.Run("server stream credit by credit", func(t *testing.T) {
		r := rawOpen(t, nc, "wire.Count", openHdr("server_streaming", 1), `{"num":3}`)
		acc := r.expect("accept", 1)
		if !strings.HasPrefix(acc.Reply, "wire._stream.") || acc.Header.Get("Ferry-Heartbeat-Ms") != "3600000" || acc.Header.Get("Ferry-Credit") != "" {
			t.Errorf("accept reply %q headers %v, want wire._stream.…, Ferry-Heartbeat-Ms 3600000 and no credit", acc.Reply, acc.Header)
		}
		m := r.expect("msg", 2)
		if it := item(t, m.Data); it.Num != 0 || m.Header.Get("x-reply") != "yes" || m.Reply != acc.Reply {
			t.Errorf("first message %s, header x-reply %q, reply %q; want num 0 with the reply metadata from %s", m.Data, m.Header.Get("x-reply"), m.Reply, acc.Reply)
		}
		r.send("credit", hdr("Ferry-Credit", "2"), nil)
		m = r.expect("msg", 3)
		if it := item(t, m.Data); it.Num != 1 || m.Header.Get("x-reply") != "" {
			t.Errorf("second message %s with x-reply %q, want num 1 without metadata", m.Data, m.Header.Get("x-reply"))
		}
		if it := item(t, r.expect("msg", 4).Data); it.Num != 2 {
			t.Errorf("third message num %d, want 2", it.Num)
		}
		end := r.expect("end", 5)
		if end.Header.Get("x-trailer") != "sent:3" || len(end.Data) != 0 {
			t.Errorf("end frame trailer %q body %q, want sent:3 and no body", end.Header.Get("x-trailer"), end.Data)
		}
	})

	t.Run("send without credit waits", func(t *testing.T) {
		for len(p.entered) > 0 {
			<-p.entered
		}
		r := rawOpen(t, nc, "wire.Count", openHdr("server_streaming", 1), `{"num":2}`)
		r.expect("accept", 1)
		r.expect("msg", 2)
		await(t, p.entered, "Count's first Send")
		await(t, p.entered, "Count's second Send") // with no credit left
		r.send("cancel", nil, nil)
		// Send 2 was still waiting when the cancel came: it fails, having
		// sent nothing.
		if err := await(t, p.sendErr, "Count's second Send returning"); errs.CodeOf(err) != errs.Canceled {
			t.Errorf("Send without credit returned %v, want canceled (it waited until the cancel)", err)
		}
		// Whatever the server published before the handler heard the
		// cancel has reached the caller after these two round trips.
		if err := srvConn.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := r.sub.Pending(); n != 0 {
			t.Errorf("%d frames after the cancel, want none (no credit, and a canceled stream is not answered)", n)
		}
	})

	t.Run("client stream", func(t *testing.T) {
		r := rawOpen(t, nc, "wire.Sum", openHdr("client_streaming", 1), "")
		if c := r.expect("accept", 1).Header.Get("Ferry-Credit"); c != "2" {
			t.Fatalf("accept of a client stream Ferry-Credit %q, want the server's window, 2", c)
		}
		r.send("msg", nil, []byte(`{"num":1}`))
		r.send("msg", nil, []byte(`{"num":2}`))
		// The window is used up: the next message waits for credit, which
		// comes as the handler takes messages (half the window at a time).
		if c := r.expect("credit", 2).Header.Get("Ferry-Credit"); c != "1" {
			t.Errorf("credit %q, want 1", c)
		}
		r.send("msg", nil, []byte(`{"num":3}`))
		r.send("end", nil, nil)
		r.expect("credit", 3)
		r.expect("credit", 4)
		if it := item(t, r.expect("msg", 5).Data); it.Num != 6 {
			t.Errorf("sum %d, want 6", it.Num)
		}
		r.expect("end", 6)
	})

	t.Run("error mid-stream", func(t *testing.T) {
		r := rawOpen(t, nc, "wire.FailAfter", openHdr("server_streaming", 8), `{"num":1,"text":"failed_precondition"}`)
		r.expect("accept", 1)
		r.expect("msg", 2)
		m := r.expectError(3, errs.FailedPrecondition, "failed after 1")
		if m.Header.Get("Nats-Service-Error-Code") != "400" || m.Header.Get("Nats-Service-Error") != "failed after 1" || m.Header.Get("x-trailer") != "failed" {
			t.Errorf("error frame headers %v, want the micro error headers (400) and the trailer", m.Header)
		}
	})

	t.Run("bidi stream ended by the caller", func(t *testing.T) {
		r := rawOpen(t, nc, "wire.Chat", openHdr("bidi_streaming", 4), "")
		r.expect("accept", 1)
		r.send("msg", nil, []byte(`{"num":7,"text":"hi"}`))
		// The handler took the message: credit for it (half of the
		// server's window of 2), then the echo.
		r.expect("credit", 2)
		if it := item(t, r.expect("msg", 3).Data); it.Num != 7 || it.Text != "hi" {
			t.Errorf("echo %+v, want 7 hi", it)
		}
		r.send("ping", nil, nil)
		r.send("end", nil, nil)
		r.expect("end", 4)
	})

	t.Run("plain request to a stream endpoint", func(t *testing.T) {
		m, err := nc.Request("wire.Count", []byte(`{"num":1}`), ferrytestWait)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get("Ferry-Error-Code") != "invalid_argument" || m.Header.Get("Ferry-Frame") != "" || !strings.Contains(string(m.Data), "open it as a stream") {
			t.Errorf("plain request to wire.Count answered %v %s, want a unary invalid_argument saying to open a stream", m.Header, m.Data)
		}
	})

	t.Run("no responders", func(t *testing.T) {
		// The NATS server answers with a 503 status, which nats.go's
		// NextMsg reports as ErrNoResponders.
		r := rawOpen(t, nc, "nobody.Count", openHdr("server_streaming", 1), `{}`)
		if m, err := r.sub.NextMsg(ferrytestWait); err != nats.ErrNoResponders {
			t.Errorf("open with no service answered %v, %v; want the NATS server's 503 status", m, err)
		}
	})
}

// ferrytestWait bounds plain requests of the tests: failure only.
const ferrytestWait = 60 * time.Second

// TestStreamOpenRefused: an open that cannot run is answered with one
// error frame, number 1 and no reply subject, naming what was wrong; the
// handler never runs.
func TestStreamOpenRefused(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	_, nc, _ := rawEnv(t, ns)
	tests := []struct {
		name, subject string
		h             nats.Header
		body          string
		code          errs.Code
		want          string
	}{
		{"unknown endpoint", "wire.Nope", openHdr("server_streaming", 1), "", errs.NotFound, `no endpoint "Nope"`},
		{"unary endpoint", "wire.Hello", openHdr("server_streaming", 1), "", errs.InvalidArgument, "is unary"},
		{"another kind", "wire.Count", openHdr("bidi_streaming", 1), "", errs.InvalidArgument, "is a server_streaming endpoint, the open asked for bidi_streaming"},
		{"unknown kind", "wire.Count", openHdr("sideways", 1), "", errs.InvalidArgument, `Ferry-Stream: unknown stream kind "sideways"`},
		{"no credit", "wire.Count", hdr("Ferry-Stream", "server_streaming"), "", errs.InvalidArgument, "Ferry-Credit missing"},
		{"zero credit", "wire.Count", openHdr("server_streaming", 0), "", errs.InvalidArgument, `Ferry-Credit: want a whole number from 1 to 2147483647, got "0"`},
		{"credit twice", "wire.Count", hdr("Ferry-Stream", "server_streaming", "Ferry-Credit", "1", "Ferry-Credit", "2"), "", errs.InvalidArgument, "Ferry-Credit appears 2 times"},
		{"bad heartbeat", "wire.Count", hdr("Ferry-Stream", "server_streaming", "Ferry-Credit", "1", "Ferry-Heartbeat-Ms", "soon"), "", errs.InvalidArgument, "Ferry-Heartbeat-Ms"},
		{"bad deadline", "wire.Count", hdr("Ferry-Stream", "server_streaming", "Ferry-Credit", "1", "Ferry-Timeout-Ms", "-1"), "", errs.InvalidArgument, "Ferry-Timeout-Ms"},
		{"bad content type", "wire.Count", hdr("Ferry-Stream", "server_streaming", "Ferry-Credit", "1", "Content-Type", "text/csv"), "", errs.InvalidArgument, "Content-Type"},
		{"malformed request", "wire.Count", openHdr("server_streaming", 1), `{"num":`, errs.InvalidArgument, "malformed json message"},
		{"request too large", "wire.Count", openHdr("server_streaming", 1), `{"text":"` + strings.Repeat("x", 70<<10) + `"}`, errs.ResourceExhausted, "exceeds the limit of 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rawOpen(t, nc, tt.subject, tt.h, tt.body)
			m := r.expectError(1, tt.code, tt.want)
			if m.Reply != "" {
				t.Errorf("refusal has reply subject %q, want none", m.Reply)
			}
		})
	}
}

// TestStreamChunks: with a max payload of 4 KiB, a 10 KB message goes
// both ways as chunks put back together exactly.
func TestStreamChunks(t *testing.T) {
	ns := startNATS(t, natsembed.Options{MaxPayload: 4096})
	_, nc, _ := rawEnv(t, ns)
	big := jsonOf(Item{Num: 1, Text: strings.Repeat("c", 10000)})

	r := rawOpen(t, nc, "wire.Chat", openHdr("bidi_streaming", 4), "")
	r.expect("accept", 1)
	r.send("chunk", hdr("Ferry-Size", strconv.Itoa(len(big))), big[:4000])
	r.send("chunk", nil, big[4000:8000])
	r.send("msg", nil, big[8000:])

	// The echo comes back as chunks (after the credit the handler gives
	// for the message it took), numbered on from the accept.
	seq := 1
	var got []byte
	frames := 0
	for {
		m := r.next()
		seq++
		if n := m.Header.Get("Ferry-Seq"); n != strconv.Itoa(seq) {
			t.Fatalf("frame %s %s, want number %d", m.Header.Get("Ferry-Frame"), n, seq)
		}
		kind := m.Header.Get("Ferry-Frame")
		if kind == "credit" {
			continue
		}
		if size := m.Header.Get("Ferry-Size"); (frames == 0) != (size != "") || (frames == 0 && size != strconv.Itoa(len(big))) {
			t.Errorf("%s frame %d of the echo has Ferry-Size %q, want %d on the first only", kind, frames, size, len(big))
		}
		frames++
		got = append(got, m.Data...)
		if kind == "msg" {
			break
		}
		if kind != "chunk" {
			t.Fatalf("%s frame inside the echo", kind)
		}
	}
	if frames < 3 || !bytes.Equal(got, big) {
		t.Errorf("echo of %d bytes came back in %d frames as %d bytes; want at least 3 frames and the same bytes", len(big), frames, len(got))
	}
	r.send("end", nil, nil)
	for {
		m := r.next()
		seq++
		if kind := m.Header.Get("Ferry-Frame"); kind == "end" {
			break
		} else if kind != "credit" {
			t.Fatalf("%s frame after the caller's end, want the server's end", kind)
		}
	}
}

// TestStreamMalformedFrames: a caller frame that breaks the protocol ends
// the stream with an error frame naming what was wrong, and the handler's
// context is canceled: no panic, no hang, no leak.
func TestStreamMalformedFrames(t *testing.T) {
	ns := startNATS(t, natsembed.Options{})
	_, nc, p := rawEnv(t, ns)
	// Each case runs after the accept of a Sink stream (bidi, the server's
	// window 2, a handler that reads nothing).
	tests := []struct {
		name string
		do   func(r *raw)
		code errs.Code
		want string
	}{
		{"unknown type", func(r *raw) { r.send("bogus", nil, nil) }, errs.InvalidArgument, `unknown frame type "bogus" in header Ferry-Frame`},
		{"no type", func(r *raw) { r.sendRaw(hdr("Ferry-Seq", "1"), []byte("{}")) }, errs.InvalidArgument, "frame without header Ferry-Frame"},
		{"type twice", func(r *raw) { r.sendRaw(hdr("Ferry-Frame", "ping", "Ferry-Frame", "end", "Ferry-Seq", "1"), nil) }, errs.InvalidArgument, "Ferry-Frame appears 2 times"},
		{"no number", func(r *raw) { r.sendRaw(hdr("Ferry-Frame", "ping"), nil) }, errs.InvalidArgument, "ping frame without header Ferry-Seq"},
		{"bad number", func(r *raw) { r.sendRaw(hdr("Ferry-Frame", "ping", "Ferry-Seq", "one"), nil) }, errs.InvalidArgument, `Ferry-Seq: want a whole number from 1, got "one"`},
		{"lost frames", func(r *raw) { r.sendRaw(hdr("Ferry-Frame", "ping", "Ferry-Seq", "3"), nil) }, errs.Unavailable, "frame 3 arrived where 1 was due"},
		{"negative credit", func(r *raw) { r.send("credit", hdr("Ferry-Credit", "-3"), nil) }, errs.InvalidArgument, `Ferry-Credit: want a whole number from 1 to 2147483647, got "-3"`},
		{"credit too large", func(r *raw) { r.send("credit", hdr("Ferry-Credit", "4294967296"), nil) }, errs.InvalidArgument, "Ferry-Credit"},
		{"credit missing", func(r *raw) { r.send("credit", nil, nil) }, errs.InvalidArgument, "header Ferry-Credit missing"},
		{"beyond credit", func(r *raw) {
			for range 3 {
				r.send("msg", nil, []byte(`{}`))
			}
		}, errs.InvalidArgument, "message sent beyond the credit granted (a window of 2 messages)"},
		{"chunk without size", func(r *raw) { r.send("chunk", nil, []byte(`{`)) }, errs.InvalidArgument, "first chunk of a message without header Ferry-Size"},
		{"zero size", func(r *raw) { r.send("chunk", hdr("Ferry-Size", "0"), []byte(`{`)) }, errs.InvalidArgument, `Ferry-Size: want a positive whole number of bytes, got "0"`},
		{"first chunk too long", func(r *raw) { r.send("chunk", hdr("Ferry-Size", "2"), []byte(`{}`)) }, errs.InvalidArgument, "first chunk of 2 bytes in a message of 2"},
		{"chunks past the size", func(r *raw) {
			r.send("chunk", hdr("Ferry-Size", "3"), []byte(`{`))
			r.send("msg", nil, []byte(`"a":1}`))
		}, errs.InvalidArgument, "chunks of a message exceed its size of 3 bytes"},
		{"chunks short of the size", func(r *raw) {
			r.send("chunk", hdr("Ferry-Size", "9"), []byte(`{`))
			r.send("msg", nil, []byte(`}`))
		}, errs.InvalidArgument, "message of 2 bytes ended short of its size of 9 bytes"},
		{"size on a later chunk", func(r *raw) {
			r.send("chunk", hdr("Ferry-Size", "9"), []byte(`{`))
			r.send("chunk", hdr("Ferry-Size", "9"), []byte(`}`))
		}, errs.InvalidArgument, "Ferry-Size on a chunk that continues a message"},
		{"message too large", func(r *raw) { r.send("chunk", hdr("Ferry-Size", strconv.Itoa(1<<20)), []byte(`{`)) }, errs.ResourceExhausted, "message of 1048576 bytes exceeds the limit of 65536 bytes"},
		{"end inside a chunked message", func(r *raw) {
			r.send("chunk", hdr("Ferry-Size", "9"), []byte(`{`))
			r.send("end", nil, nil)
		}, errs.InvalidArgument, "unexpected end frame"},
		{"message after end", func(r *raw) {
			r.send("end", nil, nil)
			r.send("msg", nil, []byte(`{}`))
		}, errs.InvalidArgument, "msg frame after the end frame"},
		{"a server's frame", func(r *raw) { r.send("accept", nil, nil) }, errs.InvalidArgument, "accept frame, which callers do not send"},
		{"a forged frame is dropped", func(r *raw) {
			// A cancel that does not come from the caller's inbox is
			// not the caller's: the stream goes on, and answers the
			// caller's next (bad) frame.
			if err := r.nc.PublishMsg(&nats.Msg{Subject: r.peer, Reply: "elsewhere", Header: hdr("Ferry-Frame", "cancel", "Ferry-Seq", "1")}); err != nil {
				t.Fatal(err)
			}
			r.send("bogus", nil, nil)
		}, errs.InvalidArgument, `unknown frame type "bogus"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rawOpen(t, nc, "wire.Sink", openHdr("bidi_streaming", 4), "")
			r.expect("accept", 1)
			await(t, p.held, "Sink running")
			tt.do(r)
			r.expectError(2, tt.code, tt.want)
			if err := await(t, p.ctxErr, "Sink's context ending"); err != context.Canceled {
				t.Errorf("Sink's context ended with %v, want canceled", err)
			}
		})
	}
}

// TestStreamDiscovery: $SRV.INFO marks streaming endpoints with their kind.
func TestStreamDiscovery(t *testing.T) {
	e := newEnv(t)
	s, _ := streamServer(t)
	tr := serve(t, e.nc, s)
	kinds := map[string]string{}
	for _, ep := range tr.Info().Endpoints {
		kinds[ep.Name] = ep.Metadata[fnats.MetadataStream]
	}
	want := map[string]string{"Hello": "", "Count": "server_streaming", "FailAfter": "server_streaming", "Hold": "server_streaming",
		"Sum": "client_streaming", "Chat": "bidi_streaming", "Sink": "bidi_streaming"}
	for name, k := range want {
		if kinds[name] != k {
			t.Errorf("endpoint %s metadata %s = %q, want %q", name, fnats.MetadataStream, kinds[name], k)
		}
	}
	// The document nats micro info reads still decodes.
	m, err := e.nc.Request("$SRV.INFO.wire", nil, ferrytestWait)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Endpoints []struct {
			Name     string            `json:"name"`
			Metadata map[string]string `json:"metadata"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(m.Data, &info); err != nil || len(info.Endpoints) != len(want) {
		t.Errorf("$SRV.INFO.wire = %s, %v", m.Data, err)
	}
}
