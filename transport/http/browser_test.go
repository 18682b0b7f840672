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

// streamPage reads Watch with an EventSource and talks to Chat on two
// WebSockets, as the package documentation shows — one plain, one with
// the "ferry.v1" subprotocol and its credits — and keeps what it saw in
// window.results.
const streamPage = `<!doctype html>
<html><body><script>
window.results = {events: [], end: null, chat: [], header: null, chatEnd: null, closeCode: null,
	credits: [], fChat: [], fEnd: null, fClose: null};
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

const fw = new WebSocket("ws://" + location.host + "/shop/Chat", "ferry.v1");
const win = 8;
let credit = 0, taken = 0, queue = [{seq: 7}, {seq: 8}, null];
const flush = () => {
	while (queue.length && (queue[0] === null || credit > 0)) {
		const m = queue.shift();
		if (m === null) { fw.send(JSON.stringify({end: true})); continue; }
		credit--;
		fw.send(JSON.stringify({msg: m}));
	}
};
fw.onopen = () => fw.send(JSON.stringify({credit: win}));
fw.onmessage = (e) => {
	const env = JSON.parse(e.data);
	if (env.credit) { results.credits.push(env.credit); credit += env.credit; flush(); }
	else if (env.msg) {
		results.fChat.push(env.msg.seq);
		if (++taken >= win / 2) { fw.send(JSON.stringify({credit: taken})); taken = 0; }
	}
	else if (env.end) results.fEnd = env.end;
	else if (env.error) results.fEnd = env;
};
fw.onclose = (e) => { results.fClose = e.code; };
</script></body></html>`

// TestBrowserStreams: a browser's EventSource reads a server stream from
// GET with query parameters, and its WebSocket speaks the envelope
// protocol, with no subprotocol and no header of its own — or with
// "ferry.v1" and credits, the server's window first.
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
	b.WaitFor("the three streams to end", `results.end !== null && results.closeCode !== null && results.fClose !== null`)
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
		"closeCode": 1000,
		"credits": [32], "fChat": [7, 8],
		"fEnd": {"trailer": {"x-echoed": ["2"]}},
		"fClose": 1000}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the page saw %s\nwant %v", raw, want)
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}
