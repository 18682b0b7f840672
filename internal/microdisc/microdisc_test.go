package microdisc_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ferry-go/ferry/ferrytest"
	"github.com/ferry-go/ferry/internal/microdisc"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Every responder's answer is gathered; want stops at that many; no
// responders is no answers, at once.
func TestGather(t *testing.T) {
	ns := ferrytest.NATS(t)
	nc := ferrytest.Connect(t, ns.ClientURL())
	for _, name := range []string{"a", "b", "c"} {
		sub, err := nc.Subscribe("$SRV.TEST", func(m *nats.Msg) { _ = m.Respond([]byte(name)) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := ferrytest.Context(t)
	got, err := microdisc.Gather(ctx, nc, "$SRV.TEST", time.Second, 0)
	var names []string
	for _, b := range got {
		names = append(names, string(b))
	}
	slices.Sort(names)
	if err != nil || !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Errorf("Replies = %q, %v; want a, b, c", names, err)
	}
	if got, err := microdisc.Gather(ctx, nc, "$SRV.TEST", time.Hour, 2); err != nil || len(got) != 2 {
		t.Errorf("Replies(want 2) = %d replies, %v", len(got), err)
	}
	if got, err := microdisc.Gather(ctx, nc, "$SRV.NOBODY", time.Hour, 0); err != nil || len(got) != 0 {
		t.Errorf("Replies(no responders) = %q, %v", got, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := microdisc.Gather(cctx, nc, "$SRV.TEST", 0, 0); err != nil {
		t.Errorf("Replies(ended context) = %v, want no error", err)
	}
}
