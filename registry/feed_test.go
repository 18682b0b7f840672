package registry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/ferry-go/ferry/registry"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func inst(id string) registry.Instance {
	return registry.Instance{ID: id, Service: "svc", Endpoints: []registry.Endpoint{{Transport: "http", Address: "http://" + id}}}
}

// done is a context that has ended: Next returns at once with what it
// has, or context.Canceled when it has nothing to return.
func done() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// wantSet calls Next and wants set.
func wantSet(t *testing.T, f *registry.Feed, ctx context.Context, set []registry.Instance) []registry.Instance {
	t.Helper()
	got, err := f.Next(ctx)
	if err != nil || got == nil || !registry.Equal(got, set) {
		t.Fatalf("Next = %v, %v; want %v", got, err, set)
	}
	return got
}

// wantErr calls Next and wants err.
func wantErr(t *testing.T, f *registry.Feed, ctx context.Context, want error) {
	t.Helper()
	got, err := f.Next(ctx)
	if got != nil || !errors.Is(err, want) {
		t.Fatalf("Next = %v, %v; want %v", got, err, want)
	}
}

// The first Next returns the current set once one is published; later
// ones only a set that differs from the last returned.
func TestFeedNext(t *testing.T) {
	var f registry.Feed
	wantErr(t, &f, done(), context.Canceled) // nothing published yet

	a := []registry.Instance{inst("a")}
	f.Publish(a)
	wantSet(t, &f, done(), a)
	wantErr(t, &f, done(), context.Canceled) // unchanged

	f.Publish([]registry.Instance{inst("a")}) // another slice, the same set
	wantErr(t, &f, done(), context.Canceled)

	ab := []registry.Instance{inst("a"), inst("b")}
	f.Publish(ab)
	f.Publish(a) // changes that cancel out
	wantErr(t, &f, done(), context.Canceled)

	f.Publish(ab)
	wantSet(t, &f, done(), ab)

	f.Publish(nil) // an empty set is a set, returned non-nil
	if got, err := f.Next(done()); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Next after Publish(nil) = %#v, %v; want an empty non-nil set", got, err)
	}
}

// The first Next of a Feed whose first set is empty returns it.
func TestFeedFirstEmpty(t *testing.T) {
	var f registry.Feed
	f.Publish([]registry.Instance{})
	if got, err := f.Next(done()); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Next = %#v, %v; want an empty non-nil set", got, err)
	}
}

// Next returns copies: neither the caller's changes nor the source's
// slice reach the other.
func TestFeedClones(t *testing.T) {
	var f registry.Feed
	in := inst("a")
	in.Metadata = map[string]string{"zone": "a"}
	set := []registry.Instance{in}
	f.Publish(set)
	got := wantSet(t, &f, done(), set)
	got[0].Metadata["zone"] = "changed"
	got[0].Endpoints[0].Address = "changed"
	got[0].ID = "changed"
	if set[0].Metadata["zone"] != "a" || set[0].Endpoints[0].Address != "http://a" || set[0].ID != "a" {
		t.Fatalf("the published set changed with the returned one: %+v", set[0])
	}
	wantErr(t, &f, done(), context.Canceled) // the feed's last set did not change either
}

// A reported failure is returned once, before any set, and the watch
// goes on; of several reported between two calls, the latest.
func TestFeedReport(t *testing.T) {
	var f registry.Feed
	e1, e2, e3 := errors.New("e1"), errors.New("e2"), errors.New("e3")

	f.Report(e1) // before any set
	wantErr(t, &f, done(), e1)
	wantErr(t, &f, done(), context.Canceled)

	a := []registry.Instance{inst("a")}
	f.Publish(a)
	f.Report(e2)
	wantErr(t, &f, done(), e2) // ahead of the set
	wantSet(t, &f, done(), a)

	f.Report(e2)
	f.Report(e3)
	wantErr(t, &f, done(), e3)
	wantErr(t, &f, done(), context.Canceled)

	f.Report(nil) // ignored
	wantErr(t, &f, done(), context.Canceled)

	b := []registry.Instance{inst("b")}
	f.Publish(b)
	wantSet(t, &f, done(), b)
}

