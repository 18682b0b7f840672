package traces_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferry-go/ferry/dev/traces"
	"github.com/ferry-go/ferry/ferrytest"
	"google.golang.org/protobuf/proto"
)

// WithForward: what the dev receiver accepts reaches the team's collector
// too (another receiver here), OTLP/JSON with hex ids arriving there as the
// same spans; a collector that is down is counted, never the exporter's
// problem.
func TestReceiverForward(t *testing.T) {
	upstreamStore := traces.NewStore(0)
	upstream := httptest.NewServer(traces.NewReceiver(upstreamStore))
	defer upstream.Close()

	store := traces.NewStore(0)
	rc := traces.NewReceiver(store, traces.WithForward(upstream.URL+"/v1/traces", upstream.Client()))
	dev := httptest.NewServer(rc)
	defer dev.Close()

	pb, err := proto.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	exportPosted(t, dev.URL, ctProto, bytes.NewReader(pb))
	exportPosted(t, dev.URL, ctJSON, strings.NewReader(sampleOTLPJSON))
	ferrytest.Eventually(t, "both exports forwarded", func() bool { return rc.ForwardStats().Forwarded == 2 })
	rc.Close()
	want, got := store.List(), upstreamStore.List()
	if len(want) != 1 || len(got) != 1 || got[0].TraceID != want[0].TraceID || got[0].SpanCount != want[0].SpanCount {
		t.Fatalf("upstream has %+v, want what the dev store has: %+v", got, want)
	}
	if st := rc.ForwardStats(); st.Failed != 0 || st.Skipped != 0 {
		t.Errorf("ForwardStats = %+v, want no failures", st)
	}

	// The collector gone: the export is still answered, the failure counted.
	upstream.Close()
	exportPosted(t, dev.URL, ctProto, bytes.NewReader(pb))
	ferrytest.Eventually(t, "the failed forward counted", func() bool { return rc.ForwardStats().Failed == 1 })
	rc.Close()
	if st := rc.ForwardStats(); st.LastError == "" || st.Forwarded != 2 {
		t.Errorf("ForwardStats = %+v, want 2 forwarded and the last error", st)
	}
	// A collector answering an error status is a failure too.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer bad.Close()
	rc2 := traces.NewReceiver(traces.NewStore(0), traces.WithForward(bad.URL, nil))
	dev2 := httptest.NewServer(rc2)
	defer dev2.Close()
	exportPosted(t, dev2.URL, ctProto, bytes.NewReader(pb))
	ferrytest.Eventually(t, "the 503 counted", func() bool { return rc2.ForwardStats().Failed == 1 })
	rc2.Close()
	if st := rc2.ForwardStats(); !strings.Contains(st.LastError, "503") {
		t.Errorf("LastError = %q, want the 503 named", st.LastError)
	}
}

func exportPosted(t *testing.T, u, contentType string, body io.Reader) {
	t.Helper()
	resp, b := post(t, u, contentType, "", body)
	exportOK(t, resp, b, contentType)
}
