"use strict";
(function () {
  // History for the charts: one point per event, as the server replays and streams them.
  var points = [];
  var MAX_POINTS = 5000;
  function $(id) { return document.getElementById(id); }
  function text(id, v) { $(id).textContent = v; }
  function fmt(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    return Number(v).toFixed(digits);
  }
  function pct(v) { return (v === null || v === undefined) ? "–" : (v * 100).toFixed(2) + " %"; }
  function el(tag, cls, content) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (content !== undefined) e.textContent = content;
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function setStatus(s) { var e = $("status"); e.textContent = s; e.className = "status " + s; }

  function draw(id, key, color) {
    var c = $(id);
    var ratio = window.devicePixelRatio || 1;
    var w = c.clientWidth || 600, h = c.clientHeight || 160;
    if (c.width !== Math.round(w * ratio)) { c.width = Math.round(w * ratio); c.height = Math.round(h * ratio); }
    var g = c.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, h);
    var style = getComputedStyle(document.body);
    var mute = style.getPropertyValue("--mute").trim() || "#888";
    var line = style.getPropertyValue("--line").trim() || "#ccc";
    var pts = points.filter(function (p) { return p[key] !== null && p[key] !== undefined; });
    var left = 44, bottom = 18, top = 6, right = 6;
    g.strokeStyle = line; g.lineWidth = 1;
    g.beginPath(); g.moveTo(left, top); g.lineTo(left, h - bottom); g.lineTo(w - right, h - bottom); g.stroke();
    if (pts.length === 0) return;
    var t0 = points[0].t - 1, t1 = Math.max(points[points.length - 1].t, t0 + 1);
    var max = 0;
    pts.forEach(function (p) { if (p[key] > max) max = p[key]; });
    max = max > 0 ? max * 1.1 : 1;
    g.fillStyle = mute; g.font = "11px system-ui, sans-serif";
    g.fillText(fmt(max, max < 10 ? 1 : 0), 2, top + 10);
    g.fillText("0", 2, h - bottom);
    g.fillText(Math.round(t0) + " s", left, h - 4);
    g.fillText(Math.round(t1) + " s", w - right - 40, h - 4);
    g.strokeStyle = color; g.lineWidth = 1.5;
    g.beginPath();
    pts.forEach(function (p, i) {
      var x = left + (p.t - t0) / (t1 - t0) * (w - left - right);
      var y = h - bottom - p[key] / max * (h - bottom - top);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  }
  var pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      var style = getComputedStyle(document.body);
      draw("chart-rps", "rps", style.getPropertyValue("--accent").trim() || "#36c");
      draw("chart-p95", "p95_ms", style.getPropertyValue("--bad").trim() || "#c33");
    });
  }
  window.addEventListener("resize", redraw);

  function steps(rows) {
    var body = $("steps");
    clear(body);
    rows.forEach(function (s) {
      var tr = el("tr");
      [s.name, fmt(s.rps, 1), String(s.requests), String(s.errors), pct(s.error_rate),
       fmt(s.p50_ms, 1), fmt(s.p95_ms, 1), fmt(s.p99_ms, 1)].forEach(function (v, i) {
        var td = el("td", i === 4 && s.errors > 0 ? "bad" : "", v);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
  function kinds(map) {
    var ul = $("error-kinds");
    clear(ul);
    var names = Object.keys(map || {});
    if (names.length === 0) { ul.appendChild(el("li", "none", "none")); return; }
    names.sort(function (a, b) { return map[b] - map[a]; });
    names.forEach(function (k) {
      var li = el("li");
      li.appendChild(el("span", "bad", k));
      li.appendChild(document.createTextNode(" " + map[k]));
      ul.appendChild(li);
    });
  }
  function monitors(list) {
    var box = $("monitors");
    if (!list || list.length === 0) return;
    clear(box);
    list.forEach(function (m) {
      var h = el("h3", "", m.name + " ");
      h.appendChild(el("small", "", "at " + fmt(m.t, 0) + " s" +
        (m.series_total > Object.keys(m.series).length ? " · " + Object.keys(m.series).length + " of " + m.series_total + " series" : "")));
      box.appendChild(h);
      if (m.error) box.appendChild(el("p", "bad", m.error));
      var dl = el("dl", "series");
      Object.keys(m.series).forEach(function (k) {
        dl.appendChild(el("dt", "", k));
        dl.appendChild(el("dd", "", fmt(m.series[k], Math.abs(m.series[k]) < 10 ? 3 : 1)));
      });
      box.appendChild(dl);
    });
  }
  function onSecond(e) {
    points.push({ t: e.t, rps: e.rps, p95_ms: e.p95_ms });
    if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
    text("phase", e.phase);
    text("phase-time", fmt(e.phase_elapsed_s, 0) + (e.phase_planned_s > 0 ? " / " + fmt(e.phase_planned_s, 0) : "") + " s");
    text("t", fmt(e.t, 0));
    text("vus", String(e.vus));
    text("rps", fmt(e.rps, 1));
    text("requests", String(e.requests_total));
    text("errors", String(e.errors_total));
    text("p50", fmt(e.p50_ms, 1));
    text("p95", fmt(e.p95_ms, 1));
    text("p99", fmt(e.p99_ms, 1));
    text("error-rate", pct(e.error_rate));
    $("error-rate").className = "v" + (e.error_rate > 0 ? " bad" : "");
    steps(e.steps || []);
    kinds(e.errors_by_kind);
    monitors(e.monitors);
    redraw();
  }
  function onSummary(s) {
    var ul = $("findings");
    clear(ul);
    if (!s.findings || s.findings.length === 0) {
      ul.appendChild(el("li", "none", s["final"] ? "no findings" : "none so far (after " + s.phase + ")"));
    }
    (s.findings || []).forEach(function (f) {
      var li = el("li");
      li.appendChild(el("span", "prio " + (f.priority === "critical" || f.priority === "high" ? "bad" : ""), f.priority));
      li.appendChild(el("b", "", f.title));
      (f.evidence || []).forEach(function (ev) { li.appendChild(el("div", "evidence", ev)); });
      if (f.recommendation) li.appendChild(el("div", "", "→ " + f.recommendation));
      ul.appendChild(li);
    });
    var th = $("thresholds");
    clear(th);
    if (!s.thresholds || s.thresholds.length === 0) th.appendChild(el("li", "none", "no thresholds"));
    (s.thresholds || []).forEach(function (t) {
      var li = el("li");
      li.appendChild(el("span", t.passed ? "good" : "bad", t.passed ? "✓ " : "✗ "));
      li.appendChild(document.createTextNode(t.phase + ": " + t.expr + " (" + (t.value === null ? "no data" : fmt(t.value, 3)) + ")"));
      th.appendChild(li);
    });
    if (s["final"]) {
      setStatus("ended");
      text("phase", s.verdict + " (" + s.status + ")");
    }
  }

  var source = new EventSource("/events");
  source.onopen = function () { if ($("status").textContent !== "ended") setStatus("live"); };
  source.onmessage = function (m) { onSecond(JSON.parse(m.data)); };
  source.addEventListener("summary", function (m) { onSummary(JSON.parse(m.data)); });
  source.onerror = function () {
    if ($("status").textContent === "ended") { source.close(); return; }
    setStatus("lost");
  };
})();