// A failure that ends the watch is returned by every later Next, ahead of
// sets and reported failures, until Close.
func TestFeedFail(t *testing.T) {
	var f registry.Feed
	f.Publish([]registry.Instance{inst("a")})
	f.Report(errors.New("transient"))
	final := errors.New("final")
	f.Fail(nil) // ignored
	f.Fail(final)
	for range 3 {
		wantErr(t, &f, done(), final)
	}
	f.Publish([]registry.Instance{inst("b")})
	wantErr(t, &f, done(), final)
	f.Close()
	wantErr(t, &f, done(), registry.ErrWatcherStopped)
}

// After Close, Next returns ErrWatcherStopped, whatever else it has, and
// Done's channel is closed.
func TestFeedClose(t *testing.T) {
	var f registry.Feed
	select {
	case <-f.Done():
		t.Fatal("Done closed before Close")
	default:
	}
	f.Publish([]registry.Instance{inst("a")})
	f.Report(errors.New("transient"))
	f.Close()
	f.Close()
	<-f.Done()
	wantErr(t, &f, context.Background(), registry.ErrWatcherStopped)
	wantErr(t, &f, context.Background(), registry.ErrWatcherStopped)

	var g registry.Feed // closed before any other use
	g.Close()
	<-g.Done()
	wantErr(t, &g, context.Background(), registry.ErrWatcherStopped)
}

// A Next blocked in another goroutine returns on Close, on the end of its
// ctx, and on what the source publishes, reports or fails with.
func TestFeedBlockedNext(t *testing.T) {
	a := []registry.Instance{inst("a")}
	// next starts Next in a goroutine and returns once it is blocked.
	next := func(t *testing.T, f *registry.Feed, ctx context.Context) <-chan error {
		out := make(chan error, 1)
		go func() {
			got, err := f.Next(ctx)
			if err == nil && !registry.Equal(got, a) {
				err = fmt.Errorf("Next = %v, want %v", got, a)
			}
			out <- err
		}()
		synctest.Wait()
		select {
		case err := <-out:
			t.Fatalf("Next returned %v before it was woken", err)
		default:
		}
		return out
	}
	check := func(t *testing.T, out <-chan error, want error) {
		t.Helper()
		if err := <-out; !errors.Is(err, want) {
			t.Errorf("the blocked Next returned %v, want %v", err, want)
		}
	}
	t.Run("Close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var f registry.Feed
			out := next(t, &f, context.Background())
			f.Close()
			check(t, out, registry.ErrWatcherStopped)
		})
	})
	t.Run("Close after a set", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var f registry.Feed
			f.Publish(a)
			wantSet(t, &f, context.Background(), a)
			out := next(t, &f, context.Background())
			f.Publish([]registry.Instance{inst("a")}) // unchanged: it keeps waiting
			synctest.Wait()
			f.Close()
			check(t, out, registry.ErrWatcherStopped)
		})
	})
	t.Run("ctx", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var f registry.Feed
			ctx, cancel := context.WithCancel(context.Background())
			out := next(t, &f, ctx)
			cancel()
			check(t, out, context.Canceled)
			f.Publish(a) // the feed goes on
			wantSet(t, &f, context.Background(), a)
		})
	})
	t.Run("Publish", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var f registry.Feed
			out := next(t, &f, context.Background())
			f.Publish(a)
			check(t, out, nil)
		})
	})
	t.Run("Report", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var f registry.Feed
			e := errors.New("transient")
			out := next(t, &f, context.Background())
			f.Report(e)
			check(t, out, e)
		})
	})
	t.Run("Fail", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var f registry.Feed
			e := errors.New("final")
			out := next(t, &f, context.Background())
			f.Fail(e)
			check(t, out, e)
		})
	})
}

