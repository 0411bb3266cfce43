// The inline script of `olmo report`: one uPlot chart per <figure> from the page's data (built and
// thinned on the server side: report-data.ts). The per-step loss is drawn thin and light with its
// EMA bold over it and the skipped steps as red points; eval series show their points. Axis labels
// come from our formatter and y ranges from our range function (tick-labels.ts, inlined here from
// their source), so every axis has distinct labels in one notation and a flat series keeps round
// ticks. Charts share a cursor, and a zoom (drag) on one applies to all.
// Every chart records what it drew — points and extremes of each series as uPlot holds them, the
// scales, the tick labels — in data-drawn, and <body> gets data-rendered and data-render-ms once
// all are drawn, so a headless browser can check the page, not just its source.
import { tickLabels, yRange } from "./tick-labels.ts";

const SCRIPT = String.raw`(function () {
  var t0 = performance.now();
  var data = JSON.parse(document.getElementById("olmo-data").textContent);
  var tickLabels = __TICK_LABELS__;
  var yRange = __Y_RANGE__;
  var STEP_INCRS = [], Y_INCRS = [];
  for (var e = 0; e <= 10; e++) [1, 2, 5].forEach(function (m) { STEP_INCRS.push(m * Math.pow(10, e)); });
  for (var k = -30; k <= 30; k++) [1, 2, 2.5, 5].forEach(function (m) { Y_INCRS.push(Number(m + "e" + k)); });
  var plots = [], pending = data.charts.length, zoomSync = false;
  function stepLabel(v) { return Math.round(v).toLocaleString("en-US"); }
  function valueLabel(u, v) { return v == null ? "–" : String(Number(v.toPrecision(6))); }
  function faded(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16 & 255) + "," + (n >> 8 & 255) + "," + (n & 255) + "," + a + ")";
  }
  function done() {
    if (--pending > 0) return;
    zoomSync = true;
    document.body.setAttribute("data-render-ms", String(Math.round(performance.now() - t0)));
    document.body.setAttribute("data-rendered", "true");
  }
  data.charts.forEach(function (c) {
    var fig = document.getElementById("chart-" + c.id), holder = fig.querySelector(".plot");
    if (!c.x.length) {
      holder.className += " no-data";
      holder.textContent = "no data";
      fig.setAttribute("data-drawn", JSON.stringify({ points: [], min: [], max: [] }));
      done();
      return;
    }
    var ticks = { x: [], y: [] }, first = true;
    var series = [{ label: "step", value: function (u, v) { return v == null ? "–" : stepLabel(v); } }];
    c.series.forEach(function (s) {
      var o = { label: s.label, stroke: s.color, width: 1.5, spanGaps: true, value: valueLabel };
      if (s.kind === "raw") { o.stroke = faded(s.color, 0.4); o.width = 1; }
      if (s.kind === "ema") o.width = 2;
      if (s.kind === "eval") o.points = { show: true, size: 6, fill: s.color };
      if (s.kind === "marks") {
        o.paths = function () { return null; };
        o.points = { show: true, size: 7, stroke: "#d00", fill: "#d00", width: 1 };
      }
      series.push(o);
    });
    var opts = {
      width: 540, height: 250, series: series,
      scales: {
        x: { time: false, range: function (u, lo, hi) { return lo == null ? [0, 1] : lo === hi ? [lo - 1, hi + 1] : [lo, hi]; } },
        y: c.log ? { distr: 3, log: 10, range: function (u, lo, hi) { return yRange(lo, hi, true, c.zeroBased); } }
          : { range: function (u, lo, hi) { return yRange(lo, hi, false, c.zeroBased); } },
      },
      axes: [
        { space: 80, incrs: STEP_INCRS, values: function (u, splits) { return (ticks.x = splits.map(stepLabel)); } },
        { size: 64, incrs: c.log ? undefined : Y_INCRS, values: function (u, splits) {
          var labels = tickLabels(splits, c.log);
          ticks.y = labels.filter(function (l) { return l !== ""; });
          return labels;
        } },
      ],
      cursor: { sync: { key: "olmo" } },
      hooks: {
        draw: [function (u) {
          var drawn = { points: [], min: [], max: [], x: [u.scales.x.min, u.scales.x.max], y: [u.scales.y.min, u.scales.y.max], xTicks: ticks.x, yTicks: ticks.y };
          for (var i = 1; i < u.data.length; i++) {
            var n = 0, lo = Infinity, hi = -Infinity, ys = u.data[i];
            for (var j = 0; j < ys.length; j++) if (ys[j] != null) { n++; if (ys[j] < lo) lo = ys[j]; if (ys[j] > hi) hi = ys[j]; }
            drawn.points.push(n); drawn.min.push(n ? lo : null); drawn.max.push(n ? hi : null);
          }
          fig.setAttribute("data-drawn", JSON.stringify(drawn));
          if (first) { first = false; done(); }
        }],
        setScale: [function (u, key) {
          if (key !== "x" || !zoomSync) return;
          zoomSync = false;
          plots.forEach(function (p) { if (p !== u) p.setScale("x", { min: u.scales.x.min, max: u.scales.x.max }); });
          zoomSync = true;
        }],
      },
    };
    plots.push(new uPlot(opts, [c.x].concat(c.series.map(function (s) { return s.y; })), holder));
  });
})();`;

/** The page's script, with the formatter and the range function inlined from their source. */
export function clientScript(): string {
  return SCRIPT.replace("__TICK_LABELS__", () => tickLabels.toString()).replace("__Y_RANGE__", () => yRange.toString());
}
