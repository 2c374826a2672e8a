// modelyard parallel coordinates on a canvas: one vertical axis per column, one line per run.
//   var pc = modelyardParcoords(box, {names: [...], best: "low"|"high",
//                                     onChange: function (selected, brushes, done) {}});
//   pc.draw(columns, brushes)   // brushes: {columnId: [lo, hi]} in the column's values
// Dragging along an axis brushes a range on it; a run is selected when it lies inside every brush
// (a missing value is outside any brush). Selected lines are coloured by the last axis (where the
// outcome usually is), the others drawn faint behind them. A click on an axis clears its brush.
// Missing or NaN values sit in an "n/a" slot below their axis. The box's data-selected holds the
// number of selected runs, so tests and other plots can read it.
(function () {
  "use strict";
  var P = window.modelyardPlot;
  var PAD = { left: 56, right: 56, top: 46, bottom: 34 };
  var NA_GAP = 20;  // the n/a slot, below the axis

  window.modelyardParcoords = function (box, options) {
    var names = options.names, tip = P.tooltip(box);
    var columns = [], brushes = {}, layout = null, drag = null, hover = -1, frame = 0, selected = null;

    function compute() {
      var w = box.clientWidth, h = box.clientHeight, n = columns.length;
      var x0 = PAD.left, x1 = w - PAD.right, y0 = h - PAD.bottom - NA_GAP, y1 = PAD.top;
      var step = n > 1 ? (x1 - x0) / (n - 1) : 0;
      var axes = columns.map(function (c, k) {
        var d = P.domain(c);
        return { column: c, x: n > 1 ? x0 + k * step : (x0 + x1) / 2, lo: d[0], hi: d[1] };
      });
      // y of every run on every axis, computed once per layout (drawing reuses it)
      var ys = axes.map(function (a) {
        var out = new Float32Array(names.length), vals = a.column.values, span = a.hi - a.lo;
        for (var i = 0; i < names.length; i++) {
          var v = vals[i];
          out[i] = v === null || v === undefined ? y0 + NA_GAP : y0 - (v - a.lo) / span * (y0 - y1);
        }
        return out;
      });
      layout = { w: w, h: h, x0: x0, x1: x1, y0: y0, y1: y1, step: step, axes: axes, ys: ys };
    }

    function valueAt(axis, y) {
      return axis.lo + (layout.y0 - y) / (layout.y0 - layout.y1) * (axis.hi - axis.lo);
    }
    function yOf(axis, v) {
      return layout.y0 - (v - axis.lo) / (axis.hi - axis.lo) * (layout.y0 - layout.y1);
    }

    function select() {
      var mask = new Array(names.length), count = 0;
      var active = layout.axes.filter(function (a) { return brushes[a.column.id]; });
      for (var i = 0; i < names.length; i++) {
        var ok = true;
        for (var k = 0; k < active.length && ok; k++) {
          var b = brushes[active[k].column.id], v = active[k].column.values[i];
          ok = v !== null && v !== undefined && v >= b[0] && v <= b[1];
        }
        mask[i] = ok;
        if (ok) count++;
      }
      selected = mask;
      box.setAttribute("data-selected", String(count));
      box.setAttribute("data-brushes", String(active.length));
      return count;
    }

    function colorIndex() {
      var last = layout.axes[layout.axes.length - 1];
      if (!last || last.column.categories) return null;
      var out = new Int8Array(names.length), vals = last.column.values, span = last.hi - last.lo;
      for (var i = 0; i < names.length; i++) {
        var v = vals[i];
        out[i] = v === null || v === undefined ? -1 : Math.max(0, Math.min(7, Math.floor((v - last.lo) / span * 8)));
      }
      return out;
    }

    function path(ctx, i) {
      var axes = layout.axes, ys = layout.ys;
      ctx.moveTo(axes[0].x, ys[0][i]);
      for (var k = 1; k < axes.length; k++) ctx.lineTo(axes[k].x, ys[k][i]);
    }

    function render() {
      frame = 0;
      var c = P.canvas(box), ctx = c.ctx, th = P.theme();
      if (!layout || layout.w !== c.w || layout.h !== c.h) compute();
      var axes = layout.axes, n = names.length, k, i;
      if (!axes.length) return;
      var brushed = axes.some(function (a) { return brushes[a.column.id]; });
      // faint lines: everything when nothing is brushed is still drawn coloured below
      ctx.lineWidth = 1;
      if (brushed) {
        ctx.strokeStyle = th.line; ctx.globalAlpha = 0.9; ctx.beginPath();
        for (i = 0; i < n; i++) if (!selected[i]) path(ctx, i);
        ctx.stroke();
      }
      var colors = colorIndex(), alpha = n > 300 ? 0.45 : n > 50 ? 0.7 : 0.9;
      ctx.globalAlpha = alpha;
      // the best runs (by options.best: "low" or "high" values of the last axis) drawn last, on top
      for (var b = -1; b < 8; b++) {
        var bucket = b < 0 || options.best !== "low" ? b : 7 - b;
        ctx.strokeStyle = bucket < 0 ? (colors ? th.muted : th.accent) : P.ramp(bucket / 8 + 0.01);
        ctx.beginPath();
        var any = false;
        for (i = 0; i < n; i++) {
          if (!selected[i]) continue;
          if ((colors ? colors[i] : -1) !== bucket) continue;
          path(ctx, i); any = true;
        }
        if (any) ctx.stroke();
      }
      ctx.globalAlpha = 1;
      if (hover >= 0) {
        ctx.lineWidth = 3; ctx.strokeStyle = th.fg; ctx.beginPath(); path(ctx, hover); ctx.stroke(); ctx.lineWidth = 1;
      }
      // axes, ticks (with a halo so lines do not hide them), titles, brushes
      var titleRoom = Math.max(60, Math.min(layout.step || 200, 220) - 8);
      ctx.font = P.font(11);
      ctx.lineJoin = "round";
      for (k = 0; k < axes.length; k++) {
        var a = axes[k], x = Math.round(a.x) + 0.5, col = a.column;
        ctx.strokeStyle = th.muted; ctx.beginPath(); ctx.moveTo(x, layout.y1); ctx.lineTo(x, layout.y0); ctx.stroke();
        ctx.textAlign = "right"; ctx.textBaseline = "middle";
        P.axisTicks(col, a.lo, a.hi, Math.floor((layout.y0 - layout.y1) / 36)).forEach(function (t) {
          var y = Math.round(yOf(a, t[0])) + 0.5;
          ctx.strokeStyle = th.muted; ctx.beginPath(); ctx.moveTo(x - 3, y); ctx.lineTo(x, y); ctx.stroke();
          var label = P.clip(ctx, String(t[1]), Math.min(PAD.left - 8, (layout.step || 200) / 2 - 6));
          ctx.strokeStyle = th.bg; ctx.lineWidth = 3; ctx.strokeText(label, x - 5, y); ctx.lineWidth = 1;
          ctx.fillStyle = th.fg; ctx.fillText(label, x - 5, y);
        });
        if (col.values.some(function (v) { return v === null; })) {
          ctx.fillStyle = th.muted; ctx.textAlign = "center"; ctx.fillText("n/a", x, layout.y0 + NA_GAP + 9);
        }
        ctx.font = P.font(12); ctx.fillStyle = th.fg; ctx.textAlign = k === 0 ? "left" : k === axes.length - 1 && axes.length > 1 ? "right" : "center";
        ctx.textBaseline = "alphabetic";
        var tx = k === 0 ? Math.max(4, x - titleRoom / 2) : k === axes.length - 1 && axes.length > 1 ? Math.min(layout.w - 4, x + titleRoom / 2) : x;
        if (ctx.textAlign === "left") tx = Math.min(tx, x - 4);
        ctx.fillText(P.clip(ctx, col.key, titleRoom), tx, layout.y1 - 22);
        ctx.font = P.font(10); ctx.fillStyle = th.muted;
        ctx.fillText(col.kind, tx, layout.y1 - 10);
        ctx.font = P.font(11);
        var b = brushes[col.id];
        if (b) {
          var top = yOf(a, b[1]), bottom = yOf(a, b[0]);
          ctx.fillStyle = th.accent; ctx.globalAlpha = 0.22; ctx.fillRect(x - 8, top, 16, bottom - top);
          ctx.globalAlpha = 1; ctx.strokeStyle = th.accent; ctx.strokeRect(x - 8, top, 16, bottom - top);
        }
      }
    }

    function schedule() { if (!frame) frame = requestAnimationFrame(render); }

    // `done`: the brush is set (mouse up, clear), not still moving: listeners may do costlier work.
    function changed(done) {
      select();
      schedule();
      if (options.onChange) options.onChange(selected, brushes, done);
    }

    function axisAt(mx) {
      if (!layout) return null;
      var reach = Math.max(10, Math.min(24, (layout.step || 48) / 3)), best = null;
      layout.axes.forEach(function (a) { if (Math.abs(a.x - mx) <= reach && (!best || Math.abs(a.x - mx) < Math.abs(best.x - mx))) best = a; });
      return best;
    }

    function point(ev) { var r = box.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; }
    function clampY(y) { return Math.max(layout.y1, Math.min(layout.y0, y)); }

    box.addEventListener("mousedown", function (ev) {
      var p = point(ev), a = axisAt(p[0]);
      if (!a || p[1] < layout.y1 - 8 || p[1] > layout.y0 + NA_GAP) return;
      ev.preventDefault();
      drag = { axis: a, from: clampY(p[1]), moved: false };
    });
    window.addEventListener("mousemove", function (ev) {
      if (drag) {
        var y = clampY(point(ev)[1]);
        if (Math.abs(y - drag.from) < 3 && !drag.moved) return;
        drag.moved = true;
        var lo = valueAt(drag.axis, Math.max(drag.from, y)), hi = valueAt(drag.axis, Math.min(drag.from, y));
        brushes[drag.axis.column.id] = [lo, hi];
        changed(false);
        return;
      }
      if (ev.target !== box && !box.contains(ev.target)) return;
      var p = point(ev), before = hover;
      hover = nearestLine(p[0], p[1]);
      box.style.cursor = axisAt(p[0]) ? "ns-resize" : hover >= 0 ? "pointer" : "";
      if (hover >= 0) {
        var last = layout.axes[layout.axes.length - 1].column;
        tip.show(p[0], p[1], [names[hover], last.key + " = " + P.valueText(last, last.values[hover])]);
      } else tip.hide();
      if (hover !== before) schedule();
    });
    window.addEventListener("mouseup", function () {
      if (!drag) return;
      if (!drag.moved) delete brushes[drag.axis.column.id];
      drag = null;
      changed(true);
    });
    box.addEventListener("mouseleave", function () { tip.hide(); if (hover >= 0) { hover = -1; schedule(); } });
    box.addEventListener("click", function (ev) {
      var p = point(ev);
      if (hover >= 0 && !axisAt(p[0]) && options.onOpen) options.onOpen(hover);
    });

    // The selected line nearest to (mx, my) between two axes, within 5 px; -1 for none.
    function nearestLine(mx, my) {
      if (!layout || layout.axes.length < 2 || mx < layout.x0 || mx > layout.x1) return -1;
      var k = Math.min(layout.axes.length - 2, Math.floor((mx - layout.x0) / layout.step));
      var t = (mx - layout.axes[k].x) / layout.step, a = layout.ys[k], b = layout.ys[k + 1], best = -1, bd = 5;
      for (var i = 0; i < names.length; i++) {
        if (!selected[i]) continue;
        var d = Math.abs(a[i] + (b[i] - a[i]) * t - my);
        if (d < bd) { bd = d; best = i; }
      }
      return best;
    }

    window.addEventListener("resize", function () { layout = null; schedule(); });

    return {
      draw: function (cols, initial) {
        columns = cols; brushes = {}; layout = null; hover = -1;
        Object.keys(initial || {}).forEach(function (id) {
          if (cols.some(function (c) { return c.id === id; })) brushes[id] = initial[id];
        });
        compute(); select(); render();
      },
      clear: function () { brushes = {}; changed(true); },
      selected: function () { return selected; },
    };
  };
})();
