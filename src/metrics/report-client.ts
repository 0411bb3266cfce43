// The inline script of `olmo report` (plain DOM, no library): draws each chart into its <svg> —
// axes with ~5 ticks, one polyline per run (a circle for a single point), on charts with a
// smoothing weight the per-step values thin and their debiased EMA over them, as TensorBoard's
// smoothing slider draws it (tensorboard/components/vz_line_chart2/line-chart.ts resmoothDataset:
// last = last·w + (1 − w)·v; smoothed = last / (1 − w^n)), and marks (skipped steps) as crosses.
// Every curve carries data-drawn-points, every chart data-drawn, <body> data-rendered, so a
// headless browser can check what was drawn.
export const CLIENT_SCRIPT = String.raw`(function () {
  var data = JSON.parse(document.getElementById("olmo-data").textContent);
  var NS = "http://www.w3.org/2000/svg", W = 560, H = 300, L = 62, R = 12, T = 10, B = 34;
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(v) {
    var a = Math.abs(v);
    if (a === 0) return "0";
    if (a >= 1e5 || a < 1e-2) return v.toExponential(1);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(a >= 1 ? 2 : 3);
  }
  function ticks(lo, hi, n) {
    if (hi === lo) return [lo];
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
    var err = (hi - lo) / n / step;
    step *= err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1;
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
    return out;
  }
  // log scale (y is log10 of the value): 1, 2, 5 × 10^k inside the range, thinned to at most 7
  function logTicks(lo, hi) {
    var out = [];
    for (var k = Math.floor(lo) - 1; k <= Math.ceil(hi); k++) {
      [1, 2, 5].forEach(function (m) {
        var t = k + Math.log10(m);
        if (t >= lo && t <= hi) out.push(t);
      });
    }
    if (out.length < 2) return ticks(lo, hi, 4);
    var every = Math.ceil(out.length / 7);
    return out.filter(function (_, i) { return i % every === 0; });
  }
  function rows(run, c) {
    return c.eval ? run.evals.filter(function (e) { return e.eval === c.eval; }) : run.metrics;
  }
  function smooth(pts, w) {
    var last = 0, n = 0;
    return pts.map(function (p) {
      last = last * w + (1 - w) * p[1];
      n++;
      return [p[0], last / (1 - Math.pow(w, n))];
    });
  }
  data.charts.forEach(function (c) {
    var fig = document.getElementById("chart-" + c.id), svg = fig.querySelector("svg");
    var series = data.runs.map(function (r) {
      return { run: r, pts: rows(r, c).filter(function (m) {
        var v = m[c.key];
        return typeof v === "number" && isFinite(v) && (!c.log || v > 0);
      }).map(function (m) { return [m.step, c.log ? Math.log10(m[c.key]) : m[c.key]]; }),
        marks: c.mark ? r.metrics.filter(function (m) { return m[c.mark] === 1 && typeof m[c.key] === "number" && isFinite(m[c.key]); })
          .map(function (m) { return [m.step, m[c.key]]; }) : [] };
    });
    var all = [].concat.apply([], series.map(function (s) { return s.pts; }));
    if (!all.length) {
      el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, svg).textContent = "no data";
    }
    var xs = all.map(function (p) { return p[0]; }), ys = all.map(function (p) { return p[1]; });
    var x0 = Math.min.apply(null, xs.concat([1])), x1 = Math.max.apply(null, xs.concat([x0 + 1]));
    var y0 = Math.min.apply(null, ys.length ? ys : [0]), y1 = Math.max.apply(null, ys.length ? ys : [1]);
    if (y1 === y0) { y0 -= Math.abs(y0) * 0.05 || 1; y1 += Math.abs(y1) * 0.05 || 1; }
    var pad = (y1 - y0) * 0.04; y0 -= pad; y1 += pad;
    if (!c.log && c.zeroBased && y0 < 0 && Math.min.apply(null, ys.length ? ys : [0]) >= 0) y0 = 0;
    var sx = function (x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
    var sy = function (y) { return T + (1 - (y - y0) / (y1 - y0)) * (H - T - B); };
    var yt = c.log ? logTicks(y0, y1) : ticks(y0, y1, 5);
    yt.forEach(function (t) {
      if (t < y0 || t > y1) return;
      el("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), "class": "grid-line" }, svg);
      el("text", { x: L - 6, y: sy(t) + 4, "text-anchor": "end" }, svg).textContent = fmt(c.log ? Math.pow(10, t) : t);
    });
    ticks(x0, x1, 6).forEach(function (t) {
      if (t < x0 || t > x1) return;
      el("text", { x: sx(t), y: H - B + 16, "text-anchor": "middle" }, svg).textContent = String(Math.round(t));
    });
    el("line", { x1: L, x2: L, y1: T, y2: H - B, "class": "axis" }, svg);
    el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, "class": "axis" }, svg);
    el("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, svg).textContent = "step";
    function curve(pts, color, attrs) {
      var xy = pts.map(function (p) { return sx(p[0]).toFixed(2) + "," + sy(p[1]).toFixed(2); });
      var e = el(xy.length === 1 ? "circle" : "polyline", xy.length === 1
        ? { cx: xy[0].split(",")[0], cy: xy[0].split(",")[1], r: 3, fill: color }
        : { points: xy.join(" "), fill: "none", stroke: color, "stroke-width": attrs.width, "stroke-opacity": attrs.opacity, "stroke-linejoin": "round" }, svg);
      for (var k in attrs.data) e.setAttribute(k, attrs.data[k]);
      e.setAttribute("data-drawn-points", String(xy.length));
      return e;
    }
    series.forEach(function (s, i) {
      var raw = curve(s.pts, s.run.color, { width: c.smoothing ? 1 : 1.6, opacity: c.smoothing ? 0.35 : 1, data: { "class": "curve", "data-run": String(i) } });
      el("title", {}, raw).textContent = s.run.name + ": " + s.pts.length + " points";
      if (c.smoothing && s.pts.length > 1) {
        curve(smooth(s.pts, c.smoothing), s.run.color, { width: 2, opacity: 1, data: { "class": "smoothed", "data-smoothed-run": String(i) } });
      }
      s.marks.forEach(function (p) {
        var x = sx(p[0]), y = sy(c.log ? Math.log10(p[1]) : p[1]);
        var g = el("path", { d: "M" + (x - 4) + "," + (y - 4) + "l8,8m0,-8l-8,8", stroke: "#d00", "stroke-width": 2, "class": "mark", "data-mark-run": String(i) }, svg);
        el("title", {}, g).textContent = s.run.name + ": step " + p[0] + " skipped";
      });
    });
    fig.setAttribute("data-drawn", "true");
  });
  document.body.setAttribute("data-rendered", "true");
})();`;
