// modelyard charts: a small wrapper around the vendored uPlot, shared by the run and compare pages.
//
// API (window.modelyard.charts):
//   var chart = charts.create(element, options)
//       options.xKind   "step" | "time" (ms since the epoch) | "duration" (ms)      default "step"
//       options.logY    true for a log y axis (values <= 0 are left out)          default false
//       options.height  px                                                         default 220
//       options.onZoom  function (xMin, xMax) called when the user drags over a range; the caller
//                       loads that range (full resolution when it is small enough) and calls
//                       chart.setSeries again. Without it, a drag zooms uPlot's scale locally.
//   chart.setSeries(list, {smoothing: 0..0.99})
//       list: [{label, color?, x: [], y: [], yMin?: [], yMax?: []}, ...] — one entry per run; x
//       ascending; null y is a gap. yMin/yMax (a downsampled envelope) are drawn as a band under the
//       line. With smoothing > 0 the line is an exponential moving average (debiased, as
//       TensorBoard's) and the raw values stay as a faint line.
//   chart.setOptions({logY, xKind})   redraws with the last series
//   chart.destroy()
//   charts.ema(values, weight) -> smoothed copy (nulls stay null)
//   charts.color(i) -> the i-th series colour
// Series of different x are aligned with uPlot.join; a series's own gaps stay gaps.
(function () {
  "use strict";
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf"];

  function color(i) { return PALETTE[i % PALETTE.length]; }

  function ema(values, weight) {
    var out = new Array(values.length), last = 0, n = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || v === undefined || !isFinite(v)) { out[i] = v === undefined ? undefined : null; continue; }
      last = last * weight + (1 - weight) * v;
      n++;
      out[i] = last / (1 - Math.pow(weight, n));
    }
    return out;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function formatDuration(ms) {
    var s = Math.round(ms / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    if (h) return h + ":" + pad(m) + ":" + pad(s % 60);
    if (m) return m + ":" + pad(s % 60);
    return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + "s";
  }

  function formatNumber(v) {
    if (v === null || v === undefined) return "";
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
    return String(+v.toPrecision(6));
  }

  function cssVar(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name);
    return v ? v.trim() : fallback;
  }

  function decades(u, axisIdx, min, max) {
    var out = [];
    if (!(min > 0) || !(max > 0)) return out;
    for (var e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      var v = Math.pow(10, e);
      if (v >= min * 0.999999 && v <= max * 1.000001) out.push(v);
    }
    return out;
  }

  function positive(values) {
    return values.map(function (v) { return v !== null && v !== undefined && v > 0 ? v : null; });
  }

  function create(element, options) {
    options = options || {};
    var state = { xKind: options.xKind || "step", logY: !!options.logY, list: [], smoothing: 0, plot: null };
    var height = options.height || 220;

    function width() { return Math.max(200, element.clientWidth || 400); }

    function build() {
      if (state.plot) { state.plot.destroy(); state.plot = null; }
      var tables = [], modes = [], series = [{}], bands = [];
      var grid = cssVar("--line", "#e0e3e8"), fg = cssVar("--muted", "#60646c");
      state.list.forEach(function (s, i) {
        var c = s.color || color(i);
        var y = s.y, lo = s.yMin || s.y, hi = s.yMax || s.y;
        if (state.logY) { y = positive(y); lo = positive(lo); hi = positive(hi); }
        var smoothed = state.smoothing > 0 ? ema(y, state.smoothing) : null;
        var base = series.length;
        var cols = [s.x, hi, lo, y];
        // The envelope's edges as hairlines: a one-bucket spike stays visible at any zoom.
        series.push({ label: s.label + " max", stroke: c + "66", width: 1, points: { show: false } });
        series.push({ label: s.label + " min", stroke: c + "66", width: 1, points: { show: false } });
        series.push({ label: s.label, stroke: c, width: smoothed ? 1 : 1.5, alpha: smoothed ? 0.35 : 1,
          points: { show: s.x.length < 60 }, value: function (u, v) { return formatNumber(v); } });
        bands.push({ series: [base, base + 1], fill: c + "33" });
        if (smoothed) {
          cols.push(smoothed);
          series.push({ label: s.label + " (smoothed)", stroke: c, width: 2, points: { show: false },
            value: function (u, v) { return formatNumber(v); } });
        }
        tables.push(cols);
        modes.push(cols.slice(1).map(function () { return 1; }));  // a series's own nulls stay gaps
      });
      var data = tables.length === 1 ? tables[0] : uPlot.join(tables, modes);
      var xTime = state.xKind === "time";
      var opts = {
        width: width(), height: height, ms: 1,
        legend: { show: false },
        cursor: { drag: { x: true, y: false, setScale: !options.onZoom } },
        scales: { x: { time: xTime }, y: state.logY ? { distr: 3 } : {} },
        series: series, bands: bands,
        axes: [
          { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid },
            values: state.xKind === "duration" ? function (u, vals) { return vals.map(formatDuration); } : undefined },
          { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 60,
            values: function (u, vals) { return vals.map(formatNumber); },
            // On a log axis only the decades get grid lines and labels (uPlot draws all nine per decade).
            splits: state.logY ? decades : undefined }
        ],
        hooks: { setSelect: [function (u) {
          if (!options.onZoom || u.select.width < 3) return;
          var lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          options.onZoom(lo, hi);
        }] }
      };
      if (!xTime) delete opts.ms;
      state.plot = new uPlot(opts, data, element);
      element.dataset.points = String(data[0].length);
    }

    var resizeTimer = null;
    function onResize() {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () { if (state.plot) state.plot.setSize({ width: width(), height: height }); }, 100);
    }
    window.addEventListener("resize", onResize);

    return {
      setSeries: function (list, opts) {
        state.list = list;
        state.smoothing = opts && opts.smoothing ? opts.smoothing : 0;
        build();
      },
      setOptions: function (opts) {
        if (opts.logY !== undefined) state.logY = !!opts.logY;
        if (opts.xKind !== undefined) state.xKind = opts.xKind;
        if (opts.smoothing !== undefined) state.smoothing = opts.smoothing;
        if (state.list.length) build();
      },
      destroy: function () {
        window.removeEventListener("resize", onResize);
        if (state.plot) state.plot.destroy();
        state.plot = null;
      },
      plot: function () { return state.plot; }
    };
  }

  window.modelyard = window.modelyard || {};
  window.modelyard.charts = { create: create, ema: ema, color: color, formatNumber: formatNumber,
    formatDuration: formatDuration };
})();
