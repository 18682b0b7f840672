package traces

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// MaxForwarding is how many exports a Receiver forwards at once
// (WithForward); one that arrives while that many are under way is not
// forwarded, and counted in ForwardStats.
const MaxForwarding = 4

// forwardTimeout bounds one forwarded export.
const forwardTimeout = 10 * time.Second

// WithForward sends every export the receiver accepts on to another
// OTLP/HTTP receiver — a collector, Jaeger — at url (its full traces URL,
// http://host:4318/v1/traces), as protobuf, so that the spans a
// development dashboard shows also reach the tracing backend a team runs.
// Forwarding is best effort and never slows the exporter down: at most
// MaxForwarding at once, each bounded to 10 s, failures counted in
// ForwardStats. hc nil means http.DefaultClient. Close waits for the
// forwards under way.
func WithForward(url string, hc *http.Client) ReceiverOption {
	return func(rc *Receiver) {
		if hc == nil {
			hc = http.DefaultClient
		}
		rc.fwd = &forwarder{url: url, hc: hc, slots: make(chan struct{}, MaxForwarding)}
	}
}

// ForwardStats counts what a Receiver made of WithForward: exports
// forwarded (answered 2xx), failed (an error or another status) and
// skipped (MaxForwarding were under way).
type ForwardStats struct {
	Forwarded, Failed, Skipped int64
	// LastError describes the last failure, if any.
	LastError string
}

type forwarder struct {
	url   string
	hc    *http.Client
	slots chan struct{}
	wg    sync.WaitGroup

	forwarded, failed, skipped atomic.Int64
	mu                         sync.Mutex
	lastErr                    string
}

// ForwardStats reports the forwarding counts (zero without WithForward).
func (rc *Receiver) ForwardStats() ForwardStats {
	f := rc.fwd
	if f == nil {
		return ForwardStats{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return ForwardStats{Forwarded: f.forwarded.Load(), Failed: f.failed.Load(), Skipped: f.skipped.Load(), LastError: f.lastErr}
}

// Close waits for the exports being forwarded. The receiver must not be
// serving any more.
func (rc *Receiver) Close() {
	if rc.fwd != nil {
		rc.fwd.wg.Wait()
	}
}

// forward sends req on, in the background.
func (f *forwarder) forward(req *coltracepb.ExportTraceServiceRequest) {
	select {
	case f.slots <- struct{}{}:
	default:
		f.skipped.Add(1)
		return
	}
	body, err := proto.Marshal(req)
	if err != nil {
		<-f.slots
		f.fail(fmt.Errorf("encode: %w", err))
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer func() { <-f.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
		defer cancel()
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
		if err != nil {
			f.fail(err)
			return
		}
		hr.Header.Set("Content-Type", contentTypeProto)
		resp, err := f.hc.Do(hr)
		if err != nil {
			f.fail(err)
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			f.fail(fmt.Errorf("%s answered %s", f.url, resp.Status))
			return
		}
		f.forwarded.Add(1)
	}()
}

func (f *forwarder) fail(err error) {
	f.mu.Lock()
	f.lastErr = err.Error()
	f.failed.Add(1)
	f.mu.Unlock()
}
