package nats

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-go/ferry/internal/timeoutms"
	"github.com/nats-io/nats.go"
)

// A Ferry client carries the deadline of a call that has no other reason
// for headers in the last token of the request's reply subject,
// "<inbox>.<id>.ferry-t<ms>", rather than in the Ferry-Timeout-Ms header:
// a NATS message with headers costs the server nats.go's decoding of them
// (a map and four allocations) and the client their encoding, up to a
// quarter of a call's throughput. The reply subject is opaque to servers that do not
// look into it (they answer to it as to any), and its last token cannot be
// mistaken for one nats.go makes (letters and digits only). The package
// documentation (Wire format) says what this means for compatibility.
const replyTimeoutPrefix = "ferry-t"

// replyTimeout returns the deadline a Ferry client put in the last token of
// reply, cut to limit; ok is false if there is none. A token that is not
// exactly "ferry-t" and a whole number of milliseconds > 0 is some other
// client's and is left alone.
func replyTimeout(reply string, limit time.Duration) (d time.Duration, ok bool) {
	tok := reply[strings.LastIndexByte(reply, '.')+1:]
	v, ok := strings.CutPrefix(tok, replyTimeoutPrefix)
	if !ok || v == "" {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			// Not a number: a sign, or a letter after too many digits
			// (which timeoutms.Parse would take for a number too large).
			return 0, false
		}
	}
	return timeoutms.Parse(v, limit)
}

// replyMux is one connection's subscription for the replies of the calls
// whose reply subject carries their deadline, "<inbox>.*.*", shared by all
// Clients on the connection as nats.go shares its own for requests. It
// lasts as long as the connection.
type replyMux struct {
	nc     *nats.Conn
	prefix string // "<inbox>."
	sub    *nats.Subscription

	mu    sync.Mutex
	calls map[uint64]chan *nats.Msg
	next  uint64
	ended bool // the subscription ended: calls waiting get ErrConnectionClosed
}

// replyMuxes holds each connection's replyMux.
var replyMuxes sync.Map // *nats.Conn -> *replyMux

// replyMuxMu serialises making a connection's replyMux.
var replyMuxMu sync.Mutex

// repliesFor returns nc's replyMux, subscribing it the first time; the
// round trip makes sure the NATS server has the subscription before a
// request goes out.
func repliesFor(ctx context.Context, nc *nats.Conn) (*replyMux, error) {
	if m, ok := replyMuxes.Load(nc); ok {
		if m := m.(*replyMux); m.valid() {
			return m, nil
		}
	}
	replyMuxMu.Lock()
	defer replyMuxMu.Unlock()
	if m, ok := replyMuxes.Load(nc); ok {
		if m := m.(*replyMux); m.valid() {
			return m, nil
		}
		replyMuxes.Delete(nc)
	}
	m := &replyMux{nc: nc, prefix: nc.NewInbox() + ".", calls: make(map[uint64]chan *nats.Msg)}
	sub, err := nc.Subscribe(m.prefix+"*.*", m.route)
	if err != nil {
		return nil, err
	}
	sub.SetClosedHandler(func(string) { m.end() })
	if err := nc.FlushWithContext(ctx); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	m.sub = sub
	replyMuxes.Store(nc, m)
	return m, nil
}

func (m *replyMux) valid() bool {
	m.mu.Lock()
	ended := m.ended
	m.mu.Unlock()
	return !ended && m.sub.IsValid()
}

// end fails the calls still waiting and forgets the connection.
func (m *replyMux) end() {
	m.mu.Lock()
	m.ended = true
	for id, ch := range m.calls {
		close(ch)
		delete(m.calls, id)
	}
	m.mu.Unlock()
	replyMuxes.CompareAndDelete(m.nc, m)
}

// route hands a reply to the call waiting for it; a late reply, whose
// caller gave up, is dropped.
func (m *replyMux) route(msg *nats.Msg) {
	rest, ok := strings.CutPrefix(msg.Subject, m.prefix)
	if !ok {
		return
	}
	tok, _, _ := strings.Cut(rest, ".")
	id, err := strconv.ParseUint(tok, 36, 64)
	if err != nil {
		return
	}
	m.mu.Lock()
	ch := m.calls[id]
	delete(m.calls, id)
	m.mu.Unlock()
	if ch != nil {
		ch <- msg // buffered, and one reply per call is ever sent to it
	}
}

// request publishes data to subject with a reply subject that carries
// timeout and waits for the reply until ctx ends. Errors are nats.go's
// (nats.ErrNoResponders, nats.ErrConnectionClosed, a publish error) or
// ctx's, as from nats.Conn.RequestWithContext.
func (m *replyMux) request(ctx context.Context, subject string, data []byte, timeout time.Duration) (*nats.Msg, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch := make(chan *nats.Msg, 1)
	m.mu.Lock()
	if m.ended {
		m.mu.Unlock()
		return nil, nats.ErrConnectionClosed
	}
	m.next++
	id := m.next
	m.calls[id] = ch
	m.mu.Unlock()

	var buf [96]byte
	b := append(buf[:0], m.prefix...)
	b = strconv.AppendUint(b, id, 36)
	b = append(b, '.')
	b = append(b, replyTimeoutPrefix...)
	b = strconv.AppendInt(b, timeoutMillis(timeout), 10)
	if err := m.nc.PublishRequest(subject, string(b), data); err != nil {
		m.forget(id)
		return nil, err
	}
	select {
	case msg, ok := <-ch:
		if !ok {
			if m.nc.IsClosed() {
				return nil, nats.ErrConnectionClosed
			}
			return nil, nats.ErrDisconnected
		}
		if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
			return nil, nats.ErrNoResponders // the NATS server's answer when no instance listens
		}
		return msg, nil
	case <-ctx.Done():
		m.forget(id)
		return nil, ctx.Err()
	}
}

func (m *replyMux) forget(id uint64) {
	m.mu.Lock()
	delete(m.calls, id)
	m.mu.Unlock()
}
