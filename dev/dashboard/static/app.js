// Ferry dev dashboard: live refresh and the API explorer. No framework, no
// build step; every page reads without it. Loaded with a
// Content-Security-Policy of default-src 'self': no inline handlers.
"use strict";

(function () {
  var prefix = document.body.dataset.prefix || "/_ferry/";

  // Live regions: poll the page's JSON source with If-None-Match; when it
  // changes, fetch the page again and swap the [data-live-region] element,
  // keeping the waterfall's open spans open.
  var main = document.querySelector("main[data-live]");
  var region = document.querySelector("[data-live-region]");
  if (main && region) {
    var src = main.dataset.live, etag = null;
    var poll = function () {
      var headers = etag ? { "If-None-Match": etag } : {};
      fetch(src, { headers: headers, cache: "no-store" }).then(function (r) {
        if (r.status !== 200) return;
        var next = r.headers.get("ETag");
        var first = etag === null;
        etag = next;
        if (first) return;
        return fetch(location.href, { cache: "no-store" }).then(function (p) { return p.text(); }).then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.querySelector("[data-live-region]");
          if (!fresh) return;
          var open = {};
          region.querySelectorAll("details[open][data-span-id]").forEach(function (d) { open[d.dataset.spanId] = true; });
          region.replaceChildren.apply(region, Array.from(fresh.childNodes));
          region.querySelectorAll("details[data-span-id]").forEach(function (d) { if (open[d.dataset.spanId]) d.open = true; });
          document.dispatchEvent(new CustomEvent("ferry:refreshed"));
        });
      }).catch(function () {}).finally(function () { setTimeout(poll, 2000); });
    };
    poll();
  }

  // Live figures: every second, from <prefix>api/figures.
  function fmtDur(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms <= 0) return "0";
    if (ms < 1) return (ms * 1000).toFixed(0) + " µs";
    if (ms < 10) return ms.toFixed(2) + " ms";
    if (ms < 1000) return ms.toFixed(1) + " ms";
    return (ms / 1000).toFixed(2) + " s";
  }
  function count(v) { return v === null ? "–" : String(v); }
  var fmt = {
    calls_per_s: function (v) { return v === null ? "–" : v.toFixed(1); },
    error_rate: function (v) { return v === null ? "–" : (v * 100).toFixed(1) + "%"; },
    p50_ms: fmtDur, p99_ms: fmtDur, avg_ms: fmtDur,
    total_calls: count, total_errors: count
  };
  if (document.querySelector("[data-fig-key]")) {
    var figures = function () {
      fetch(prefix + "api/figures", { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (f) {
        var by = {};
        (f.endpoints || []).forEach(function (e) { by[e.service + "/" + e.endpoint] = e; });
        document.querySelectorAll("[data-fig-key]").forEach(function (row) {
          var e = by[row.dataset.figKey];
          row.querySelectorAll("[data-fig]").forEach(function (cell) {
            var k = cell.dataset.fig;
            var v = e ? e[k] : null;
            cell.textContent = fmt[k] ? fmt[k](v === undefined ? null : v) : String(v);
            cell.title = e ? "calls/s from " + (e.rate_source || "nothing") + ", latency from " + (e.latency_source || "nothing") : "";
          });
        });
      }).catch(function () {}).finally(function () { setTimeout(figures, 1000); });
    };
    figures();
  }

  // The explorer's endpoint picker opens the endpoint chosen.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });

  setupExplorer(document.getElementById("explorer"));
  // Tests wait for this before they click: until the script has run, a
  // click on Send would submit the form without it.
  document.body.dataset.ready = "true";

  // The API explorer.
  function setupExplorer(form) {
    if (!form) return;
    var result = document.querySelector("[data-testid=explorer-result]");
    var q = function (id) { return result.querySelector("[data-testid=" + id + "]"); };
    function hex(n) {
      var b = new Uint8Array(n);
      crypto.getRandomValues(b);
      return Array.from(b, function (x) { return x.toString(16).padStart(2, "0"); }).join("");
    }
    form.elements.body.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var button = form.querySelector("[data-testid=explorer-send]");
      var body = form.elements.body.value;
      var transport = form.elements.transport.value;
      var status = q("explorer-status"), problem = q("explorer-error"), out = q("explorer-body");
      var headersTable = q("explorer-headers"), timeEl = q("explorer-time"), traceLink = q("explorer-trace");
      result.hidden = false;
      problem.hidden = true;
      traceLink.hidden = true;
      try { JSON.parse(body); } catch (e) {
        status.textContent = "not sent";
        status.className = "status error";
        problem.hidden = false;
        problem.textContent = "The request body is not valid JSON: " + e.message;
        out.textContent = "";
        return;
      }
      // The call's trace: the gateway's tracing continues this trace context,
      // so the trace id is known before the reply.
      var traceID = hex(16);
      var headers = { "Content-Type": "application/json", "Accept": "application/json, application/problem+json",
        "traceparent": "00-" + traceID + "-" + hex(8) + "-01" };
      if (transport) headers["Ferry-Transport"] = transport;
      button.disabled = true;
      status.textContent = "sending…";
      status.className = "status";
      var t0 = performance.now();
      fetch(form.dataset.callUrl, { method: "POST", headers: headers, body: body, cache: "no-store" }).then(function (r) {
        return r.text().then(function (text) {
          var ms = performance.now() - t0;
          status.textContent = r.status + " " + r.statusText;
          status.className = "status " + (r.ok ? "ok" : "error");
          timeEl.textContent = fmtDur(ms);
          headersTable.replaceChildren();
          var fromReply = null;
          r.headers.forEach(function (v, k) {
            var tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
            th.textContent = k; td.textContent = v;
            tr.append(th, td); headersTable.append(tr);
            if (k === "traceparent" && /^[0-9a-f]{2}-[0-9a-f]{32}-/.test(v)) fromReply = v.split("-")[1];
            if (k === "ferry-trace-id" && /^[0-9a-f]{32}$/.test(v)) fromReply = v;
          });
          var pretty = text;
          var parsed = null;
          try { parsed = JSON.parse(text); pretty = JSON.stringify(parsed, null, 2); } catch (e) {}
          out.textContent = pretty;
          out.classList.toggle("error", !r.ok);
          if (!r.ok) {
            problem.hidden = false;
            problem.replaceChildren();
            var title = document.createElement("strong");
            title.textContent = (parsed && (parsed.title || parsed.code)) ? (parsed.title || "") + (parsed.code ? " (" + parsed.code + ")" : "") : r.status + " " + r.statusText;
            problem.append(title);
            if (parsed && parsed.detail) {
              var detail = document.createElement("div");
              detail.textContent = parsed.detail;
              problem.append(detail);
            }
            (parsed && parsed.details || []).forEach(function (d) {
              var line = document.createElement("div");
              line.textContent = (d.field ? d.field + ": " : "") + (d.reason || "");
              problem.append(line);
            });
          }
          traceLink.href = form.dataset.traceBase + (fromReply || traceID);
          traceLink.textContent = "trace " + (fromReply || traceID).slice(0, 8) + "…";
          traceLink.dataset.traceId = fromReply || traceID;
          traceLink.hidden = false;
        });
      }).catch(function (e) {
        status.textContent = "failed";
        status.className = "status error";
        problem.hidden = false;
        problem.textContent = "The request did not complete: " + e.message;
        out.textContent = "";
      }).finally(function () { button.disabled = false; });
    });
  }
})();