// Sources and readers in many goroutines (run with -race): each reader
// sees the sets in the order they were published, none twice in a row,
// and the last one arrives.
func TestFeedConcurrent(t *testing.T) {
	const n = 200
	var f registry.Feed
	sets := make([][]registry.Instance, n+1) // sets[i] holds i instances
	for i := 1; i <= n; i++ {
		sets[i] = append(sets[i-1][:i-1:i-1], inst(fmt.Sprintf("i%03d", i)))
	}
	transient := errors.New("transient")
	ctx := t.Context()

	var lastOnce sync.Once
	gotLast := make(chan struct{})
	// read calls Next until Close, checking that the sizes it sees grow;
	// the reader that sees the last set closes gotLast.
	read := func() error {
		prev := 0
		for {
			set, err := f.Next(ctx)
			switch {
			case errors.Is(err, registry.ErrWatcherStopped):
				return nil
			case errors.Is(err, transient):
			case err != nil:
				return err
			case len(set) <= prev:
				return fmt.Errorf("Next returned %d instances after %d", len(set), prev)
			default:
				prev = len(set)
				if prev == n {
					lastOnce.Do(func() { close(gotLast) })
				}
			}
		}
	}
	readers := make(chan error, 2)
	for range 2 { // they share the sets: Next calls are serialised
		go func() { readers <- read() }()
	}
	doneSeen := make(chan struct{})
	go func() {
		<-f.Done()
		close(doneSeen)
	}()
	var sources sync.WaitGroup
	sources.Go(func() {
		for i := 1; i <= n; i++ {
			f.Publish(sets[i])
		}
	})
	sources.Go(func() {
		for range n / 10 {
			f.Report(transient)
		}
	})
	sources.Wait()
	<-gotLast
	f.Close()
	for range 2 {
		if err := <-readers; err != nil {
			t.Error(err)
		}
	}
	<-doneSeen
}

// Equal compares sets in order, field by field; nil and empty are alike.
func TestEqual(t *testing.T) {
	a, b := inst("a"), inst("b")
	with := func(change func(*registry.Instance)) registry.Instance {
		in := a.Clone()
		change(&in)
		return in
	}
	meta := with(func(in *registry.Instance) { in.Metadata = map[string]string{"zone": "1"} })
	for _, c := range []struct {
		name string
		x, y []registry.Instance
		want bool
	}{
		{"nil and empty", nil, []registry.Instance{}, true},
		{"same", []registry.Instance{a, b}, []registry.Instance{a.Clone(), b.Clone()}, true},
		{"order", []registry.Instance{a, b}, []registry.Instance{b, a}, false},
		{"length", []registry.Instance{a}, []registry.Instance{a, b}, false},
		{"service", []registry.Instance{a}, []registry.Instance{with(func(in *registry.Instance) { in.Service = "other" })}, false},
		{"version", []registry.Instance{a}, []registry.Instance{with(func(in *registry.Instance) { in.Version = "v2" })}, false},
		{"endpoint", []registry.Instance{a}, []registry.Instance{with(func(in *registry.Instance) { in.Endpoints[0].TLS = true })}, false},
		{"no endpoints", []registry.Instance{with(func(in *registry.Instance) { in.Endpoints = nil })},
			[]registry.Instance{with(func(in *registry.Instance) { in.Endpoints = []registry.Endpoint{} })}, true},
		{"metadata", []registry.Instance{meta}, []registry.Instance{with(func(in *registry.Instance) { in.Metadata = map[string]string{"zone": "2"} })}, false},
		{"metadata added", []registry.Instance{a}, []registry.Instance{meta}, false},
		{"nil and empty metadata", []registry.Instance{a}, []registry.Instance{with(func(in *registry.Instance) { in.Metadata = map[string]string{} })}, true},
	} {
		if got := registry.Equal(c.x, c.y); got != c.want {
			t.Errorf("%s: Equal = %v, want %v", c.name, got, c.want)
		}
		if got := registry.Equal(c.y, c.x); got != c.want {
			t.Errorf("%s, swapped: Equal = %v, want %v", c.name, got, c.want)
		}
	}
}
