package http_test

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferry-go/ferry/internal/browser"
	fhttp "github.com/ferry-go/ferry/transport/http"
)

// streamPage reads Watch with an EventSource and talks to Chat on a
// WebSocket, as the package documentation shows, and keeps what it saw in
// window.results.
const streamPage = `<!doctype html>
<html><body><script>
window.results = {events: [], end: null, chat: [], header: null, chatEnd: null, closeCode: null};
const es = new EventSource("/shop/Watch?customer=c-1&n=3");
es.onmessage = (e) => results.events.push(JSON.parse(e.data));
es.addEventListener("end", (e) => { es.close(); results.end = JSON.parse(e.data); });
es.addEventListener("error", (e) => { es.close(); results.end = {failed: e.data || "connection"}; });
const ws = new WebSocket("ws://" + location.host + "/shop/Chat");
ws.onopen = () => {
	ws.send(JSON.stringify({msg: {seq: 5}}));
	ws.send(JSON.stringify({msg: {seq: 6}}));
	ws.send(JSON.stringify({end: true}));
};
ws.onmessage = (e) => {
	const env = JSON.parse(e.data);
	if (env.header) results.header = env.header;
	else if (env.msg) results.chat.push(env.msg.seq);
	else if (env.end) results.chatEnd = env.end;
	else results.chatEnd = env;
};
ws.onclose = (e) => { results.closeCode = e.code; };
</script></body></html>`

// TestBrowserStreams: a browser's EventSource reads a server stream from
// GET with query parameters, and its WebSocket speaks the envelope
// protocol, with no subprotocol and no header of its own.
func TestBrowserStreams(t *testing.T) {
	b := browser.Start(t, 2*time.Minute)
	_, base := start(t, shop(), fhttp.WithFilter(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = io.WriteString(w, streamPage)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	b.Do("open the page", chromedp.Navigate(base+"/"))
	b.WaitFor("both streams to end", `results.end !== null && results.closeCode !== null`)
	raw, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`JSON.stringify(results)`))
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(`{
		"events": [{"seq":0,"customer":"c-1"},{"seq":1,"customer":"c-1"},{"seq":2,"customer":"c-1"}],
		"end": {"trailer": {"x-count": ["3"]}},
		"chat": [5, 6], "header": {"x-chat": ["1"]},
		"chatEnd": {"trailer": {"x-echoed": ["2"]}},
		"closeCode": 1000}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the page saw %s\nwant %v", raw, want)
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}
