// modelyard plot kit: what the canvas plots (scatter.js, parcoords.js) share. A column is
// {id, kind, key, values: [number|null per run], categories?: [string]}; a column with categories
// is an ordinal axis whose values are indexes into it; null is a missing (or NaN) value.
(function () {
  "use strict";

  // A canvas filling `box`, sized in device pixels (sharp on HiDPI screens), drawing in CSS pixels.
  function canvas(box) {
    var c = box.querySelector("canvas");
    if (!c) { c = document.createElement("canvas"); box.appendChild(c); }
    var w = box.clientWidth, h = box.clientHeight, dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
    }
    var ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { canvas: c, ctx: ctx, w: w, h: h };
  }

  // The page's colours (app.css variables), so the plots follow the light/dark theme.
  function theme() {
    var s = getComputedStyle(document.documentElement);
    var v = function (name, fallback) { return (s.getPropertyValue(name) || "").trim() || fallback; };
    return { fg: v("--fg", "#1c2024"), muted: v("--muted", "#60646c"), line: v("--line", "#e0e3e8"),
      accent: v("--accent", "#1f6feb"), bg: v("--bg", "#ffffff"), soft: v("--soft", "#f5f6f8") };
  }

  // Readable on light and dark backgrounds; low values blue, high values orange.
  var RAMP = ["#3b6fd8", "#5a5fcf", "#7e4fc0", "#a23fa8", "#c4398a", "#dd4468", "#ea5d42", "#ef7e1f"];
  function ramp(t) { return RAMP[Math.max(0, Math.min(RAMP.length - 1, Math.floor(t * RAMP.length)))]; }

  function extent(values) {
    var lo = Infinity, hi = -Infinity;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || v === undefined) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    return lo <= hi ? [lo, hi] : null;
  }

  // An axis's domain: categories span their indexes (half a slot of margin), numbers their extent
  // (a single value gets a unit around it).
  function domain(column) {
    if (column.categories) return [-0.5, Math.max(column.categories.length, 1) - 0.5];
    var e = extent(column.values);
    if (!e) return [0, 1];
    if (e[0] === e[1]) { var pad = Math.abs(e[0]) * 0.1 || 1; return [e[0] - pad, e[1] + pad]; }
    return e;
  }

  // About `count` round tick values in [lo, hi].
  function ticks(lo, hi, count) {
    var span = hi - lo;
    if (!(span > 0) || !isFinite(span)) return [lo];
    var step = Math.pow(10, Math.floor(Math.log10(span / count)));
    var err = span / count / step;
    step *= err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1;
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    return out;
  }

  // A numeric column on a log10 scale: values <= 0 have no place on it and count as missing.
  function logColumn(column) {
    return { id: column.id, kind: column.kind, key: column.key, log: true,
      values: column.values.map(function (v) { return v !== null && v > 0 ? Math.log10(v) : null; }) };
  }
  function canLog(column) {
    return !column.categories && column.values.some(function (v) { return v !== null && v > 0; });
  }

  // The ticks of a column's axis as [value, label] pairs (every category when they fit, else a sample;
  // powers of ten on a log axis spanning a decade or more).
  function axisTicks(column, lo, hi, room) {
    if (column.log) {
      var label = function (t) { return [t, fmt(Math.pow(10, t))]; };
      if (Math.floor(hi) - Math.ceil(lo) < 1) return ticks(lo, hi, Math.max(2, room)).map(label);
      var every = Math.max(1, Math.ceil((Math.floor(hi) - Math.ceil(lo) + 1) / Math.max(2, room))), out0 = [];
      for (var e = Math.ceil(lo); e <= Math.floor(hi); e += every) out0.push(label(e));
      return out0;
    }
    if (column.categories) {
      var n = column.categories.length, every = Math.max(1, Math.ceil(n / Math.max(1, room)));
      var out = [];
      for (var i = 0; i < n; i += every) out.push([i, column.categories[i]]);
      return out;
    }
    return ticks(lo, hi, Math.max(2, room)).map(function (t) { return [t, fmt(t)]; });
  }

  // A number in at most ~6 characters of precision: 0.00123, 1.5e+6, 42.
  function fmt(v) {
    if (v === null || v === undefined) return "n/a";
    if (v === 0) return "0";
    var a = Math.abs(v);
    if (a >= 1e6 || a < 1e-4) return v.toExponential(2).replace(/\.?0+e/, "e");
    return String(parseFloat(v.toPrecision(4)));
  }

  // A value's text for a tooltip: the category for an ordinal axis.
  function valueText(column, v) {
    if (v === null || v === undefined) return "n/a";
    return column.categories ? column.categories[v] : fmt(v);
  }

  // Text cut to fit `width` pixels, with an ellipsis.
  function clip(ctx, text, width) {
    if (ctx.measureText(text).width <= width) return text;
    var lo = 0, hi = text.length;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (ctx.measureText(text.slice(0, mid) + "…").width <= width) lo = mid; else hi = mid - 1;
    }
    return text.slice(0, lo) + "…";
  }

  // A floating tooltip inside `box`; show(x, y, lines) / hide().
  function tooltip(box) {
    var tip = box.querySelector(".plot-tip");
    if (!tip) { tip = document.createElement("div"); tip.className = "plot-tip"; tip.hidden = true; box.appendChild(tip); }
    return {
      show: function (x, y, lines) {
        tip.textContent = "";
        lines.forEach(function (line, i) {
          if (i) tip.appendChild(document.createElement("br"));
          tip.appendChild(document.createTextNode(line));  // text, never HTML: names are user input
        });
        tip.hidden = false;
        var left = Math.min(x + 12, box.clientWidth - tip.offsetWidth - 4);
        var top = y + 12 + tip.offsetHeight > box.clientHeight ? y - tip.offsetHeight - 8 : y + 12;
        tip.style.left = Math.max(0, left) + "px"; tip.style.top = Math.max(0, top) + "px";
      },
      hide: function () { tip.hidden = true; },
    };
  }

  // The plot's font, from the page's.
  function font(size) {
    return size + "px " + getComputedStyle(document.body).fontFamily;
  }

  window.modelyardPlot = { canvas: canvas, theme: theme, ramp: ramp, extent: extent, domain: domain,
    logColumn: logColumn, canLog: canLog,
    ticks: ticks, axisTicks: axisTicks, fmt: fmt, valueText: valueText, clip: clip, tooltip: tooltip, font: font };
})();
